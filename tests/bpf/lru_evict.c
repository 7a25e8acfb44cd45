// SPDX-License-Identifier: GPL-2.0
/* LRU eviction order: drives four LRU maps past capacity with the same
 * pseudo-random mix of updates (BPF_ANY / BPF_NOEXIST / BPF_EXIST), lookups
 * (which set the reference bit and bump the value) and deletes, so that the
 * surviving keys and per-map counters can be compared with Linux.
 *
 * Packet: byte 0 = pattern (0 mixed, 1 sequential inserts with a hot set,
 * 2 deletes of a key range), byte 1 = seed, bytes 2-3 = operations (LE,
 * at most 1024), byte 4 = key space (0 = 256).
 * Returns the lookup hits of the four maps, 8 bits each. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define NMAPS 4

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} lru_common SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, __u32);
	__type(value, __u64);
} lru_nocommon SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} lru_pcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, __u32);
	__type(value, __u64);
} lru_pcpu_nocommon SEC(".maps");

/* Per map m: [4m] lookup hits, [4m+1] misses, [4m+2] failed updates,
 * [4m+3] sum of the negated errnos of failed updates and deletes. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4 * NMAPS);
	__type(key, __u32);
	__type(value, __u64);
} lru_stats SEC(".maps");

struct walk {
	__u32 pattern;
	__u32 seed;
	__u32 space;
	__u32 hits[NMAPS];
};

static __always_inline void bump(__u32 slot, __u64 by)
{
	__u64 *v = bpf_map_lookup_elem(&lru_stats, &slot);

	if (v)
		*v += by;
}

/* One operation on map number m. */
static __always_inline void op(void *map, __u32 m, __u32 kind, __u32 key,
			       __u64 val, struct walk *w)
{
	__u64 *v;
	long r;

	switch (kind) {
	case 0: /* lookup: sets the reference bit */
		v = bpf_map_lookup_elem(map, &key);
		if (v) {
			*v += 1;
			w->hits[m & (NMAPS - 1)]++;
			bump(4 * m, 1);
		} else {
			bump(4 * m + 1, 1);
		}
		return;
	case 1:
		r = bpf_map_update_elem(map, &key, &val, BPF_ANY);
		break;
	case 2:
		r = bpf_map_update_elem(map, &key, &val, BPF_NOEXIST);
		break;
	case 3:
		r = bpf_map_update_elem(map, &key, &val, BPF_EXIST);
		break;
	default:
		r = bpf_map_delete_elem(map, &key);
		if (r)
			bump(4 * m + 3, -r);
		return;
	}
	if (r) {
		bump(4 * m + 2, 1);
		bump(4 * m + 3, -r);
	}
}

static int step(__u32 i, void *data)
{
	struct walk *w = data;
	__u32 x = (i + 1) * 2654435761u ^ (w->seed * 40503u + 0x9e37u);
	__u32 kind, key;

	x ^= x >> 15;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	key = x % w->space;
	switch (w->pattern) {
	case 1:
		/* Fresh keys, with a lookup of a hot key every third step. */
		if (i % 3 == 2) {
			kind = 0;
			key = (i / 3) % 24;
		} else {
			kind = 1;
			key = 1000 + w->seed * 1024 + i;
		}
		break;
	case 2:
		kind = 4;
		key = i;
		break;
	default:
		switch ((x >> 24) & 15) {
		case 0 ... 6:
			kind = 1;
			break;
		case 7 ... 11:
			kind = 0;
			break;
		case 12:
			kind = 2;
			break;
		case 13:
			kind = 3;
			break;
		default:
			kind = 4;
			break;
		}
	}
	op(&lru_common, 0, kind, key, i, w);
	op(&lru_nocommon, 1, kind, key, i, w);
	op(&lru_pcpu, 2, kind, key, i, w);
	op(&lru_pcpu_nocommon, 3, kind, key, i, w);
	return 0;
}

SEC("xdp")
int lru_evict(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	struct walk w = {};
	__u32 n;

	if (data + 5 > end)
		return 0;
	w.pattern = p[0];
	w.seed = p[1];
	w.space = p[4] ? p[4] : 256;
	n = p[2] | (__u32)p[3] << 8;
	if (n > 1024)
		n = 1024;
	bpf_loop(n, step, &w, 0);
	return (w.hits[0] & 0xff) | (w.hits[1] & 0xff) << 8 |
	       (w.hits[2] & 0xff) << 16 | (w.hits[3] & 0xff) << 24;
}

char LICENSE[] SEC("license") = "GPL";
