//! The list machinery of Linux's `bpf_lru_list.c`, re-implemented: intrusive
//! circular doubly linked lists with sentinel heads over node indices, the
//! active / inactive / free lists of one LRU list with their counts and the
//! `next_inactive_rotation` cursor, rotation of the active and inactive lists,
//! and shrinking (eviction) from the inactive tail with the forced fallback.
//!
//! Every operation here must be called with the lock that owns the list held
//! (the caller passes the guarded [`ListState`]); links are relaxed atomics only
//! so that a logic error can never be undefined behaviour.

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering::Relaxed};

/// Node kinds (`enum bpf_lru_list_type`).
pub(super) const ACTIVE: u8 = 0;
pub(super) const INACTIVE: u8 = 1;
pub(super) const FREE: u8 = 2;
pub(super) const LOCAL_FREE: u8 = 3;
pub(super) const LOCAL_PENDING: u8 = 4;

/// Links of one node or sentinel.
pub(super) struct Link {
    prev: AtomicU32,
    next: AtomicU32,
}

impl Link {
    pub(super) fn new() -> Link {
        Link {
            prev: AtomicU32::new(0),
            next: AtomicU32::new(0),
        }
    }
}

/// Per-node state besides the links.
pub(super) struct Meta {
    /// Reference bit: set without any lock by lookups.
    pub(super) referenced: AtomicU8,
    /// One of the kinds above (changed under the owning lock).
    pub(super) kind: AtomicU8,
    /// CPU whose local pending list (common LRU) or whose list (per-CPU LRU)
    /// holds the node.
    pub(super) cpu: AtomicU32,
}

impl Meta {
    pub(super) fn new() -> Meta {
        Meta {
            referenced: AtomicU8::new(0),
            kind: AtomicU8::new(FREE),
            cpu: AtomicU32::new(0),
        }
    }
}

/// Nodes and sentinels: indices `< n` are nodes, the rest sentinels.
pub(super) struct Arena {
    pub(super) links: Box<[Link]>,
    pub(super) meta: Box<[Meta]>,
}

impl Arena {
    #[inline]
    pub(super) fn next(&self, i: u32) -> u32 {
        self.links[i as usize].next.load(Relaxed)
    }

    #[inline]
    pub(super) fn prev(&self, i: u32) -> u32 {
        self.links[i as usize].prev.load(Relaxed)
    }

    /// Makes `h` an empty list.
    pub(super) fn init_head(&self, h: u32) {
        self.links[h as usize].next.store(h, Relaxed);
        self.links[h as usize].prev.store(h, Relaxed);
    }

    pub(super) fn is_empty(&self, h: u32) -> bool {
        self.next(h) == h
    }

    /// Inserts `e` right after `h` (at the head of the list).
    pub(super) fn add_head(&self, e: u32, h: u32) {
        let next = self.next(h);
        self.links[e as usize].prev.store(h, Relaxed);
        self.links[e as usize].next.store(next, Relaxed);
        self.links[next as usize].prev.store(e, Relaxed);
        self.links[h as usize].next.store(e, Relaxed);
    }

    /// Unlinks `e` from whatever list holds it.
    pub(super) fn del(&self, e: u32) {
        let prev = self.prev(e);
        let next = self.next(e);
        self.links[prev as usize].next.store(next, Relaxed);
        self.links[next as usize].prev.store(prev, Relaxed);
        self.links[e as usize].prev.store(e, Relaxed);
        self.links[e as usize].next.store(e, Relaxed);
    }

    /// `list_move`: unlink `e` and insert it at the head of `h`.
    pub(super) fn move_head(&self, e: u32, h: u32) {
        self.del(e);
        self.add_head(e, h);
    }

    #[inline]
    pub(super) fn is_ref(&self, i: u32) -> bool {
        self.meta[i as usize].referenced.load(Relaxed) != 0
    }

    #[inline]
    pub(super) fn clear_ref(&self, i: u32) {
        self.meta[i as usize].referenced.store(0, Relaxed);
    }

