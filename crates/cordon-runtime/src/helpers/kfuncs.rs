//! Built-in kfuncs: open-coded number iterators (`bpf_for`), `bpf_throw`, and
//! the reference-counting test pair `cordon_test_acquire` / `cordon_test_release`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use cordon_exec::{Abort, HelperResult, RunContext};
use cordon_verifier::proto::kfunc;
use parking_lot::Mutex;

use super::{HelperImpl, check_mem, neg};
use crate::maps::errno::{E2BIG, EINVAL};

/// A kfunc implementation (same shape as a helper).
pub type KfuncFn = HelperImpl;

/// `BPF_MAX_LOOPS`.
const MAX_LOOPS: i64 = 8 * 1024 * 1024;

/// Live objects of `cordon_test_acquire` (shared by an engine's programs).
#[derive(Debug, Default)]
pub struct TestObjects {
    live: AtomicI64,
    objects: Mutex<HashSet<u64>>,
}

/// The object `cordon_test_acquire` returns (`struct cordon_test_obj`, 16
/// bytes, read-only to programs): `value` starts as `id * 2`.
#[repr(C)]
struct TestObj {
    value: u64,
    id: u64,
}

impl TestObjects {
    /// Objects acquired and not yet released.
    pub fn live(&self) -> i64 {
        self.live.load(Ordering::Acquire)
    }

    fn acquire(&self, id: u64) -> u64 {
        if id == 0 {
            return 0;
        }
        let p = Box::into_raw(Box::new(TestObj {
            value: id.wrapping_mul(2),
            id,
        })) as u64;
        self.objects.lock().insert(p);
        self.live.fetch_add(1, Ordering::AcqRel);
        p
    }

    fn release(&self, p: u64) -> Result<(), Abort> {
        if !self.objects.lock().remove(&p) {
            return Err(Abort::Fault(format!(
                "cordon_test_release: {p:#x} is not a live cordon_test_obj"
            )));
        }
        // SAFETY: p came from Box::into_raw in acquire and was live.
        drop(unsafe { Box::from_raw(p as *mut TestObj) });
        self.live.fetch_sub(1, Ordering::AcqRel);
        Ok(())
    }
}

impl Drop for TestObjects {
    fn drop(&mut self) {
        for p in self.objects.get_mut().drain() {
            // SAFETY: still-live objects from acquire.
            drop(unsafe { Box::from_raw(p as *mut TestObj) });
        }
    }
}

/// `(name, implementation)` of the built-in kfuncs, for the names of
/// [`cordon_verifier::proto::kfunc`].
pub fn builtin_kfuncs(objects: &Arc<TestObjects>) -> Vec<(&'static str, KfuncFn)> {
    let acq = Arc::clone(objects);
    let rel = Arc::clone(objects);
    vec![
        (kfunc::ITER_NUM_NEW, Arc::new(iter_num_new) as KfuncFn),
        (kfunc::ITER_NUM_NEXT, Arc::new(iter_num_next)),
        (kfunc::ITER_NUM_DESTROY, Arc::new(iter_num_destroy)),
        (
            kfunc::THROW,
            Arc::new(|_: &mut RunContext<'_>, a: [u64; 5]| crate::state::stop_invocation(a[0])),
        ),
        (
            kfunc::TEST_ACQUIRE,
            Arc::new(move |ctx: &mut RunContext<'_>, a: [u64; 5]| {
                let p = acq.acquire(a[0]);
                if p != 0 && ctx.is_checked() {
                    // SAFETY: the object lives until released.
                    unsafe { ctx.grant(p, 16, false) };
                }
                Ok(p)
            }),
        ),
        (
            kfunc::TEST_RELEASE,
            Arc::new(move |_: &mut RunContext<'_>, a: [u64; 5]| {
                rel.release(a[0])?;
                Ok(0)
            }),
        ),
    ]
}

/// `struct bpf_iter_num_kern { int cur; int end; }` in the program's 8-byte-aligned
/// iterator slot.
fn iter<'a>(ctx: &RunContext<'_>, p: u64) -> Result<&'a mut [i32; 2], Abort> {
    check_mem(ctx, p, 8, true)?;
    if !p.is_multiple_of(4) {
        return Err(Abort::Fault(format!("iterator at {p:#x} is not aligned")));
    }
    // SAFETY: verified (stack slot of an iterator) or checked writable memory.
    Ok(unsafe { &mut *(p as *mut [i32; 2]) })
}

fn iter_num_new(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let s = iter(ctx, a[0])?;
    let (start, end) = (a[1] as i32, a[2] as i32);
    if start > end {
        *s = [0, 0];
        return Ok(neg(EINVAL));
    }
    if end as i64 - start as i64 > MAX_LOOPS {
        *s = [0, 0];
        return Ok(neg(E2BIG));
    }
    *s = [start.wrapping_sub(1), end];
    Ok(0)
}

fn iter_num_next(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let s = iter(ctx, a[0])?;
    if s[0].wrapping_add(1) as i64 >= s[1] as i64 {
        *s = [0, 0];
        return Ok(0);
    }
    s[0] += 1;
    Ok(a[0])
}

fn iter_num_destroy(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let s = iter(ctx, a[0])?;
    s[1] = 0;
    Ok(0)
}
