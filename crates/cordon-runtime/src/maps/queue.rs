//! `BPF_MAP_TYPE_QUEUE` (FIFO) and `BPF_MAP_TYPE_STACK` (LIFO), after Linux's
//! `queue_stack_maps.c`: a ring of `max_entries + 1` value slots under a lock;
//! values are copied in and out, so no pointer into the map escapes.

use std::ptr;

use parking_lot::Mutex;

use super::errno::*;
use super::{BPF_EXIST, BPF_NOEXIST, MapDef, MapError};

struct State {
    head: u32,
    tail: u32,
    buf: Box<[u8]>,
}

pub(crate) struct QueueStack {
    state: Mutex<State>,
    size: u32,
    value_size: usize,
    stack: bool,
}

impl QueueStack {
    pub(crate) fn new(def: &MapDef, stack: bool) -> Result<QueueStack, MapError> {
        let size = def.max_entries as u64 + 1;
        let bytes = size
            .checked_mul(def.value_size as u64)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or_else(|| MapError::OutOfMemory {
                name: def.name.clone(),
                bytes: u64::MAX,
                reason: "size overflow".to_string(),
            })?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(bytes)
            .map_err(|e| MapError::OutOfMemory {
                name: def.name.clone(),
                bytes: bytes as u64,
                reason: e.to_string(),
            })?;
        buf.resize(bytes, 0);
        Ok(QueueStack {
            state: Mutex::new(State {
                head: 0,
                tail: 0,
                buf: buf.into_boxed_slice(),
            }),
            size: size as u32,
            value_size: def.value_size as usize,
            stack,
        })
    }

    /// `queue_stack_map_push_elem`.
    ///
    /// # Safety
    /// `value` readable for `value_size` bytes.
    pub(crate) unsafe fn push(&self, value: *const u8, flags: u64) -> i64 {
        if flags & BPF_NOEXIST != 0 || flags > BPF_EXIST {
            return -(EINVAL as i64);
        }
        let mut s = self.state.lock();
        let next_head = if s.head + 1 >= self.size {
            0
        } else {
            s.head + 1
        };
        if next_head == s.tail {
            if flags & BPF_EXIST == 0 {
                return -(E2BIG as i64);
            }
            // Overwrite the oldest element.
            s.tail = if s.tail + 1 >= self.size {
                0
            } else {
                s.tail + 1
            };
        }
        let off = s.head as usize * self.value_size;
        // SAFETY: slot `head` is inside buf; caller's value is readable.
        unsafe { ptr::copy_nonoverlapping(value, s.buf.as_mut_ptr().add(off), self.value_size) };
        s.head = next_head;
        0
    }

    /// Pop (`delete == true`) or peek into `out`.
    ///
    /// # Safety
    /// `out` writable for `value_size` bytes.
    pub(crate) unsafe fn pop(&self, out: *mut u8, delete: bool) -> i64 {
        let mut s = self.state.lock();
        if s.head == s.tail {
            return -(ENOENT as i64);
        }
        let index = if self.stack {
            if s.head == 0 {
                self.size - 1
            } else {
                s.head - 1
            }
        } else {
            s.tail
        };
        let off = index as usize * self.value_size;
        // SAFETY: slot inside buf; out writable.
        unsafe { ptr::copy_nonoverlapping(s.buf.as_ptr().add(off), out, self.value_size) };
        if delete {
            if self.stack {
                s.head = index;
            } else {
                s.tail = if s.tail + 1 >= self.size {
                    0
                } else {
                    s.tail + 1
                };
            }
        }
        0
    }

    pub(crate) fn len(&self) -> u32 {
        let s = self.state.lock();
        (s.head + self.size - s.tail) % self.size
    }
}
