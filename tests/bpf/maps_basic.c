// SPDX-License-Identifier: GPL-2.0
/*
 * Every plain map type: array, percpu_array, hash, percpu_hash, lru_hash,
 * lru_percpu_hash. The key is the first 4 packet bytes; returns the sum of
 * what the maps hold for it after the updates.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 8);
} arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 8);
	__uint(max_entries, 8);
} pcpu_arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 128);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 128);
} pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 16);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 16);
} lru_pcpu SEC(".maps");

static __always_inline __u64 bump(void *map, __u32 *key, __u64 add)
{
	__u64 *v = bpf_map_lookup_elem(map, key);

	if (v) {
		*v += add;
		return *v;
	}
	bpf_map_update_elem(map, key, &add, BPF_NOEXIST);
	return add;
}

SEC("tc")
int maps_basic(struct __sk_buff *skb)
{
	__u32 key, idx;
	__u64 len = skb->len, sum = 0, *v;

	if (bpf_skb_load_bytes(skb, 0, &key, sizeof(key)))
		return -1;
	idx = key & 7;
	v = bpf_map_lookup_elem(&arr, &idx);
	if (v) {
		*v += len;
		sum += *v;
	}
	v = bpf_map_lookup_elem(&pcpu_arr, &idx);
	if (v) {
		*v += 1;
		sum += *v;
	}
	sum += bump(&hash, &key, 1);
	sum += bump(&pcpu_hash, &key, 2);
	bpf_map_update_elem(&lru, &key, &len, BPF_ANY);
	v = bpf_map_lookup_elem(&lru, &key);
	if (v)
		sum += *v;
	sum += bump(&lru_pcpu, &key, 3);
	if (key == 0xffffffff)
		bpf_map_delete_elem(&hash, &key);
	return sum;
}

char LICENSE[] SEC("license") = "GPL";
