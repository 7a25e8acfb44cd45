//! The CLI's view of the embedding API: load an object, set it up, run a
//! program, read its maps back.

use anyhow::{Result, anyhow, bail};
use cordon::{Backend, Config, MapError, MapType, Profile, RunResult};

use crate::Engine;

/// A runtime configured from the command line.
pub struct Session {
    engine: cordon::Engine,
}

impl Session {
    pub fn new(engine: Engine, profile: Profile, verify: bool) -> Session {
        let config = Config {
            backend: match engine {
                Engine::Interp => Backend::Interpreter,
                Engine::Jit => Backend::Jit,
            },
            verify,
            profile,
            ..Config::default()
        };
        Session {
            engine: cordon::Engine::new(config),
        }
    }

    pub fn load(&self, bytes: &[u8]) -> Result<Loaded> {
        Ok(Loaded {
            obj: self.engine.load_object(bytes)?,
        })
    }

    /// Objects of the test kfunc `cordon_test_acquire` not released yet.
    pub fn test_objects_live(&self) -> i64 {
        self.engine.test_objects_live()
    }
}

/// A loaded object.
pub struct Loaded {
    obj: cordon::Object,
}

/// A program ready to run on packets.
pub struct Prog {
    prog: cordon::Program,
}

impl Prog {
    /// One run over a copy of `packet` (Linux test_run semantics), with an
    /// optional input context (`struct xdp_md` / `struct __sk_buff`).
    pub fn run(&self, packet: &[u8], ctx_in: Option<&[u8]>) -> Result<RunResult, cordon::Error> {
        self.prog.run_with(packet, ctx_in)
    }

    pub fn is_xdp(&self) -> bool {
        self.prog.kind() == cordon::ProgKind::Xdp
    }

    /// The allocation-free XDP path: `buf` holds the packet and gets the
    /// result; returns the full r0 (no trace lines).
    pub fn run_xdp_in_place(&self, buf: &mut Vec<u8>) -> Result<u64, cordon::Error> {
        self.prog.run_xdp_in_place(buf)
    }
}

/// Map values of one key.
pub enum Values {
    One(Vec<u8>),
    /// One value per CPU slot.
    PerCpu(Vec<Vec<u8>>),
}

pub struct Entry {
    pub key: Vec<u8>,
    pub values: Values,
}

pub enum Dump {
    Entries(Vec<Entry>),
    /// Queues, stacks, ring buffers, bloom filters, prog arrays, maps of maps.
    NotIterable,
}

/// Linux map types the runtime keeps as extension maps ([`cordon::ExtMap`]).
const PERF_EVENT_ARRAY: u32 = 4;
const LPM_TRIE: u32 = 11;
const BLOOM_FILTER: u32 = 30;

impl Loaded {
    /// The Linux map type of map `name`.
    fn map_type_id(&self, name: &str) -> Result<u32> {
        self.obj
            .parsed()
            .map(name)
            .map(|(_, m)| m.map_type)
            .ok_or_else(|| anyhow!("no map named {name:?}"))
    }

    fn ext_update(&self, map: &str, t: u32, key: &[u8], value: &[u8]) -> Result<()> {
        let m = self.obj.ext_map(map)?;
        let r = match t {
            // A bloom filter stores values (given with an empty key).
            BLOOM_FILTER => m.update_value(value, &[], 0),
            LPM_TRIE => m.update_value(key, value, 0),
            _ => bail!("map {map:?}: a perf_event_array cannot be filled from the command line"),
        };
        r.map_err(|errno| anyhow!("map {map:?}: update failed with errno {errno}"))
    }

    pub fn program(&self, name: &str) -> Result<Prog> {
        Ok(Prog {
            prog: self.obj.program(name)?,
        })
    }

    pub fn set_tail_call(&self, map: &str, index: u32, prog: &str) -> Result<()> {
        let p = self.obj.program(prog)?;
        Ok(self.obj.set_tail_call(map, index, &p)?)
    }

    /// Store `value` at `key` (empty key: push). Per-CPU maps get `value` on
    /// every CPU, as `bpftool map update` does.
    pub fn update_map(&self, map: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let t = self.map_type_id(map)?;
        if matches!(t, PERF_EVENT_ARRAY | LPM_TRIE | BLOOM_FILTER) {
            return self.ext_update(map, t, key, value);
        }
        let m = self.obj.map(map)?;
        if key.is_empty() {
            return Ok(m.push_value(value, 0)?);
        }
        if m.map_type().is_percpu() {
            let n = m.ncpus() as usize;
            let stride = m.host_value_size() / n.max(1);
            let mut all = vec![0u8; m.host_value_size()];
            for c in 0..n {
                all[c * stride..c * stride + value.len()].copy_from_slice(value);
            }
            return Ok(m.update_value(key, &all, 0)?);
        }
        Ok(m.update_value(key, value, 0)?)
    }

    pub fn dump_map(&self, map: &str) -> Result<Dump> {
        match self.map_type_id(map)? {
            LPM_TRIE => {
                let m = self.obj.ext_map(map)?;
                let entries = m
                    .entries()
                    .into_iter()
                    .map(|(key, v)| Entry {
                        key,
                        values: Values::One(v),
                    })
                    .collect();
                return Ok(Dump::Entries(entries));
            }
            PERF_EVENT_ARRAY | BLOOM_FILTER => return Ok(Dump::NotIterable),
            _ => {}
        }
        let m = self.obj.map(map)?;
        let t = m.map_type();
        if matches!(
            t,
            MapType::Queue
                | MapType::Stack
                | MapType::RingBuf
                | MapType::ProgArray
                | MapType::ArrayOfMaps
                | MapType::HashOfMaps
        ) {
            return Ok(Dump::NotIterable);
        }
        let mut entries = Vec::new();
        for key in m.keys() {
            let values = if t.is_percpu() {
                match m.lookup_percpu_values(&key) {
                    Ok(v) => Values::PerCpu(v),
                    Err(MapError::NotFound) => continue,
                    Err(e) => return Err(e.into()),
                }
            } else {
                match m.lookup_value(&key) {
                    Ok(v) => Values::One(v),
                    Err(MapError::NotFound) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            entries.push(Entry { key, values });
        }
        Ok(Dump::Entries(entries))
    }
}
