// SPDX-License-Identifier: GPL-2.0
/*
 * array_of_maps and hash_of_maps. Slot 0 of `outer_arr` and key 7 of
 * `outer_hash` are filled statically. Returns the value counted in the inner
 * array (incremented by len) plus 1000 if the hash-of-maps lookup hit.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer_arr SEC(".maps") = {
	.values = { [0] = &inner_a },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__type(key, __u32);
		__type(value, __u64);
		__uint(max_entries, 4);
	});
} outer_hash SEC(".maps") = {
	.values = { [7] = (void *)&inner_b },
};

SEC("tc")
int map_in_map(struct __sk_buff *skb)
{
	__u32 zero = 0, seven = 7;
	__u64 *v, ret = 0;
	void *in;

	in = bpf_map_lookup_elem(&outer_arr, &zero);
	if (!in)
		return -1;
	v = bpf_map_lookup_elem(in, &zero);
	if (!v)
		return -2;
	*v += skb->len;
	ret = *v;
	in = bpf_map_lookup_elem(&outer_hash, &seven);
	if (in) {
		v = bpf_map_lookup_elem(in, &zero);
		if (v) {
			*v += 1;
			ret += 1000;
		}
	}
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
