// SPDX-License-Identifier: GPL-2.0
/*
 * Queue (FIFO) and stack (LIFO): pushes len and len + 1 into both, pops one
 * from each. On empty maps returns len * 1000 + (len + 1).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 16);
	__type(value, __u32);
} fifo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 16);
	__type(value, __u32);
} lifo SEC(".maps");

SEC("tc")
int queue_stack(struct __sk_buff *skb)
{
	__u32 a = skb->len, b = skb->len + 1, q = 0, s = 0;

	bpf_map_push_elem(&fifo, &a, BPF_EXIST);
	bpf_map_push_elem(&fifo, &b, BPF_EXIST);
	bpf_map_push_elem(&lifo, &a, 0);
	bpf_map_push_elem(&lifo, &b, 0);
	if (bpf_map_pop_elem(&fifo, &q))
		return -1;
	if (bpf_map_pop_elem(&lifo, &s))
		return -2;
	/* leave the maps empty again */
	bpf_map_pop_elem(&fifo, &a);
	bpf_map_pop_elem(&lifo, &a);
	return q * 1000 + s;
}

char LICENSE[] SEC("license") = "GPL";
