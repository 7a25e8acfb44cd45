//! Call-site specialisation: load-time knowledge that lets both engines carry
//! out a helper call without the generic helper dispatch.
//!
//! A loader that knows, for a given call instruction, which map the call uses
//! (a verifier fact; map identity is fixed at load time) can tell the engine
//! *how* to make that call, as Linux's `do_misc_fixups` does with
//! `map_gen_lookup` and direct helper calls:
//!
//! * [`CallSpec::ArrayLookup`]: an array-map lookup on storage at a fixed
//!   address: `index = *(u32 *)r2; r0 = index < max_entries ? base + index *
//!   elem_size : 0`. The JIT emits it inline (a load, a compare, a
//!   multiply-add and a select; no call at all); the interpreter computes it
//!   in place.
//! * [`CallSpec::Direct`]: a plain `extern "C"` function of the argument
//!   registers (optionally with r1 replaced by a value bound at load time,
//!   e.g. the map's table instead of its program-visible pointer) that cannot
//!   stop the program or fault. The JIT calls it directly (no trampoline, no
//!   `dyn` dispatch, no run-context round trip, no `status` test after it);
//!   the interpreter calls the same function pointer.
//!
//! Every other call keeps the generic path (the helper table). A specialised
//! call must give exactly the generic helper's result; the table is only used
//! for [`Mode::Trusted`](crate::Mode::Trusted) executables (checked mode must
//! check the program's pointers and grant returned memory, so it ignores it).
//!
//! The table is built against the program it is for ([`CallSitesBuilder`]),
//! which refuses sites that are not helper calls, and carries owners
//! ([`CallSitesBuilder::keep_alive`]) that every executable built with it
//! holds, so storage addresses baked into generated code stay valid.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cordon_isa::{Kind, Program};

/// A host function a specialised call site calls directly, by arity (the
/// number of leading argument registers it takes; with
/// [`CallSpec::Direct::bind`] the first is the bound value).
#[derive(Clone, Copy)]
pub enum DirectFn {
    A0(unsafe extern "C" fn() -> u64),
    A1(unsafe extern "C" fn(u64) -> u64),
    A2(unsafe extern "C" fn(u64, u64) -> u64),
    A3(unsafe extern "C" fn(u64, u64, u64) -> u64),
    A4(unsafe extern "C" fn(u64, u64, u64, u64) -> u64),
    A5(unsafe extern "C" fn(u64, u64, u64, u64, u64) -> u64),
}

impl DirectFn {
    /// Number of arguments.
    pub fn arity(&self) -> usize {
        match self {
            DirectFn::A0(_) => 0,
            DirectFn::A1(_) => 1,
            DirectFn::A2(_) => 2,
            DirectFn::A3(_) => 3,
            DirectFn::A4(_) => 4,
            DirectFn::A5(_) => 5,
        }
    }

    /// Address of the function (what generated code calls).
    pub fn addr(&self) -> usize {
        match *self {
            DirectFn::A0(f) => f as usize,
            DirectFn::A1(f) => f as usize,
            DirectFn::A2(f) => f as usize,
            DirectFn::A3(f) => f as usize,
            DirectFn::A4(f) => f as usize,
            DirectFn::A5(f) => f as usize,
        }
    }

    /// Call with the first [`DirectFn::arity`] values of `a`.
    ///
    /// # Safety
    /// The contract of the [`CallSpec::Direct`] the function came from.
    #[inline(always)]
    pub(crate) unsafe fn call(&self, a: [u64; 5]) -> u64 {
        // SAFETY: caller contract.
        unsafe {
            match *self {
                DirectFn::A0(f) => f(),
                DirectFn::A1(f) => f(a[0]),
                DirectFn::A2(f) => f(a[0], a[1]),
                DirectFn::A3(f) => f(a[0], a[1], a[2]),
                DirectFn::A4(f) => f(a[0], a[1], a[2], a[3]),
                DirectFn::A5(f) => f(a[0], a[1], a[2], a[3], a[4]),
            }
        }
    }
}