    #[inline]
    pub(super) fn kind(&self, i: u32) -> u8 {
        self.meta[i as usize].kind.load(Relaxed)
    }

    #[inline]
    pub(super) fn set_kind(&self, i: u32, k: u8) {
        self.meta[i as usize].kind.store(k, Relaxed);
    }
}

/// Removal of a node from the hash table (`del_from_htab`): true if the node
/// was linked and is now unlinked (the caller then owns it).
pub(super) type Evict<'a> = &'a dyn Fn(u32) -> bool;

/// One LRU list (`struct bpf_lru_list`): sentinels `base + ACTIVE`,
/// `base + INACTIVE`, `base + FREE`.
pub(super) struct ListState {
    base: u32,
    /// Active and inactive counts (free nodes are not counted, as in Linux).
    counts: [usize; 2],
    /// Where the next inactive rotation starts (a node of the inactive list or
    /// its sentinel).
    next_inactive_rotation: u32,
    nr_scans: usize,
}

impl ListState {
    pub(super) fn new(arena: &Arena, base: u32, nr_scans: usize) -> ListState {
        for k in [ACTIVE, INACTIVE, FREE] {
            arena.init_head(base + k as u32);
        }
        ListState {
            base,
            counts: [0; 2],
            next_inactive_rotation: base + INACTIVE as u32,
            nr_scans,
        }
    }

    #[inline]
    pub(super) fn head(&self, kind: u8) -> u32 {
        self.base + kind as u32
    }

    fn count_inc(&mut self, kind: u8) {
        if let Some(c) = self.counts.get_mut(kind as usize) {
            *c += 1;
        }
    }

    fn count_dec(&mut self, kind: u8) {
        if let Some(c) = self.counts.get_mut(kind as usize) {
            *c = c.saturating_sub(1);
        }
    }

    /// Keeps the rotation cursor valid when `node` leaves its place.
    fn step_cursor_off(&mut self, a: &Arena, node: u32) {
        if node == self.next_inactive_rotation {
            self.next_inactive_rotation = a.prev(node);
        }
    }

    /// Adds a free node at populate time.
    pub(super) fn populate(&mut self, a: &Arena, node: u32) {
        a.set_kind(node, FREE);
        a.clear_ref(node);
        a.add_head(node, self.head(FREE));
    }

    /// `__bpf_lru_node_move`: between or within the active, inactive and free
    /// lists; clears the reference bit.
    pub(super) fn node_move(&mut self, a: &Arena, node: u32, tgt: u8) {
        let kind = a.kind(node);
        if kind >= LOCAL_FREE || tgt >= LOCAL_FREE {
            debug_assert!(false, "node_move of a local node");
            return;
        }
        if kind != tgt {
            self.count_dec(kind);
            self.count_inc(tgt);
            a.set_kind(node, tgt);
        }
        a.clear_ref(node);
        self.step_cursor_off(a, node);
        a.move_head(node, self.head(tgt));
    }

    /// `__bpf_lru_node_move_to_free`: onto `free_head` (the list's own free
    /// list or a CPU's local free list) as `free_kind`; the bit stays.
    pub(super) fn move_to_free(&mut self, a: &Arena, node: u32, free_head: u32, free_kind: u8) {
        let kind = a.kind(node);
        if kind >= LOCAL_FREE {
            debug_assert!(false, "move_to_free of a local node");
            return;
        }
        self.step_cursor_off(a, node);
        self.count_dec(kind);
        a.set_kind(node, free_kind);
        a.move_head(node, free_head);
    }

    /// `__bpf_lru_node_move_in`: from a local list onto this list.
    pub(super) fn move_in(&mut self, a: &Arena, node: u32, tgt: u8) {
        if a.kind(node) < LOCAL_FREE || tgt >= LOCAL_FREE {
            debug_assert!(false, "move_in of a non-local node");
            return;
        }
        self.count_inc(tgt);
        a.set_kind(node, tgt);
        a.clear_ref(node);
        a.move_head(node, self.head(tgt));
    }

