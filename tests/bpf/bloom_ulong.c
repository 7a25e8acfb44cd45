// SPDX-License-Identifier: GPL-2.0
/*
 * Bloom filter whose map_extra (number of hash functions) is declared with
 * libbpf's 64-bit `__ulong()` form. Pushes skb->len, then returns 1 if
 * len + 1 may be present (0 on a fresh map, almost surely), plus 10 if len
 * is found (always, bloom filters have no false negatives).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "cordon.h"

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__type(value, __u32);
	__uint(max_entries, 64);
	__ulong(map_extra, 5);
} lengths SEC(".maps");

SEC("tc")
int bloom_len(struct __sk_buff *skb)
{
	__u32 len = skb->len, next = skb->len + 1;
	int ret = 0;

	bpf_map_push_elem(&lengths, &len, BPF_ANY);
	if (bpf_map_peek_elem(&lengths, &next) == 0)
		ret += 1;
	if (bpf_map_peek_elem(&lengths, &len) == 0)
		ret += 10;
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
