// SPDX-License-Identifier: GPL-2.0
/*
 * Ring buffer: one event through bpf_ringbuf_output, one through
 * reserve/submit (or reserve/discard for odd lengths). Returns the number of
 * events submitted (0..2).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u32 len;
	__u32 kind;
	__u64 seq;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

__u64 seq;

SEC("tc")
int ringbuf_events(struct __sk_buff *skb)
{
	struct event ev = { .len = skb->len, .kind = 1 };
	struct event *r;
	int sent = 0;

	ev.seq = __sync_fetch_and_add(&seq, 1);
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0) == 0)
		sent++;

	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r)
		return sent;
	r->len = skb->len;
	r->kind = 2;
	r->seq = __sync_fetch_and_add(&seq, 1);
	if (skb->len & 1) {
		bpf_ringbuf_discard(r, 0);
	} else {
		bpf_ringbuf_submit(r, 0);
		sent++;
	}
	return sent;
}

char LICENSE[] SEC("license") = "GPL";
