//! LRU node allocation for `lru_hash` / `lru_percpu_hash`, reproducing Linux's
//! `bpf_lru_list.c` node for node so that the same operations on one CPU evict
//! the same keys:
//!
//! * **Common LRU** (default): one global list set (active, inactive, free)
//!   plus, per CPU, a local free list and a local pending list. A CPU takes
//!   nodes from its local free list; when that is empty it flushes its pending
//!   nodes onto the global lists (referenced ones to active), rotates them and
//!   refills its local free list with up to `target_free` nodes
//!   (`clamp(max_entries / ncpus / 2, 1, 128)`), first from the global free
//!   list, then by shrinking (evicting from the inactive tail, 128 scans).
//!   When even that yields nothing it steals a free or pending node from the
//!   CPUs' local lists, round robin from its `next_steal`.
//! * **Per-CPU LRU** (`BPF_F_NO_COMMON_LRU`): each CPU owns `max_entries /
//!   ncpus` nodes on its own list set; every allocation rotates it and, when
//!   its free list is empty, shrinks it by up to 4 nodes (4 scans).
//!
//! Which keys are evicted depends only on list order and reference bits,
//! never on the hash table's bucket order (eviction unlinks a given node).
//!
//! Locking follows Linux: local list lock, then the global lock, then (in the
//! eviction callback) a bucket lock; the hash table never calls in here while
//! holding a bucket lock.

use std::sync::atomic::Ordering::Relaxed;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use super::MapError;
use super::lru_list::{
    ACTIVE, Arena, Evict, FREE, INACTIVE, LOCAL_FREE, LOCAL_PENDING, Link, ListState, Meta,
};
use super::util::try_slice;

/// Linux `LOCAL_FREE_TARGET` (upper bound of the common LRU's refill batch)
/// and `LOCAL_NR_SCANS`.
const LOCAL_FREE_TARGET: usize = 128;
const LOCAL_NR_SCANS: usize = LOCAL_FREE_TARGET;
/// Linux `PERCPU_FREE_TARGET` / `PERCPU_NR_SCANS`.
const PERCPU_FREE_TARGET: usize = 4;
const PERCPU_NR_SCANS: usize = PERCPU_FREE_TARGET;

/// A CPU's local lists (`struct bpf_lru_locallist`): sentinels `base` (free)
/// and `base + 1` (pending).
struct Local {
    base: u32,
    next_steal: usize,
}

impl Local {
    fn free_head(&self) -> u32 {
        self.base
    }
    fn pending_head(&self) -> u32 {
        self.base + 1
    }
}

enum Mode {
    Common {
        global: CachePadded<Mutex<ListState>>,
        locals: Box<[CachePadded<Mutex<Local>>]>,
        target_free: usize,
    },
    Percpu {
        lists: Box<[CachePadded<Mutex<ListState>>]>,
    },
}

pub(crate) struct Lru {
    arena: Arena,
    n: u32,
    mode: Mode,
}

