// SPDX-License-Identifier: GPL-2.0
/* prog_array + bpf_tail_call; slots 0 and 1 are filled statically. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int tail_one(struct __sk_buff *skb)
{
	return 1;
}

SEC("tc")
int tail_double(struct __sk_buff *skb)
{
	return skb->len * 2;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int (void *));
} jump_table SEC(".maps") = {
	.values = {
		[0] = (void *)&tail_one,
		[1] = (void *)&tail_double,
	},
};

/* Jumps to slot (first packet byte % 4); slots 2 and 3 are empty: returns 99. */
SEC("tc")
int tail_entry(struct __sk_buff *skb)
{
	__u8 b;

	if (bpf_skb_load_bytes(skb, 0, &b, 1))
		return -1;
	bpf_tail_call(skb, &jump_table, b % 4);
	return 99;
}

char LICENSE[] SEC("license") = "GPL";
