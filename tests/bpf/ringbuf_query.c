// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_ringbuf_query on a 4096-byte ring buffer (nobody consumes it):
 * outputs (len % 64) bytes, reserves+discards one record, then queries
 * BPF_RB_AVAIL_DATA, BPF_RB_RING_SIZE, BPF_RB_CONS_POS and BPF_RB_PROD_POS.
 * Returns ring_size / 64 << 24 | (prod - cons) % 65536, with the avail
 * value checked against prod - cons (bit 23 when they disagree). A full
 * ring (output fails with -EAGAIN) sets bit 22.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

SEC("tc")
int ringbuf_query(struct __sk_buff *skb)
{
	__u8 buf[64] = {};
	__u32 n = skb->len % 64, flags = 0;
	__u64 avail, size, cons, prod;
	__u32 *r;

	buf[0] = n;
	if (bpf_ringbuf_output(&rb, buf, n & 63, BPF_RB_NO_WAKEUP) == -11)
		flags |= 1 << 22;
	r = bpf_ringbuf_reserve(&rb, 8, 0);
	if (r) {
		*r = n;
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
	}
	avail = bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA);
	size = bpf_ringbuf_query(&rb, BPF_RB_RING_SIZE);
	cons = bpf_ringbuf_query(&rb, BPF_RB_CONS_POS);
	prod = bpf_ringbuf_query(&rb, BPF_RB_PROD_POS);
	if (avail != prod - cons)
		flags |= 1 << 23;
	return (size / 64) << 24 | flags | ((prod - cons) % 65536);
}

char LICENSE[] SEC("license") = "GPL";
