//! The engines: Cordon (interpreter and JIT, through the `cordon` API),
//! rbpf 0.4 (interpreter and JIT, raw-memory entries), Linux (its JIT through
//! BPF_PROG_TEST_RUN, via cordon-linux) and native code.

use std::ffi::c_void;
use std::path::Path;
use std::time::{Duration, Instant};

use cordon::ctx::XdpCtx;
use cordon::{Backend, Config, Engine, StackStrategy};

use crate::workloads::Workload;

/// Why the suite cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Cordon ({engine}): {source}")]
    Cordon {
        engine: String,
        #[source]
        source: cordon::Error,
    },
    #[error("{engine} returned {got:#x} for workload '{workload}', native code returned {want:#x}")]
    WrongResult {
        engine: String,
        workload: String,
        got: u64,
        want: u64,
    },
    #[error("{engine} failed on workload '{workload}': {message}")]
    Failed {
        engine: String,
        workload: String,
        message: String,
    },
    #[error("bad command line: {0}")]
    Usage(String),
}

/// An 8-byte aligned packet buffer (Linux's XDP data starts 256 bytes into
/// a page, so every engine sees the same alignment).
pub struct Packet {
    words: Vec<u64>,
    len: usize,
}

impl Packet {
    pub fn new(bytes: &[u8]) -> Packet {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        // SAFETY: `words` has at least `bytes.len()` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                words.as_mut_ptr() as *mut u8,
                bytes.len(),
            )
        };
        Packet {
            words,
            len: bytes.len(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes of `words` are initialised.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr() as *mut u8, self.len) }
    }
}

/// A Cordon configuration under test.
pub struct CordonEngine {
    pub label: String,
    _engine: Engine,
    object: cordon::Object,
}

/// One Cordon program, ready for the lowest-overhead call path.
pub struct CordonProgram {
    pub program: cordon::Program,
    /// Time of `Object::program` (verification and compilation).
    pub load_time: Duration,
}

impl CordonEngine {
    pub fn new(
        label: &str,
        backend: Backend,
        stack: StackStrategy,
        object: &Path,
    ) -> Result<CordonEngine, BenchError> {
        let engine = Engine::new(Config {
            backend,
            stack,
            ..Config::default()
        });
        let object = engine
            .load_file(object)
            .map_err(|source| BenchError::Cordon {
                engine: label.to_string(),
                source,
            })?;
        Ok(CordonEngine {
            label: label.to_string(),
            _engine: engine,
            object,
        })
    }

    pub fn program(&self, w: &Workload) -> Result<CordonProgram, BenchError> {
        let start = Instant::now();
        let program = self
            .object
            .program(&w.xdp_name())
            .map_err(|source| BenchError::Cordon {
                engine: self.label.clone(),
                source,
            })?;
        let load_time = start.elapsed();
        if !program.is_verified() {
            return Err(BenchError::Failed {
                engine: self.label.clone(),
                workload: w.name.to_string(),
                message: format!(
                    "the verifier refused the program (it would run checked): {}",
                    program.verifier_log()
                ),
            });
        }
        Ok(CordonProgram { program, load_time })
    }

    /// The program pointer of map `name` (what `&map` is in BPF code).
    pub fn map_ptr(&self, name: &str) -> Result<*mut c_void, BenchError> {
        let m = self.object.map(name).map_err(|source| BenchError::Cordon {
            engine: self.label.clone(),
            source,
        })?;
        // The map lives as long as the object, which outlives every use.
        Ok(m.as_prog_ptr() as *mut c_void)
    }
}

impl CordonProgram {
    /// The documented Linux-like path: `run_xdp` (copies the packet into a
    /// fresh frame, returns the output packet and context).
    pub fn run_xdp(&self, packet: &[u8]) -> Result<u32, cordon::Error> {
        Ok(self.program.run_xdp(packet)?.retval)
    }
}

/// An XDP context over a packet buffer, for [`cordon::Program::call`]: the
/// lowest-overhead call path (no packet copy, no allocation). The runtime
/// rewrote the program's `xdp_md` loads to 64-bit loads of these fields.
pub struct XdpCall {
    ctx: Box<XdpCtx>,
}

