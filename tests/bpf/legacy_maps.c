// SPDX-License-Identifier: GPL-2.0
/*
 * Legacy map definitions in the "maps" section (struct bpf_map_def).
 * The kernel accepts the program; libbpf >= 1.0 refuses to load such objects.
 * Counts packets per IP protocol byte; returns the new count.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "cordon.h"

struct bpf_map_def SEC("maps") proto_count = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 256,
};

struct bpf_map_def SEC("maps") seen = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 64,
	.map_flags = BPF_F_NO_PREALLOC,
};

SEC("socket")
int legacy_count(struct __sk_buff *skb)
{
	__u8 b;
	__u32 key;
	__u32 one = 1;
	__u64 *v;

	if (bpf_skb_load_bytes(skb, 9, &b, 1))
		return 0;
	key = b;
	bpf_map_update_elem(&seen, &key, &one, BPF_ANY);
	v = bpf_map_lookup_elem(&proto_count, &key);
	if (!v)
		return 0;
	*v += 1;
	return *v;
}

char LICENSE[] SEC("license") = "GPL";