impl fmt::Debug for DirectFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DirectFn/{}@{:#x}", self.arity(), self.addr())
    }
}

/// How one helper call site is carried out.
#[derive(Clone, Copy, Debug)]
pub enum CallSpec {
    /// `index = *(u32 *)r2; r0 = index < max_entries ? base + index * elem_size : 0`.
    ArrayLookup {
        base: u64,
        elem_size: u64,
        max_entries: u32,
    },
    /// `r0 = func(r1, r2, …)`, or `func(bind, r2, …)` when `bind` is set. The
    /// function cannot stop the program or fault.
    Direct { func: DirectFn, bind: Option<u64> },
}

impl CallSpec {
    /// Carry the call out (the interpreter's path; the JIT emits the same).
    ///
    /// # Safety
    /// The contract under which the spec was registered
    /// ([`CallSitesBuilder::specialise`]), for a run of a trusted executable.
    #[inline(always)]
    pub(crate) unsafe fn invoke(&self, mut args: [u64; 5]) -> u64 {
        match *self {
            CallSpec::ArrayLookup {
                base,
                elem_size,
                max_entries,
            } => {
                // SAFETY: caller contract: r2 points at a readable 4-byte key.
                let index = unsafe { std::ptr::read_unaligned(args[1] as *const u32) };
                if index < max_entries {
                    base.wrapping_add(index as u64 * elem_size)
                } else {
                    0
                }
            }
            CallSpec::Direct { func, bind } => {
                if let Some(v) = bind {
                    args[0] = v;
                }
                // SAFETY: caller contract.
                unsafe { func.call(args) }
            }
        }
    }
}

/// Why a call-site specialisation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallSiteError {
    #[error("instruction {index} is not a helper call (only helper calls can be specialised)")]
    NotAHelperCall { index: usize },
    #[error("instruction {index} is specialised twice")]
    Duplicate { index: usize },
    #[error(
        "instruction {index}: array lookup with element size {elem_size} and {max_entries} entries at {base:#x} does not describe valid storage"
    )]
    BadArray {
        index: usize,
        base: u64,
        elem_size: u64,
        max_entries: u32,
    },
}

/// Owners kept alive by every executable that uses a [`CallSites`] table.
type Owner = Arc<dyn Any + Send + Sync>;

struct Inner {
    sites: BTreeMap<usize, CallSpec>,
    _owners: Vec<Owner>,
}

/// Specialised call sites of one program, by instruction index. Cheap to
/// clone (shared). The default is empty: every call is generic.
#[derive(Clone, Default)]
pub struct CallSites {
    inner: Option<Arc<Inner>>,
}

// `CallSites` is `Send + Sync` (plain data, `fn` pointers and `Send + Sync`
// owners): executables holding it stay `Send + Sync`.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<CallSites>();
};

impl fmt::Debug for CallSites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl CallSites {
    /// Start a table for `program`.
    pub fn builder(program: &Program) -> CallSitesBuilder<'_> {
        CallSitesBuilder {
            program,
            sites: BTreeMap::new(),
            owners: Vec::new(),
        }
    }

    /// Number of specialised sites.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| i.sites.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The specialisation of the call at instruction `index`.
    pub fn get(&self, index: usize) -> Option<CallSpec> {
        self.inner.as_ref()?.sites.get(&index).copied()
    }

    /// Every specialised site, by increasing instruction index.
    pub fn iter(&self) -> impl Iterator<Item = (usize, CallSpec)> + '_ {
        self.inner
            .iter()
            .flat_map(|i| i.sites.iter().map(|(&pc, &s)| (pc, s)))
    }
}

/// Builds a [`CallSites`] table against the program it is for.
pub struct CallSitesBuilder<'p> {
    program: &'p Program,
    sites: BTreeMap<usize, CallSpec>,
    owners: Vec<Owner>,
}

