// SPDX-License-Identifier: GPL-2.0
/*
 * tc helpers that reshape the skb or read its state: VLAN push/pop,
 * change_tail, change_head, get_hash_recalc / set_hash / set_hash_invalid,
 * get_socket_cookie, adjust_room, change_proto, change_type,
 * load_bytes_relative, the cgroup ids and the
 * task helpers (pid/tgid, uid/gid, comm). One program per scenario; the
 * parameters come from the packet (a big-endian u16 at offset 14, `arg()`),
 * the observations go to the array `res` (compared with Linux) and into the
 * return value.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} res SEC(".maps");

static __always_inline void put(__u32 k, __u64 v)
{
	bpf_map_update_elem(&res, &k, &v, BPF_ANY);
}

/* Big-endian u16 at offset 14 of the packet (0 if the packet is shorter). */
static __always_inline __u32 arg(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *p = data + 14;

	if ((void *)(p + 2) > data_end)
		return 0;
	return (__u32)p[0] << 8 | p[1];
}

/* The skb fields the VLAN helpers change, packed into one value. */
static __always_inline __u64 vlan_state(struct __sk_buff *skb)
{
	return (__u64)skb->len << 48 | (__u64)skb->protocol << 32 |
	       (__u64)skb->vlan_proto << 16 | skb->vlan_tci << 1 |
	       skb->vlan_present;
}

/* One push: the tag goes into the skb fields, the packet is unchanged.
 * arg: the protocol to push (anything but 802.1Q/802.1ad becomes 802.1Q). */
SEC("tc")
int vlan_push1(struct __sk_buff *skb)
{
	__u32 proto = arg(skb);
	long r = bpf_skb_vlan_push(skb, bpf_htons(proto), 0x123);

	put(0, vlan_state(skb));
	return r;
}

/* Two pushes: the first tag is written into the packet behind the MAC
 * addresses, skb->protocol becomes its protocol; then read it back. */
SEC("tc")
int vlan_push2(struct __sk_buff *skb)
{
	long r1 = bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021AD), 0x0fff);
	long r2 = bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), 0xe005);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *p = data;

	put(0, vlan_state(skb));
	if ((void *)(p + 18) > data_end)
		return 1000;
	put(1, (__u64)p[12] << 24 | p[13] << 16 | p[14] << 8 | p[15]);
	put(2, (__u64)p[16] << 8 | p[17]);
	return r1 * 10 + r2;
}

/* Pop: the accelerated tag if there is one (arg bit 0: push one first),
 * else the outer tag of the packet; a second tag in the packet moves into
 * the skb fields. arg bit 1: pop twice. */
SEC("tc")
int vlan_pop(struct __sk_buff *skb)
{
	__u32 a = arg(skb);
	long r0 = 0, r1, r2 = 0;

	if (a & 1)
		r0 = bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), 7);
	r1 = bpf_skb_vlan_pop(skb);
	put(0, vlan_state(skb));
	if (a & 2) {
		r2 = bpf_skb_vlan_pop(skb);
		put(1, vlan_state(skb));
	}
	return (r0 & 0xff) << 16 | (r1 & 0xff) << 8 | (r2 & 0xff);
}

/* change_tail(arg): zero-extends or trims; then the byte before the new
 * end (if any) and skb->len are recorded. */
SEC("tc")
int tail(struct __sk_buff *skb)
{
	__u32 n = arg(skb);
	long r = bpf_skb_change_tail(skb, n, 0);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	put(0, skb->len);
	put(1, (__u64)(data_end - data));
	return r;
}

/* change_tail's refusals: flags, above the maximum, below the network
 * header; then a change_head of arg bytes moves the network header, so
 * change_tail(14) is refused and change_tail(14 + arg) accepted. */
SEC("tc")
int tail_limits(struct __sk_buff *skb)
{
	__u32 room = arg(skb);
	long a = bpf_skb_change_tail(skb, 60, 1);
	long b = bpf_skb_change_tail(skb, 16384 - 320 + 1, 0);
	long c = bpf_skb_change_tail(skb, 13, 0);
	long d = bpf_skb_change_tail(skb, 16384 - 320, 0);
	long e = bpf_skb_change_tail(skb, 14, 0);
	long f = bpf_skb_change_head(skb, room, 0);
	long g = bpf_skb_change_tail(skb, 14, 0);
	long h = bpf_skb_change_tail(skb, 14 + room, 0);

	put(0, (__u64)(a & 0xff) << 56 | (__u64)(b & 0xff) << 48 |
		       (__u64)(c & 0xff) << 40 | (__u64)(d & 0xff) << 32 |
		       (e & 0xff) << 24 | (f & 0xff) << 16 | (g & 0xff) << 8 |
		       (h & 0xff));
	put(1, skb->len);
	return 0;
}

