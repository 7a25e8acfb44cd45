// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_redirect_map into a devmap, a devmap_hash, a cpumap and an xskmap, and
 * program-side lookups of the devmaps. The packet's first three bytes pick
 * what to do: byte 0 the operation, byte 1 the key, byte 2 the flags of
 * bpf_redirect_map (low 2 bits: the action on a miss; 8 BPF_F_BROADCAST,
 * 16 BPF_F_EXCLUDE_INGRESS; others make the helper return XDP_ABORTED).
 *   0: redirect via tx_dev   1: via tx_hash   2: via cpus   3: via xsks
 *   4: lookup tx_dev[key]: ifindex << 8 | prog id (0xff on a miss)
 *   5: lookup tx_hash[key]: same
 *   6: redirect via tx_dev with key | 1 << 32 (the key is truncated to u32)
 *   7: two calls: tx_dev[key] then tx_dev[key + 1] with the flags (the
 *      second decides)
 * Shorter packets: XDP_DROP; other operations: XDP_PASS.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} tx_dev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} tx_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

static __always_inline int lookup(void *map, __u32 key)
{
	struct bpf_devmap_val *v = bpf_map_lookup_elem(map, &key);

	if (!v)
		return 0xff;
	return v->ifindex << 8 | v->bpf_prog.id;
}

SEC("xdp")
int xdp_redirect_map(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *b = data;
	__u32 key;
	__u64 flags;

	if (data + 3 > data_end)
		return XDP_DROP;
	key = b[1];
	flags = b[2];
	switch (b[0]) {
	case 0:
		return bpf_redirect_map(&tx_dev, key, flags);
	case 1:
		return bpf_redirect_map(&tx_hash, key, flags);
	case 2:
		return bpf_redirect_map(&cpus, key, flags);
	case 3:
		return bpf_redirect_map(&xsks, key, flags);
	case 4:
		return lookup(&tx_dev, key);
	case 5:
		return lookup(&tx_hash, key);
	case 6:
		return bpf_redirect_map(&tx_dev, (__u64)key | 1ULL << 32, flags);
	case 7:
		bpf_redirect_map(&tx_dev, key, 0);
		return bpf_redirect_map(&tx_dev, key + 1, flags);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