    /// `__bpf_lru_list_rotate_active`: from the tail, referenced nodes go back
    /// to the active head, the others to the inactive head; at most
    /// `nr_scans` nodes, stopping at the node that was first.
    fn rotate_active(&mut self, a: &Arena) {
        let head = self.head(ACTIVE);
        let first = a.next(head);
        let mut node = a.prev(head);
        let mut i = 0;
        while node != head {
            let prev = a.prev(node);
            let tgt = if a.is_ref(node) { ACTIVE } else { INACTIVE };
            self.node_move(a, node, tgt);
            i += 1;
            if i == self.nr_scans || node == first {
                break;
            }
            node = prev;
        }
    }

    /// `__bpf_lru_list_rotate_inactive`: walks backwards from the rotation
    /// cursor (wrapping over the sentinel) for at most `nr_scans` nodes, up to
    /// the node after the cursor; referenced nodes move to the active list.
    fn rotate_inactive(&mut self, a: &Arena) {
        let head = self.head(INACTIVE);
        if a.is_empty(head) {
            return;
        }
        let mut last = a.next(self.next_inactive_rotation);
        if last == head {
            last = a.next(last);
        }
        let mut cur = self.next_inactive_rotation;
        let mut next = head;
        let mut i = 0;
        while i < self.nr_scans {
            if cur == head {
                if a.is_empty(head) {
                    break;
                }
                cur = a.prev(cur);
                continue;
            }
            next = a.prev(cur);
            if a.is_ref(cur) {
                self.node_move(a, cur, ACTIVE);
            }
            if cur == last {
                break;
            }
            cur = next;
            i += 1;
        }
        self.next_inactive_rotation = next;
    }

    /// `__bpf_lru_list_rotate`.
    pub(super) fn rotate(&mut self, a: &Arena) {
        if self.counts[INACTIVE as usize] < self.counts[ACTIVE as usize] {
            self.rotate_active(a);
        }
        self.rotate_inactive(a);
    }

    /// `__bpf_lru_list_shrink_inactive`: from the inactive tail, referenced
    /// nodes move to the active list, unreferenced ones are evicted onto
    /// `free_head`, until `target` are freed or `nr_scans` nodes were seen.
    fn shrink_inactive(
        &mut self,
        a: &Arena,
        target: usize,
        free_head: u32,
        free_kind: u8,
        evict: Evict<'_>,
    ) -> usize {
        let head = self.head(INACTIVE);
        let mut node = a.prev(head);
        let mut freed = 0;
        let mut i = 0;
        while node != head {
            let prev = a.prev(node);
            if a.is_ref(node) {
                self.node_move(a, node, ACTIVE);
            } else if evict(node) {
                self.move_to_free(a, node, free_head, free_kind);
                freed += 1;
                if freed == target {
                    break;
                }
            }
            i += 1;
            if i == self.nr_scans {
                break;
            }
            node = prev;
        }
        freed
    }

    /// `__bpf_lru_list_shrink`: shrink the inactive list; if nothing was freed,
    /// evict the first evictable node from the tail of the inactive list (or
    /// of the active list when the inactive one is empty), ignoring reference
    /// bits.
    pub(super) fn shrink(
        &mut self,
        a: &Arena,
        target: usize,
        free_head: u32,
        free_kind: u8,
        evict: Evict<'_>,
    ) -> usize {
        let freed = self.shrink_inactive(a, target, free_head, free_kind, evict);
        if freed > 0 {
            return freed;
        }
        let inactive = self.head(INACTIVE);
        let head = if a.is_empty(inactive) {
            self.head(ACTIVE)
        } else {
            inactive
        };
        let mut node = a.prev(head);
        while node != head {
            let prev = a.prev(node);
            if evict(node) {
                self.move_to_free(a, node, free_head, free_kind);
                return 1;
            }
            node = prev;
        }
        0
    }

    #[cfg(test)]
    pub(super) fn counts(&self) -> [usize; 2] {
        self.counts
    }
}
