// SPDX-License-Identifier: GPL-2.0
/*
 * 33 tail calls in a row: `chain_entry` and `chain_step` count their runs
 * in the per-invocation context word cb[0] and tail-call slot 0 of `chain`
 * (which holds chain_step). Linux allows 33 tail calls
 * (MAX_TAIL_CALL_CNT); the 34th bpf_tail_call fails and the program falls
 * through, returning the count: 1 + 33 = 34 with chain_step in slot 0, 1
 * with the slot empty. `chain_hits` (array) counts fall-throughs.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} chain SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} chain_hits SEC(".maps");

static __always_inline int step(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *h;

	skb->cb[0]++;
	bpf_tail_call(skb, &chain, 0);
	h = bpf_map_lookup_elem(&chain_hits, &zero);
	if (h)
		__sync_fetch_and_add(h, 1);
	return skb->cb[0];
}

SEC("tc")
int chain_entry(struct __sk_buff *skb)
{
	skb->cb[0] = 0;
	return step(skb);
}

SEC("tc")
int chain_step(struct __sk_buff *skb)
{
	return step(skb);
}

char LICENSE[] SEC("license") = "GPL";