impl Lru {
    /// `n` nodes for `ncpus` CPUs; `percpu` selects per-CPU lists
    /// (`BPF_F_NO_COMMON_LRU`, `n` then a multiple of `ncpus`).
    pub(crate) fn new(n: u32, ncpus: usize, percpu: bool, name: &str) -> Result<Lru, MapError> {
        let ncpus = ncpus.max(1);
        let sentinels = if percpu { 3 * ncpus } else { 3 + 2 * ncpus };
        let total = n as usize + sentinels;
        if total >= u32::MAX as usize {
            return Err(MapError::OutOfMemory {
                name: name.to_string(),
                bytes: total as u64,
                reason: "too many LRU nodes".to_string(),
            });
        }
        let arena = Arena {
            links: try_slice(total, name, |_| Link::new())?,
            meta: try_slice(n as usize, name, |_| Meta::new())?,
        };
        let mode = if percpu {
            let lists: Box<[_]> = (0..ncpus)
                .map(|c| {
                    let base = n + 3 * c as u32;
                    CachePadded::new(Mutex::new(ListState::new(&arena, base, PERCPU_NR_SCANS)))
                })
                .collect();
            // `bpf_percpu_lru_populate`: consecutive runs of n / ncpus nodes.
            let per = (n as usize / ncpus).max(1);
            for i in 0..n as usize {
                let cpu = (i / per).min(ncpus - 1);
                arena.meta[i].cpu.store(cpu as u32, Relaxed);
                lists[cpu].lock().populate(&arena, i as u32);
            }
            Mode::Percpu { lists }
        } else {
            let global = ListState::new(&arena, n, LOCAL_NR_SCANS);
            let locals: Box<[_]> = (0..ncpus)
                .map(|c| {
                    let base = n + 3 + 2 * c as u32;
                    arena.init_head(base);
                    arena.init_head(base + 1);
                    CachePadded::new(Mutex::new(Local {
                        base,
                        next_steal: c,
                    }))
                })
                .collect();
            let global = CachePadded::new(Mutex::new(global));
            {
                let mut g = global.lock();
                for i in 0..n {
                    g.populate(&arena, i);
                }
            }
            Mode::Common {
                global,
                locals,
                target_free: (n as usize / ncpus / 2).clamp(1, LOCAL_FREE_TARGET),
            }
        };
        Ok(Lru { arena, n, mode })
    }

    /// `bpf_lru_node_set_ref`.
    #[inline]
    pub(crate) fn set_ref(&self, idx: u32) {
        if let Some(m) = self.arena.meta.get(idx as usize)
            && m.referenced.load(Relaxed) == 0
        {
            m.referenced.store(1, Relaxed);
        }
    }

    /// `bpf_lru_pop_free`: a node for CPU `cpu`, taken off the free lists and
    /// put on the CPU's pending list (common) or its inactive list (per-CPU),
    /// with the reference bit clear. `evict(idx)` must unlink `idx` from the
    /// hash table and say whether it was linked. `None` when no node could be
    /// found or evicted.
    pub(crate) fn pop_free(&self, cpu: usize, evict: Evict<'_>) -> Option<u32> {
        match &self.mode {
            Mode::Percpu { lists } => {
                let a = &self.arena;
                let mut l = lists[cpu % lists.len()].lock();
                l.rotate(a);
                let free = l.head(FREE);
                if a.is_empty(free) {
                    l.shrink(a, PERCPU_FREE_TARGET, free, FREE, evict);
                }
                if a.is_empty(free) {
                    return None;
                }
                let node = a.next(free);
                a.clear_ref(node);
                l.node_move(a, node, INACTIVE);
                Some(node)
            }
            Mode::Common {
                global,
                locals,
                target_free,
            } => {
                let cpu = cpu % locals.len();
                let first_steal = {
                    let mut loc = locals[cpu].lock();
                    let mut node = self.local_pop_free(&loc);
                    if node.is_none() {
                        let mut g = global.lock();
                        self.refill_local(&mut g, &loc, *target_free, evict);
                        drop(g);
                        node = self.local_pop_free(&loc);
                    }
                    if let Some(node) = node {
                        self.add_pending(&mut loc, cpu, node);
                        return Some(node);
                    }
                    loc.next_steal
                };
                // Nothing on the global lists: steal from the CPUs' local
                // lists, round robin from `next_steal`.
                let mut steal = first_steal;
                let node = loop {
                    let got = {
                        let victim = locals[steal].lock();
                        self.local_pop_free(&victim)
                            .or_else(|| self.local_pop_pending(&victim, evict))
                    };
                    steal = (steal + 1) % locals.len();
                    if got.is_some() || steal == first_steal {
                        break got;
                    }
                };
                let mut loc = locals[cpu].lock();
                loc.next_steal = steal;
                let node = node?;
                self.add_pending(&mut loc, cpu, node);
                Some(node)
            }
        }
    }

