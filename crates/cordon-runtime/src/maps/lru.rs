//! Approximate LRU lists for `lru_hash` / `lru_percpu_hash`, after Linux's
//! `bpf_lru_list.c`: nodes sit on an active, inactive or free list; lookups only
//! set a reference bit; when no free node is left the lists are rotated (referenced
//! nodes get a second chance on the active list) and up to a target number of
//! unreferenced inactive nodes are evicted from the hash table, falling back to a
//! forced eviction that ignores reference bits.
//!
//! With `BPF_F_NO_COMMON_LRU` every CPU slot has its own lists and its own share of
//! the nodes (as Linux's per-CPU LRU); otherwise one common set of lists is shared.

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering::Relaxed};

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use super::MapError;
use super::util::try_slice;

const NIL: u32 = u32::MAX;
const ACTIVE: usize = 0;
const INACTIVE: usize = 1;
const FREE: usize = 2;

/// Linux `LOCAL_FREE_TARGET` / `LOCAL_NR_SCANS` (common LRU).
const COMMON_TARGET: usize = 128;
/// Linux `PERCPU_FREE_TARGET` / `PERCPU_NR_SCANS` (per-CPU LRU).
const PERCPU_TARGET: usize = 4;

struct Node {
    prev: AtomicU32,
    next: AtomicU32,
    /// Reference bit, set by lookups without any lock.
    referenced: AtomicU8,
    /// Which of ACTIVE/INACTIVE/FREE the node is on (guarded by the list lock).
    list: AtomicU8,
    /// Index of the list set owning the node.
    owner: AtomicU32,
}

#[derive(Default)]
struct Lists {
    head: [u32; 3],
    tail: [u32; 3],
    count: [usize; 3],
}

pub(crate) struct Lru {
    nodes: Box<[Node]>,
    sets: Box<[CachePadded<Mutex<Lists>>]>,
    target: usize,
}

impl Lru {
    /// `n` nodes spread over `nsets` list sets (1 for a common LRU).
    pub(crate) fn new(n: u32, nsets: usize, name: &str) -> Result<Lru, MapError> {
        let nodes = try_slice(n as usize, name, |_| Node {
            prev: AtomicU32::new(NIL),
            next: AtomicU32::new(NIL),
            referenced: AtomicU8::new(0),
            list: AtomicU8::new(FREE as u8),
            owner: AtomicU32::new(0),
        })?;
        let sets: Box<[CachePadded<Mutex<Lists>>]> = (0..nsets)
            .map(|_| {
                CachePadded::new(Mutex::new(Lists {
                    head: [NIL; 3],
                    tail: [NIL; 3],
                    count: [0; 3],
                }))
            })
            .collect();
        let lru = Lru {
            nodes,
            sets,
            target: if nsets > 1 {
                PERCPU_TARGET
            } else {
                COMMON_TARGET
            },
        };
        let per = (n as usize).div_ceil(nsets).max(1);
        for s in 0..nsets {
            let mut l = lru.sets[s].lock();
            let lo = (s * per).min(n as usize);
            let hi = ((s + 1) * per).min(n as usize);
            // Push in reverse so that pops hand out ascending indices.
            for i in (lo..hi).rev() {
                lru.nodes[i].owner.store(s as u32, Relaxed);
                lru.push_head(&mut l, FREE, i as u32);
            }
        }
        Ok(lru)
    }

    #[inline]
    pub(crate) fn set_ref(&self, idx: u32) {
        let r = &self.nodes[idx as usize].referenced;
        if r.load(Relaxed) == 0 {
            r.store(1, Relaxed);
        }
    }

    fn push_head(&self, l: &mut Lists, list: usize, idx: u32) {
        let n = &self.nodes[idx as usize];
        let old = l.head[list];
        n.prev.store(NIL, Relaxed);
        n.next.store(old, Relaxed);
        if old == NIL {
            l.tail[list] = idx;
        } else {
            self.nodes[old as usize].prev.store(idx, Relaxed);
        }
        l.head[list] = idx;
        l.count[list] += 1;
        n.list.store(list as u8, Relaxed);
        n.referenced.store(0, Relaxed);
    }