impl CallSitesBuilder<'_> {
    /// Specialise the helper call at instruction `index`.
    ///
    /// # Safety
    /// Executables built with the table run the spec instead of the helper,
    /// trusting it completely:
    /// * [`CallSpec::ArrayLookup`]: whenever the program reaches the call, r2
    ///   points at 4 readable bytes, and `[base, base + max_entries *
    ///   elem_size)` is valid memory the program may read and write for as long
    ///   as the executable lives (hold its owner with
    ///   [`CallSitesBuilder::keep_alive`]);
    /// * [`CallSpec::Direct`]: calling `func` with the call's argument
    ///   registers (r1 replaced by `bind` if set) is sound whenever the program
    ///   reaches the call, returns what the generic helper would, never
    ///   unwinds, and needs nothing from the run context.
    pub unsafe fn specialise(&mut self, index: usize, spec: CallSpec) -> Result<(), CallSiteError> {
        if !matches!(self.program.kind(index), Some(Kind::CallHelper { .. })) {
            return Err(CallSiteError::NotAHelperCall { index });
        }
        if let CallSpec::ArrayLookup {
            base,
            elem_size,
            max_entries,
        } = spec
        {
            let end = elem_size
                .checked_mul(max_entries as u64)
                .and_then(|n| base.checked_add(n));
            if base == 0 || elem_size == 0 || max_entries == 0 || end.is_none() {
                return Err(CallSiteError::BadArray {
                    index,
                    base,
                    elem_size,
                    max_entries,
                });
            }
        }
        if self.sites.insert(index, spec).is_some() {
            return Err(CallSiteError::Duplicate { index });
        }
        Ok(())
    }

    /// Keep `owner` alive for as long as any executable built with the table
    /// lives (e.g. the map whose storage a spec points into).
    pub fn keep_alive(&mut self, owner: Arc<dyn Any + Send + Sync>) {
        self.owners.push(owner);
    }

    /// Number of sites specialised so far.
    pub fn len(&self) -> usize {
        self.sites.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    pub fn build(self) -> CallSites {
        if self.sites.is_empty() && self.owners.is_empty() {
            return CallSites::default();
        }
        CallSites {
            inner: Some(Arc::new(Inner {
                sites: self.sites,
                _owners: self.owners,
            })),
        }
    }
}

/// The engines' view of a [`CallSites`] table: specs by instruction index in a
/// dense array (one load per call in the interpreter), empty for checked
/// executables. Cheap to clone (shared).
#[derive(Clone, Default)]
pub(crate) struct SiteTable {
    inner: Option<Arc<Dense>>,
}

struct Dense {
    /// Per instruction: 0 = generic, `i + 1` = `specs[i]`.
    at: Box<[u32]>,
    specs: Box<[CallSpec]>,
    /// Holds the owners.
    _sites: CallSites,
}

impl SiteTable {
    /// The table for an executable of `program`: `sites` in trusted mode,
    /// nothing in checked mode. Sites at instructions that are not helper
    /// calls of `program` (a table built for another program) are ignored.
    pub(crate) fn new(sites: &CallSites, program: &Program, trusted: bool) -> SiteTable {
        if !trusted || sites.is_empty() {
            return SiteTable::default();
        }
        let mut at = vec![0u32; program.len()];
        let mut specs = Vec::new();
        for (pc, spec) in sites.iter() {
            if matches!(program.kind(pc), Some(Kind::CallHelper { .. })) {
                specs.push(spec);
                at[pc] = specs.len() as u32;
            }
        }
        if specs.is_empty() {
            return SiteTable::default();
        }
        SiteTable {
            inner: Some(Arc::new(Dense {
                at: at.into_boxed_slice(),
                specs: specs.into_boxed_slice(),
                _sites: sites.clone(),
            })),
        }
    }

    /// The specialisation of the call at instruction `pc`.
    #[inline(always)]
    pub(crate) fn get(&self, pc: usize) -> Option<&CallSpec> {
        let d = self.inner.as_deref()?;
        match d.at.get(pc) {
            Some(&i) if i != 0 => d.specs.get(i as usize - 1),
            _ => None,
        }
    }

    /// Number of specialised sites.
    pub(crate) fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |d| d.specs.len())
    }
}

impl fmt::Debug for SiteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteTable")
            .field("specialised", &self.len())
            .finish()
    }
}
