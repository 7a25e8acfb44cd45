// SPDX-License-Identifier: GPL-2.0
/*
 * LPM trie (longest-prefix match on the IPv4 destination) and a bloom filter
 * of source addresses. Input is an IPv4 header at packet offset 0 (socket
 * filter view). Returns the matched prefix's value (0 if none) * 10 + 1 if
 * the source address was already in the bloom filter; then adds the source.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct lpm_v4_key {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__type(value, __u32);
	__uint(max_entries, 1024);
	__uint(map_extra, 3);   /* number of hash functions */
} seen_src SEC(".maps");

SEC("socket")
int lpm_bloom(struct __sk_buff *skb)
{
	struct lpm_v4_key key = { .prefixlen = 32 };
	__u32 src, *route, ret = 0;

	if (bpf_skb_load_bytes(skb, 16, &key.addr, 4))
		return 0;
	if (bpf_skb_load_bytes(skb, 12, &src, 4))
		return 0;
	route = bpf_map_lookup_elem(&routes, &key);
	if (route)
		ret = *route * 10;
	if (bpf_map_peek_elem(&seen_src, &src) == 0)
		ret += 1;
	bpf_map_push_elem(&seen_src, &src, BPF_ANY);
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
