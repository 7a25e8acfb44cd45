// SPDX-License-Identifier: GPL-2.0
/*
 * Queue and stack with 4 entries: pushes 6 values (len*10 + i) without
 * flags (the 5th and 6th fail with -E2BIG), then one with BPF_EXIST (drops
 * the oldest), peeks and pops everything. Returns a digest:
 * failures << 24 | peek % 256 << 16 | (sum of popped queue values) % 65536,
 * and records the stack pop order in `order` (array of 8).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4);
	__type(value, __u32);
} q SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 4);
	__type(value, __u32);
} s SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} order SEC(".maps");

SEC("tc")
int queue_full(struct __sk_buff *skb)
{
	__u32 base = skb->len * 10, v, peek = 0, sum = 0, fails = 0;

	for (__u32 i = 0; i < 6; i++) {
		v = base + i;
		if (bpf_map_push_elem(&q, &v, 0) == -7 /* E2BIG */)
			fails++;
		if (bpf_map_push_elem(&s, &v, 0) == -7)
			fails++;
	}
	v = base + 100;
	if (bpf_map_push_elem(&q, &v, BPF_EXIST))
		fails += 16;
	if (bpf_map_push_elem(&s, &v, BPF_EXIST))
		fails += 16;
	if (bpf_map_peek_elem(&q, &peek))
		return -1;
	for (int i = 0; i < 5; i++) {
		if (bpf_map_pop_elem(&q, &v))
			break;
		sum += v;
	}
	for (__u32 i = 0; i < 5; i++) {
		__u32 k = i;

		if (bpf_map_pop_elem(&s, &v))
			v = 0xffffffff;
		bpf_map_update_elem(&order, &k, &v, BPF_ANY);
	}
	return fails << 24 | (peek % 256) << 16 | (sum % 65536);
}

char LICENSE[] SEC("license") = "GPL";