    fn unlink(&self, l: &mut Lists, idx: u32) {
        let n = &self.nodes[idx as usize];
        let list = n.list.load(Relaxed) as usize;
        let prev = n.prev.load(Relaxed);
        let next = n.next.load(Relaxed);
        if prev == NIL {
            l.head[list] = next;
        } else {
            self.nodes[prev as usize].next.store(next, Relaxed);
        }
        if next == NIL {
            l.tail[list] = prev;
        } else {
            self.nodes[next as usize].prev.store(prev, Relaxed);
        }
        l.count[list] -= 1;
    }

    fn move_to(&self, l: &mut Lists, idx: u32, list: usize) {
        self.unlink(l, idx);
        self.push_head(l, list, idx);
    }

    fn is_ref(&self, idx: u32) -> bool {
        self.nodes[idx as usize].referenced.load(Relaxed) != 0
    }

    fn prev(&self, idx: u32) -> u32 {
        self.nodes[idx as usize].prev.load(Relaxed)
    }

    /// `__bpf_lru_list_rotate`: refresh the active list when the inactive one is
    /// smaller, then promote referenced inactive nodes.
    fn rotate(&self, l: &mut Lists) {
        if l.count[INACTIVE] < l.count[ACTIVE] {
            let scans = self.target.min(l.count[ACTIVE]);
            let mut node = l.tail[ACTIVE];
            for _ in 0..scans {
                if node == NIL {
                    break;
                }
                let prev = self.prev(node);
                if self.is_ref(node) {
                    self.move_to(l, node, ACTIVE);
                } else {
                    self.move_to(l, node, INACTIVE);
                }
                node = prev;
            }
        }
        let scans = self.target.min(l.count[INACTIVE]);
        let mut node = l.tail[INACTIVE];
        for _ in 0..scans {
            if node == NIL {
                break;
            }
            let prev = self.prev(node);
            if self.is_ref(node) {
                self.move_to(l, node, ACTIVE);
            }
            node = prev;
        }
    }

    /// `__bpf_lru_list_shrink`: evict up to `target` unreferenced inactive nodes;
    /// if none, force-evict one ignoring reference bits.
    fn shrink(&self, l: &mut Lists, evict: &dyn Fn(u32) -> bool) -> usize {
        let mut freed = 0;
        let scans = self.target.min(l.count[INACTIVE]);
        let mut node = l.tail[INACTIVE];
        for _ in 0..scans {
            if node == NIL {
                break;
            }
            let prev = self.prev(node);
            if self.is_ref(node) {
                self.move_to(l, node, ACTIVE);
            } else if evict(node) {
                self.move_to(l, node, FREE);
                freed += 1;
                if freed == self.target {
                    break;
                }
            }
            node = prev;
        }
        if freed > 0 {
            return freed;
        }
        let list = if l.count[INACTIVE] > 0 {
            INACTIVE
        } else {
            ACTIVE
        };
        let mut node = l.tail[list];
        while node != NIL {
            let prev = self.prev(node);
            if evict(node) {
                self.move_to(l, node, FREE);
                return 1;
            }
            node = prev;
        }
        0
    }

    /// Takes a free node of list set `set` (evicting if needed) and puts it on the
    /// inactive list. `evict(idx)` must unlink `idx` from the hash table and return
    /// whether it was linked. Returns `None` if nothing could be evicted.
    pub(crate) fn pop_free(&self, set: usize, evict: &dyn Fn(u32) -> bool) -> Option<u32> {
        let set = set % self.sets.len();
        let mut l = self.sets[set].lock();
        if l.count[FREE] == 0 {
            self.rotate(&mut l);
            self.shrink(&mut l, evict);
        }
        let idx = l.head[FREE];
        if idx == NIL {
            return None;
        }
        self.move_to(&mut l, idx, INACTIVE);
        Some(idx)
    }

    /// Returns a node to the free list of its owner set.
    pub(crate) fn push_free(&self, idx: u32) {
        let set = self.nodes[idx as usize].owner.load(Relaxed) as usize;
        let mut l = self.sets[set].lock();
        self.move_to(&mut l, idx, FREE);
    }

    pub(crate) fn nsets(&self) -> usize {
        self.sets.len()
    }
}
