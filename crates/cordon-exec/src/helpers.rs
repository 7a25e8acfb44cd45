//! The helper-call interface: a registry the host extends with functions by id.
//!
//! A helper receives the invocation's [`RunContext`] and the five argument
//! registers r1–r5, and either returns a value (written to r0) or aborts the run
//! with an [`Abort`]:
//!
//! * [`Abort::Stop`] ends the program at once with the given r0, unwinding every
//!   bpf-to-bpf frame (the conformance suite's helper 5 "unwind"; later
//!   `bpf_throw` and cancellation);
//! * [`Abort::Fault`] ends it with [`ExecError::HelperFault`](crate::ExecError::HelperFault)
//!   naming the instruction, the helper and the message.
//!
//! Helpers can also hand out memory that checked mode must then allow
//! ([`RunContext::grant`]), and check or access memory the program passed them
//! ([`RunContext::read_bytes`], [`RunContext::write_bytes`]).
//!
//! kfuncs (calls with `src = 2`) are resolved through the same registry by BTF id
//! ([`HelperRegistry::register_kfunc`]) and behave exactly like helpers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cordon_isa::Program;

use crate::context::RunContext;
use crate::specialise::{CallSites, SiteTable};

/// How a helper ends the program early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Abort {
    /// Stop the program now; it returns this value in r0.
    Stop(u64),
    /// The helper failed; the run ends with an error carrying this message.
    Fault(String),
}

/// What a helper returns: the value for r0, or an early end of the program.
pub type HelperResult = Result<u64, Abort>;

/// The signature of a helper function.
pub type HelperFn = dyn Fn(&mut RunContext<'_>, [u64; 5]) -> HelperResult + Send + Sync;

/// A registered helper (or kfunc): its id, name and function.
#[derive(Clone)]
pub struct Helper {
    id: u32,
    kfunc: bool,
    name: Arc<str>,
    func: Arc<HelperFn>,
}

impl Helper {
    pub fn new<F>(id: u32, name: &str, func: F) -> Helper
    where
        F: Fn(&mut RunContext<'_>, [u64; 5]) -> HelperResult + Send + Sync + 'static,
    {
        Helper {
            id,
            kfunc: false,
            name: name.into(),
            func: Arc::new(func),
        }
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this entry is a kfunc (id is a BTF id) rather than a helper.
    pub fn is_kfunc(&self) -> bool {
        self.kfunc
    }

    #[inline(always)]
    pub(crate) fn call(&self, ctx: &mut RunContext<'_>, args: [u64; 5]) -> HelperResult {
        (self.func)(ctx, args)
    }
}

impl fmt::Debug for Helper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Helper")
            .field("id", &self.id)
            .field("kfunc", &self.kfunc)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Helpers by id and kfuncs by BTF id. Cloning is cheap (functions are shared).
#[derive(Clone, Debug, Default)]
pub struct HelperRegistry {
    helpers: BTreeMap<u32, Helper>,
    kfuncs: BTreeMap<u32, Helper>,
}

impl HelperRegistry {
    pub fn new() -> HelperRegistry {
        HelperRegistry::default()
    }

    /// Register (or replace) helper `id`. Returns the helper it replaced.
    pub fn register<F>(&mut self, id: u32, name: &str, func: F) -> Option<Helper>
    where
        F: Fn(&mut RunContext<'_>, [u64; 5]) -> HelperResult + Send + Sync + 'static,
    {
        self.helpers.insert(id, Helper::new(id, name, func))
    }

    /// Register (or replace) helper `id` with an already shared function (no
    /// extra indirection: calls go straight to `func`). Returns the helper it
    /// replaced.
    pub fn register_shared(&mut self, id: u32, name: &str, func: Arc<HelperFn>) -> Option<Helper> {
        self.helpers.insert(
            id,
            Helper {
                id,
                kfunc: false,
                name: name.into(),
                func,
            },
        )
    }

    /// Register (or replace) a kfunc by its BTF id (BTF object 0, i.e. vmlinux).
    pub fn register_kfunc<F>(&mut self, btf_id: u32, name: &str, func: F) -> Option<Helper>
    where
        F: Fn(&mut RunContext<'_>, [u64; 5]) -> HelperResult + Send + Sync + 'static,
    {
        let mut h = Helper::new(btf_id, name, func);
        h.kfunc = true;
        self.kfuncs.insert(btf_id, h)
    }

    pub fn get(&self, id: u32) -> Option<&Helper> {
        self.helpers.get(&id)
    }

    pub fn get_kfunc(&self, btf_id: u32) -> Option<&Helper> {
        self.kfuncs.get(&btf_id)
    }

    /// All helpers, by increasing id.
    pub fn helpers(&self) -> impl Iterator<Item = &Helper> {
        self.helpers.values()
    }

    /// All kfuncs, by increasing BTF id.
    pub fn kfuncs(&self) -> impl Iterator<Item = &Helper> {
        self.kfuncs.values()
    }
}

/// The helper table an executable carries: helpers sorted by id (so `callx` can
/// binary-search), then kfuncs. Call instructions refer to entries by slot index.
/// Specialised call sites (trusted executables only) bypass the slots.
#[derive(Clone, Debug, Default)]
pub(crate) struct HelperTable {
    pub(crate) slots: Vec<Helper>,
    /// Number of leading slots that are helpers (the rest are kfuncs).
    pub(crate) n_helpers: usize,
    /// Specialised call sites by instruction index.
    pub(crate) sites: SiteTable,
}

impl HelperTable {
    pub(crate) fn from_registry(reg: &HelperRegistry) -> HelperTable {
        let mut slots: Vec<Helper> = reg.helpers().cloned().collect();
        let n_helpers = slots.len();
        slots.extend(reg.kfuncs().cloned());
        HelperTable {
            slots,
            n_helpers,
            sites: SiteTable::default(),
        }
    }

    /// The table of an executable of `program`: the registry's helpers, and
    /// `sites` when the executable is trusted (checked ones ignore them).
    pub(crate) fn for_program(
        reg: &HelperRegistry,
        sites: &CallSites,
        program: &Program,
        trusted: bool,
    ) -> HelperTable {
        let mut t = HelperTable::from_registry(reg);
        t.sites = SiteTable::new(sites, program, trusted);
        t
    }

    pub(crate) fn helper_slot(&self, id: u64) -> Option<usize> {
        let id = u32::try_from(id).ok()?;
        self.slots[..self.n_helpers]
            .binary_search_by_key(&id, |h| h.id)
            .ok()
    }

    pub(crate) fn kfunc_slot(&self, btf_id: u32) -> Option<usize> {
        self.slots[self.n_helpers..]
            .binary_search_by_key(&btf_id, |h| h.id)
            .ok()
            .map(|i| i + self.n_helpers)
    }
}
