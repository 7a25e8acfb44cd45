// SPDX-License-Identifier: GPL-2.0
/*
 * Signed division edge cases under -mcpu=v4 (sdiv/smod, 32 and 64 bit):
 * divisor and dividend come from the packet (bytes 0..7 and 8..15, little
 * endian) so nothing is folded at compile time. Linux semantics: x / 0 = 0,
 * x % 0 = x, INT_MIN / -1 = INT_MIN, INT_MIN % -1 = 0, and the remainder
 * takes the dividend's sign. Results go to `out` (array 0..7); returns the
 * xor of all of them folded to 32 bits.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __s64);
} out SEC(".maps");

static __always_inline void put(__u32 k, __s64 v)
{
	bpf_map_update_elem(&out, &k, &v, BPF_ANY);
}

SEC("tc")
int sdiv_edge(struct __sk_buff *skb)
{
	__s64 a, b, r[8];
	__s32 a32, b32;
	__u64 x = 0;

	if (bpf_skb_load_bytes(skb, 0, &a, 8) || bpf_skb_load_bytes(skb, 8, &b, 8))
		return -1;
	a32 = (__s32)a;
	b32 = (__s32)b;
	r[0] = a / b;
	r[1] = a % b;
	r[2] = a32 / b32;
	r[3] = a32 % b32;
	r[4] = a / -7;
	r[5] = a % -7;
	r[6] = (__s64)(__s32)(a32 / 3);
	r[7] = (__s64)(a32 % -3);
	for (int i = 0; i < 8; i++) {
		put(i, r[i]);
		x ^= r[i];
	}
	return (__u32)(x ^ (x >> 32));
}

char LICENSE[] SEC("license") = "GPL";
