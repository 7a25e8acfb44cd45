// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_for_each_map_elem over array, hash (BPF_F_ZERO_SEED, so the bucket
 * order is the same in every run and in Linux) and percpu_array. Packet
 * byte 0 selects the operation, byte 1 its parameter (see README.md):
 *   0  array: value += key + 1 for every element, returns calls << 16 | Σ values
 *   1  hash: insert keys 1..p (value = key * 3), then walk it recording the
 *      visit order in `order`, returns calls << 16 | Σ key * value (low 16)
 *   2  percpu_array: value += 10 for the current CPU, returns calls << 16 | Σ
 *   3  array: stop (return 1) at key p, returns calls
 *   4  hash: delete every element whose key is odd from inside the callback,
 *      returns calls << 8 | deleted
 *   5  non-zero flags: returns what the helper returned (-EINVAL)
 *   6  hash: stop after p elements, recording the order, returns calls
 *   7  percpu_hash and lru_hash (zero seed, 32 entries): insert keys 1..p
 *      (value = key; lru only if absent), walk both adding 1 to every value
 *      (lru order recorded), returns pcpu calls << 24 | lru calls << 16 |
 *      Σ key * value (low 16)
 *   8  nested: for every hash element walk percpu_array until key
 *      (hash key % 8), returns calls << 16 | Σ inner calls
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 16);
} arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_ZERO_SEED);
} hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 8);
} pcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 32);
	__uint(map_flags, BPF_F_ZERO_SEED);
} pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 32);
	__uint(map_flags, BPF_F_ZERO_SEED);
} lru SEC(".maps");

/* Keys in the order the last hash walk visited them (slot 0 = how many). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 65);
} order SEC(".maps");

struct walk {
	__u64 sum;
	__u32 n;
	__u32 param;
	__u32 deleted;
};

static void record(__u32 pos, __u32 key)
{
	__u32 *slot;
	__u32 zero = 0;

	pos += 1;
	slot = bpf_map_lookup_elem(&order, &pos);
	if (slot)
		*slot = key;
	slot = bpf_map_lookup_elem(&order, &zero);
	if (slot)
		*slot = pos;
}

static long add_index(struct bpf_map *map, __u32 *key, __u64 *val, struct walk *w)
{
	*val += *key + 1;
	w->sum += *val;
	w->n++;
	return 0;
}

static long hash_visit(struct bpf_map *map, __u32 *key, __u64 *val, struct walk *w)
{
	record(w->n, *key);
	w->sum += (__u64)*key * *val;
	w->n++;
	return 0;
}

static long pcpu_add(struct bpf_map *map, __u32 *key, __u64 *val, struct walk *w)
{
	*val += 10;
	w->sum += *val;
	w->n++;
	return 0;
}

static long stop_at(struct bpf_map *map, __u32 *key, __u64 *val, struct walk *w)
{
	w->n++;
	return *key == w->param ? 1 : 0;
}

static long delete_odd(struct bpf_map *map, __u32 *key, __u64 *val, struct walk *w)
{
	w->n++;
	if (*key & 1) {
		if (bpf_map_delete_elem(map, key) == 0)
			w->deleted++;
	}
	return 0;
}

static long stop_after(struct bpf_map *map, __u32 *key, __u64 *val, struct walk *w)
{
	record(w->n, *key);
	w->n++;
	return w->n >= w->param ? 1 : 0;
}

static long add_one(struct bpf_map *map, __u32 *key, __u64 *val, struct walk *w)
{
	record(w->n, *key);
	*val += 1;
	w->sum += (__u64)*key * *val;
	w->n++;
	return 0;
}

static long count_inner(struct bpf_map *map, __u32 *key, __u64 *val, struct walk *w)
{
	w->n++;
	return *key >= w->param ? 1 : 0;
}

static long nested(struct bpf_map *map, __u32 *key, __u64 *val, struct walk *w)
{
	struct walk inner = { .param = *key % 8 };
	long calls;

	calls = bpf_for_each_map_elem(&pcpu, count_inner, &inner, 0);
	if (calls != inner.n)
		return 1;
	w->sum += calls;
	w->n++;
	return 0;
}

static long never(struct bpf_map *map, __u32 *key, __u64 *val, struct walk *w)
{
	w->n++;
	return 0;
}

SEC("tc")
int for_each(struct __sk_buff *skb)
{
	struct walk w = {};
	__u8 hdr[2];
	long calls;
	__u32 k;

	if (bpf_skb_load_bytes(skb, 0, hdr, 2))
		return -1;
	w.param = hdr[1];
	switch (hdr[0]) {
	case 0:
		calls = bpf_for_each_map_elem(&arr, add_index, &w, 0);
		if (calls != w.n)
			return -2;
		return calls << 16 | (w.sum & 0xffff);
	case 1:
		for (k = 1; k <= 40; k++) {
			__u64 v = k * 3;

			if (k > w.param)
				break;
			bpf_map_update_elem(&hash, &k, &v, BPF_ANY);
		}
		calls = bpf_for_each_map_elem(&hash, hash_visit, &w, 0);
		if (calls != w.n)
			return -2;
		return calls << 16 | (w.sum & 0xffff);
	case 2:
		calls = bpf_for_each_map_elem(&pcpu, pcpu_add, &w, 0);
		return calls << 16 | (w.sum & 0xffff);
	case 3:
		calls = bpf_for_each_map_elem(&arr, stop_at, &w, 0);
		if (calls != w.n)
			return -2;
		return calls;
	case 4:
		calls = bpf_for_each_map_elem(&hash, delete_odd, &w, 0);
		if (calls != w.n)
			return -2;
		return calls << 8 | w.deleted;
	case 5:
		calls = bpf_for_each_map_elem(&arr, never, &w, w.param);
		return calls + w.n * 1000;
	case 6:
		calls = bpf_for_each_map_elem(&hash, stop_after, &w, 0);
		return calls;
	case 7: {
		long lru_calls;
		__u64 sum;

		for (k = 1; k <= 30; k++) {
			__u64 v = k;

			if (k > w.param)
				break;
			bpf_map_update_elem(&pcpu_hash, &k, &v, BPF_ANY);
			bpf_map_update_elem(&lru, &k, &v, BPF_NOEXIST);
		}
		calls = bpf_for_each_map_elem(&pcpu_hash, add_one, &w, 0);
		sum = w.sum;
		w.n = 0;
		lru_calls = bpf_for_each_map_elem(&lru, add_one, &w, 0);
		return calls << 24 | lru_calls << 16 | ((sum + w.sum) & 0xffff);
	}
	case 8:
		calls = bpf_for_each_map_elem(&hash, nested, &w, 0);
		return calls << 16 | (w.sum & 0xffff);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