/* change_head(arg): zeroed bytes in front; a flag is refused. */
SEC("tc")
int head(struct __sk_buff *skb)
{
	__u32 n = arg(skb);
	long bad = bpf_skb_change_head(skb, 4, 2);
	long r = bpf_skb_change_head(skb, n, 0);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	put(0, skb->len);
	put(1, (__u64)(data_end - data));
	put(2, bad);
	return r;
}

/* Hash: recalc twice (same non-zero value, also in skb->hash), set_hash
 * wins over the flow hash, set_hash_invalid clears it, recalc after that
 * finds the flow hash again, set_hash(0) makes recalc return 0. */
SEC("tc")
int hash(struct __sk_buff *skb)
{
	__u32 h1 = bpf_get_hash_recalc(skb);
	__u32 h2 = bpf_get_hash_recalc(skb);
	__u32 seen = skb->hash;
	__u32 h3, h4, cleared, h5;
	int ok = 0;

	bpf_set_hash(skb, 0x12345678);
	h3 = bpf_get_hash_recalc(skb);
	bpf_set_hash_invalid(skb);
	cleared = skb->hash;
	h4 = bpf_get_hash_recalc(skb);
	bpf_set_hash(skb, 0);
	h5 = bpf_get_hash_recalc(skb);

	ok |= (h1 != 0) << 0;
	ok |= (h1 == h2) << 1;
	ok |= (seen == h1) << 2;
	ok |= (h3 == 0x12345678) << 3;
	ok |= (cleared == 0) << 4;
	ok |= (h4 == h1) << 5;
	ok |= (h5 == 0) << 6;
	ok |= (skb->hash == 0) << 7;
	put(0, h3);
	return ok;
}

/* bpf_skb_adjust_room with parameters from the last 8 packet bytes:
 * len_diff (s16 BE), mode, flags bits 0-6, inner L2 length, -, -, decap bits
 * (bit 0: DECAP_L3_IPV4, bit 1: DECAP_L3_IPV6, bit 7: an undefined flag).
 * The same call is repeated (an encapsulated skb refuses a second encap),
 * then change_tail to the current length and to 40 bytes shows the
 * encapsulation and the transport header an L4 encap sets. */
SEC("tc")
int room(struct __sk_buff *skb)
{
	__u8 p[8];
	__s32 diff;
	__u64 flags;
	long r1, r2, r3, r4;

	if (bpf_skb_load_bytes(skb, skb->len - 8, p, 8))
		return 1000;
	diff = (__s16)(p[0] << 8 | p[1]);
	flags = (p[3] & 0x7f) | (__u64)(p[7] & 3) << 7 |
		(__u64)(p[7] >> 7) << 9 | (__u64)p[4] << 56;
	r1 = bpf_skb_adjust_room(skb, diff, p[2], flags);
	put(0, (__u64)skb->len << 32 | skb->protocol);
	r2 = bpf_skb_adjust_room(skb, diff, p[2], flags);
	put(1, (__u64)skb->len << 32 | skb->protocol);
	r3 = bpf_skb_change_tail(skb, skb->len, 0);
	r4 = bpf_skb_change_tail(skb, 40, 0);
	put(2, skb->len);
	return (r1 & 0xffff) | (r2 & 0xff) << 16 | (r3 & 0xf) << 24 |
	       (r4 & 0xf) << 28;
}

/* bpf_skb_change_proto to the protocol in the packet's last 2 bytes (a
 * flag in the byte before): 20 bytes inserted or removed after the MAC
 * header, the hash cleared; then the bytes after the MAC header. */
