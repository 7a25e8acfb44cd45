// SPDX-License-Identifier: GPL-2.0
/*
 * Built with -mcpu=v4: signed division and modulo (sdiv/smod), sign-extending
 * moves and loads (movsx/ldsx), unconditional byte swaps (bswap).
 * Reads the first 8 packet bytes; returns a mix of the signed results.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __s64);
	__uint(max_entries, 4);
} results SEC(".maps");

static __attribute__((noinline)) long signed_ops(long a, long b)
{
	if (b == 0)
		return 0;
	return a / b + a % b;
}

SEC("tc")
int cpuv4_ops(struct __sk_buff *skb)
{
	struct {
		signed char c;
		__u8 pad;
		short h;
		int w;
	} in;
	__u32 k;
	__s64 *slot, q, r, sx;
	__u64 swapped;

	if (bpf_skb_load_bytes(skb, 0, &in, sizeof(in)))
		return 0;
	/* ldsx: sign-extending loads of the byte/half/word fields */
	sx = (long)in.c + (long)in.h + (long)in.w;
	/* sdiv / smod on 64 and 32 bits */
	q = signed_ops(sx, (long)in.c);
	r = (int)in.w / (int)(in.h | 1) + (int)in.w % 7;
	/* movsx from a register narrowed value */
	sx = (signed char)(q + r);
	/* bswap */
	swapped = __builtin_bswap64((__u64)in.w) ^ __builtin_bswap32((__u32)in.h) ^ __builtin_bswap16((__u16)in.c);

	k = 0; slot = bpf_map_lookup_elem(&results, &k); if (slot) *slot = q;
	k = 1; slot = bpf_map_lookup_elem(&results, &k); if (slot) *slot = r;
	k = 2; slot = bpf_map_lookup_elem(&results, &k); if (slot) *slot = sx;
	k = 3; slot = bpf_map_lookup_elem(&results, &k); if (slot) *slot = swapped;
	return (int)(q + r + sx) ^ (int)(swapped >> 32);
}

char LICENSE[] SEC("license") = "GPL";
