// SPDX-License-Identifier: GPL-2.0
/*
 * Deep bpf-to-bpf call chain (8 frames including the program) with stack
 * use in every frame, mixing static and global functions, and a tail call
 * made from a subprogram. Returns the chain's checksum of the packet length
 * (when the tail call slot is empty).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define __noinline __attribute__((noinline))

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} chain SEC(".maps");

/* Each level keeps a 48-byte buffer on its stack so frames really differ. */
#define LEVEL(name, next, mul)						\
static __noinline __u64 name(__u64 x)					\
{									\
	volatile __u64 buf[6];						\
	int i;								\
	for (i = 0; i < 6; i++)						\
		buf[i] = x * (mul) + i;					\
	return next(buf[5] ^ buf[0]) + buf[3];				\
}

static __noinline __u64 level7(__u64 x)
{
	volatile __u64 buf[8];

	buf[0] = x;
	buf[7] = x >> 1;
	return buf[0] + buf[7];
}

LEVEL(level6, level7, 7)
LEVEL(level5, level6, 6)
LEVEL(level4, level5, 5)
LEVEL(level3, level4, 4)
LEVEL(level2, level3, 3)

/* global: verified on its own, takes the context */
__noinline int try_tail(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &chain, 0);
	return 0;
}

__noinline __u64 level1(__u64 x)
{
	return level2(x + 1);
}

SEC("tc")
int deep_entry(struct __sk_buff *skb)
{
	volatile __u64 pad[4] = { skb->len, 1, 2, 3 };

	try_tail(skb);
	return (int)level1(pad[0] + pad[3]);
}

char LICENSE[] SEC("license") = "GPL";