    /// `bpf_lru_list_pop_free_to_local`: flush the pending list, rotate, then
    /// move up to `target` nodes to the local free list (free ones first, then
    /// by shrinking).
    fn refill_local(&self, g: &mut ListState, loc: &Local, target: usize, evict: Evict<'_>) {
        let a = &self.arena;
        // `__local_list_flush`: oldest pending first, each onto the head.
        let pending = loc.pending_head();
        let mut node = a.prev(pending);
        while node != pending {
            let prev = a.prev(node);
            let tgt = if a.is_ref(node) { ACTIVE } else { INACTIVE };
            g.move_in(a, node, tgt);
            node = prev;
        }
        g.rotate(a);
        let free = g.head(FREE);
        let mut nfree = 0;
        while nfree < target && !a.is_empty(free) {
            let node = a.next(free);
            g.move_to_free(a, node, loc.free_head(), LOCAL_FREE);
            nfree += 1;
        }
        if nfree < target {
            g.shrink(a, target - nfree, loc.free_head(), LOCAL_FREE, evict);
        }
    }

    /// `__local_list_pop_free`.
    fn local_pop_free(&self, loc: &Local) -> Option<u32> {
        let a = &self.arena;
        let head = loc.free_head();
        if a.is_empty(head) {
            return None;
        }
        let node = a.next(head);
        a.del(node);
        Some(node)
    }

    /// `__local_list_pop_pending`: the oldest unreferenced pending node that is
    /// in the hash table, else the oldest one at all.
    fn local_pop_pending(&self, loc: &Local, evict: Evict<'_>) -> Option<u32> {
        let a = &self.arena;
        let head = loc.pending_head();
        for force in [false, true] {
            let mut node = a.prev(head);
            while node != head {
                if (force || !a.is_ref(node)) && evict(node) {
                    a.del(node);
                    return Some(node);
                }
                node = a.prev(node);
            }
        }
        None
    }

    /// `__local_list_add_pending`.
    fn add_pending(&self, loc: &mut Local, cpu: usize, node: u32) {
        let a = &self.arena;
        a.meta[node as usize].cpu.store(cpu as u32, Relaxed);
        a.set_kind(node, LOCAL_PENDING);
        a.clear_ref(node);
        a.del(node);
        a.add_head(node, loc.pending_head());
    }

    /// `bpf_lru_push_free`: gives back a node the caller removed from the hash
    /// table (or never linked).
    pub(crate) fn push_free(&self, idx: u32) {
        if idx >= self.n {
            debug_assert!(false, "push_free of node {idx}");
            return;
        }
        let a = &self.arena;
        match &self.mode {
            Mode::Percpu { lists } => {
                let cpu = a.meta[idx as usize].cpu.load(Relaxed) as usize;
                let mut l = lists[cpu % lists.len()].lock();
                if a.kind(idx) == FREE {
                    debug_assert!(false, "double free of LRU node {idx}");
                    return;
                }
                l.node_move(a, idx, FREE);
            }
            Mode::Common { global, locals, .. } => {
                let kind = a.kind(idx);
                if kind == FREE || kind == LOCAL_FREE {
                    debug_assert!(false, "double free of LRU node {idx}");
                    return;
                }
                if kind == LOCAL_PENDING {
                    let cpu = a.meta[idx as usize].cpu.load(Relaxed) as usize;
                    let loc = locals[cpu % locals.len()].lock();
                    // A flush may have moved it to the global lists meanwhile.
                    if a.kind(idx) == LOCAL_PENDING {
                        a.set_kind(idx, LOCAL_FREE);
                        a.clear_ref(idx);
                        a.move_head(idx, loc.free_head());
                        return;
                    }
                }
                let mut g = global.lock();
                g.node_move(a, idx, FREE);
            }
        }
    }