impl XdpCall {
    pub fn new(packet: &mut Packet) -> XdpCall {
        let mut ctx = Box::<XdpCtx>::default();
        let bytes = packet.bytes_mut();
        let data = bytes.as_mut_ptr() as u64;
        ctx.set_pointers(data, data, data + bytes.len() as u64);
        ctx.md[3] = 1;
        XdpCall { ctx }
    }

    #[inline]
    pub fn call(&self, p: &cordon::Program, packet: &mut Packet) -> Result<u64, cordon::Error> {
        let addr = &*self.ctx as *const XdpCtx as u64;
        p.call([addr, 0, 0, 0, 0], packet.bytes_mut())
    }
}

/// rbpf 0.4 on a raw-memory entry: r1 points to `{ u64 data; u64 data_end; }`
/// (rbpf's "mbuff").
pub struct Rbpf {
    vm: rbpf::EbpfVmMbuff<'static>,
    jit: Result<(), String>,
    /// The mbuff; rbpf's JIT entry wants it borrowed for the VM's lifetime,
    /// so it lives in a heap cell of its own and is re-borrowed per call.
    mbuff: *mut [u8; 16],
}

impl Drop for Rbpf {
    fn drop(&mut self) {
        // SAFETY: allocated by `Box::into_raw` in `new`, no borrow outlives a call.
        drop(unsafe { Box::from_raw(self.mbuff) });
    }
}

impl Rbpf {
    pub fn new(code: Vec<u8>) -> Result<Rbpf, String> {
        // The VM borrows its bytecode for its whole life: leak the few KiB.
        let code: &'static [u8] = Box::leak(code.into_boxed_slice());
        let mut vm = rbpf::EbpfVmMbuff::new(Some(code)).map_err(|e| e.to_string())?;
        // rbpf 0.4's x86-64 JIT writes into a fixed 4 KiB buffer and panics
        // (an assertion) when the code does not fit.
        // Its panic is reported in the table, not as a stray message.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let jit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| vm.jit_compile()));
        std::panic::set_hook(hook);
        let jit = jit
            .map_err(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("the JIT panicked (its code buffer is a fixed 4 KiB): {msg}")
            })
            .and_then(|r| r.map_err(|e| e.to_string()));
        Ok(Rbpf {
            vm,
            jit,
            mbuff: Box::into_raw(Box::new([0u8; 16])),
        })
    }

    pub fn jit_error(&self) -> Option<&str> {
        self.jit.as_ref().err().map(String::as_str)
    }

    /// Point the mbuff at `packet` and borrow it for one call.
    fn mbuff(&self, packet: &mut Packet) -> &'static mut [u8] {
        let b = packet.bytes_mut();
        let data = b.as_mut_ptr() as u64;
        // SAFETY: the cell lives until `self` drops; each borrow is used for
        // one call only (rbpf keeps nothing after returning).
        let m = unsafe { &mut *self.mbuff };
        m[..8].copy_from_slice(&data.to_le_bytes());
        m[8..].copy_from_slice(&(data + b.len() as u64).to_le_bytes());
        m.as_mut_slice()
    }

    pub fn interp(&self, packet: &mut Packet) -> Result<u64, String> {
        let m = self.mbuff(packet);
        self.vm
            .execute_program(packet.bytes(), m)
            .map_err(|e| e.to_string())
    }

    pub fn jit(&self, packet: &mut Packet) -> Result<u64, String> {
        let m = self.mbuff(packet);
        // SAFETY: compiled by `new` (callers check `jit_error` first); the
        // program only reads the mbuff and the packet it points to.
        unsafe { self.vm.execute_program_jit(packet.bytes_mut(), m) }.map_err(|e| e.to_string())
    }
}

/// Native code from the same C source.
#[inline]
pub fn native(w: &Workload, packet: &Packet, map: *mut c_void) -> u32 {
    let b = packet.bytes();
    // SAFETY: the native entry reads `len` bytes of the packet (bounds checks
    // are in the C source) and uses `map` only through the map shims.
    unsafe { (w.native)(b.as_ptr(), b.len() as u64, map) }
}

/// Native code from the same C source, without auto-vectorisation.
#[inline]
pub fn native_novec(w: &Workload, packet: &Packet, map: *mut c_void) -> u32 {
    let b = packet.bytes();
    // SAFETY: as for `native`.
    unsafe { (w.native_novec)(b.as_ptr(), b.len() as u64, map) }
}