SEC("tc")
int proto(struct __sk_buff *skb)
{
	__u8 p[3] = {};
	__u8 h[4] = {};
	long r;

	if (bpf_skb_load_bytes(skb, skb->len - 3, p, 3))
		return 1000;
	bpf_set_hash(skb, 77);
	r = bpf_skb_change_proto(skb, bpf_htons(p[1] << 8 | p[2]), p[0]);
	bpf_skb_load_bytes(skb, 12, h, 4);
	put(0, (__u64)skb->len << 32 | skb->protocol);
	put(1, skb->hash);
	put(2, (__u64)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3]);
	return r;
}

/* The test-run socket's cgroup (the calling task's, cgroup v2) and its
 * ancestors at levels -1..2 (0 past the cgroup's own level). */
SEC("tc")
int cgroup(struct __sk_buff *skb)
{
	put(0, bpf_skb_cgroup_id(skb));
	put(1, bpf_skb_ancestor_cgroup_id(skb, 0));
	put(2, bpf_skb_ancestor_cgroup_id(skb, 1));
	put(3, bpf_skb_ancestor_cgroup_id(skb, 2));
	put(4, bpf_skb_ancestor_cgroup_id(skb, -1));
	return bpf_skb_cgroup_id(skb) != 0;
}

/* The calling task (test_run runs in it): pid/tgid, uid/gid, comm. */
static __always_inline void task(void)
{
	__u64 comm[2] = {};

	put(0, bpf_get_current_pid_tgid());
	put(1, bpf_get_current_uid_gid());
	bpf_get_current_comm(comm, sizeof(comm));
	put(2, comm[0]);
	put(3, comm[1]);
	/* A 5-byte buffer gets 4 name bytes and a NUL. */
	comm[0] = ~0ULL;
	bpf_get_current_comm(comm, 5);
	put(4, comm[0]);
}

/* bpf_skb_load_bytes_relative from the MAC and network headers (the
 * parameter: offset), its refusals, and bpf_skb_change_type. */
static __always_inline long relative(struct __sk_buff *skb, __u32 off)
{
	__u8 m[4], n[4];
	long a = bpf_skb_load_bytes_relative(skb, off, m, 4, BPF_HDR_START_MAC);
	long b = bpf_skb_load_bytes_relative(skb, off, n, 4, BPF_HDR_START_NET);
	long c = bpf_skb_load_bytes_relative(skb, 0, n + 2, 2, 2);
	long d = bpf_skb_load_bytes_relative(skb, 0x10000, m + 2, 2, 0);

	put(5, (__u64)m[0] << 56 | (__u64)m[1] << 48 | (__u64)m[2] << 40 |
		       (__u64)m[3] << 32 | n[0] << 24 | n[1] << 16 | n[2] << 8 |
		       n[3]);
	return (a & 0xff) | (b & 0xff) << 8 | (c & 0xff) << 16 | (d & 0xff) << 24;
}

SEC("tc")
int misc(struct __sk_buff *skb)
{
	long r = relative(skb, arg(skb) & 0xff);
	long t1 = bpf_skb_change_type(skb, 3);
	__u32 p1 = skb->pkt_type;
	long t2 = bpf_skb_change_type(skb, 4);
	long t3 = bpf_skb_change_type(skb, 0);

	task();
	put(6, (__u64)p1 << 32 | skb->pkt_type);
	put(7, (t1 & 0xff) << 16 | (t2 & 0xff) << 8 | (t3 & 0xff));
	return r;
}

SEC("socket")
int misc_sock(struct __sk_buff *skb)
{
	__u8 off = 0;
	long r;

	/* Parameter: the byte after the network header's first. */
	bpf_skb_load_bytes(skb, 1, &off, 1);
	r = relative(skb, off);

	task();
	return r;
}

SEC("xdp")
int task_xdp(struct xdp_md *ctx)
{
	task();
	return 2;
}

/* The test-run skb has a socket: a non-zero cookie, the same on every call. */
SEC("tc")
int cookie(struct __sk_buff *skb)
{
	__u64 a = bpf_get_socket_cookie(skb);
	__u64 b = bpf_get_socket_cookie(skb);

	return (a != 0) | (a == b) << 1;
}

SEC("socket")
int cookie_sock(struct __sk_buff *skb)
{
	__u64 a = bpf_get_socket_cookie(skb);
	__u64 b = bpf_get_socket_cookie(skb);

	return (a != 0) | (a == b) << 1;
}

char _license[] SEC("license") = "GPL";