    /// Number of CPUs the lists were built for.
    #[cfg(test)]
    fn ncpus(&self) -> usize {
        match &self.mode {
            Mode::Percpu { lists } => lists.len(),
            Mode::Common { locals, .. } => locals.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashSet;

    /// A stand-in hash table: the set of linked nodes.
    struct Table(RefCell<HashSet<u32>>);

    impl Table {
        fn evict(&self, i: u32) -> bool {
            self.0.borrow_mut().remove(&i)
        }
        fn link(&self, i: u32) {
            assert!(self.0.borrow_mut().insert(i));
        }
    }

    fn kinds(l: &Lru) -> [usize; 5] {
        let mut k = [0; 5];
        for i in 0..l.n {
            k[l.arena.kind(i) as usize] += 1;
        }
        k
    }

    #[test]
    fn common_refills_target_free_then_evicts_unreferenced_tail() {
        let lru = Lru::new(16, 2, false, "t").unwrap();
        assert_eq!(lru.ncpus(), 2);
        let t = Table(RefCell::new(HashSet::new()));
        let ev = |i| t.evict(i);
        // target_free = 16 / 2 / 2 = 4: each refill takes 4 free nodes.
        let mut order = Vec::new();
        for _ in 0..16 {
            let n = lru.pop_free(0, &ev).unwrap();
            t.link(n);
            order.push(n);
        }
        assert_eq!(kinds(&lru), [0, 12, 0, 0, 4]);
        // Reference the two oldest: they survive the next refill.
        lru.set_ref(order[0]);
        lru.set_ref(order[1]);
        let n = lru.pop_free(0, &ev).unwrap();
        let gone: Vec<u32> = order
            .iter()
            .copied()
            .filter(|i| !t.0.borrow().contains(i))
            .collect();
        // Four evicted, oldest unreferenced first; the node handed out is one.
        assert_eq!(gone, order[2..6].to_vec());
        assert!(gone.contains(&n));
        let Mode::Common { global, .. } = &lru.mode else {
            unreachable!()
        };
        assert_eq!(global.lock().counts(), [2, 10]);
    }

    #[test]
    fn common_steals_when_global_lists_are_empty() {
        // 2 nodes, 2 CPUs (target_free 1): CPU 1 parks node `a` on its pending
        // list, CPU 0 holds `b`, which cannot be evicted: CPU 0's next
        // allocation finds nothing on the global lists and steals `a`.
        let lru = Lru::new(2, 2, false, "t").unwrap();
        let t = Table(RefCell::new(HashSet::new()));
        let any = |i| t.evict(i);
        let a = lru.pop_free(1, &any).unwrap();
        t.link(a);
        let b = lru.pop_free(0, &any).unwrap();
        t.link(b);
        let only_a = |i| i == a && t.evict(i);
        assert_eq!(lru.pop_free(0, &only_a), Some(a));
        assert_eq!(lru.arena.kind(a), LOCAL_PENDING);
        assert_eq!(lru.arena.meta[a as usize].cpu.load(Relaxed), 0);
        assert!(t.0.borrow().contains(&b));
        // Nothing left to steal.
        assert_eq!(lru.pop_free(0, &only_a), None);
    }

    #[test]
    fn percpu_lists_are_separate() {
        let lru = Lru::new(8, 2, true, "t").unwrap();
        let t = Table(RefCell::new(HashSet::new()));
        let ev = |i| t.evict(i);
        let b: Vec<u32> = (0..4).map(|_| lru.pop_free(1, &ev).unwrap()).collect();
        b.iter().for_each(|&n| t.link(n));
        for _ in 0..20 {
            let n = lru.pop_free(0, &ev).unwrap();
            assert!(n < 4, "CPU 0 owns nodes 0..4, got {n}");
            t.link(n);
        }
        assert!(b.iter().all(|n| t.0.borrow().contains(n)));
        // Push back and reuse.
        assert!(t.evict(b[0]));
        lru.push_free(b[0]);
        assert_eq!(lru.pop_free(1, &ev), Some(b[0]));
    }

    #[test]
    fn nothing_evictable_gives_none() {
        for percpu in [false, true] {
            let lru = Lru::new(2, 1, percpu, "t").unwrap();
            let never = |_| false;
            assert!(lru.pop_free(0, &never).is_some());
            assert!(lru.pop_free(0, &never).is_some());
            assert_eq!(lru.pop_free(0, &never), None);
        }
    }
}
