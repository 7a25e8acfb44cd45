// SPDX-License-Identifier: GPL-2.0
/*
 * bpf-to-bpf calls: static and global (__noinline, non-static) subprograms,
 * shared by two programs. prog_a returns triple(len) + square_plus(len, 1);
 * prog_b returns global_clamp(len, 100) + triple(2).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define __noinline __attribute__((noinline))

static __noinline int triple(int x)
{
	return x * 3;
}

static __noinline int square_plus(int x, int y)
{
	return x * x + triple(y);
}

/* Global function: verified on its own by Linux. */
__noinline int global_clamp(int x, int max)
{
	if (x > max)
		return max;
	if (x < 0)
		return 0;
	return x;
}

SEC("tc")
int prog_a(struct __sk_buff *skb)
{
	int len = skb->len & 0xff;

	return triple(len) + square_plus(len, 1);
}

SEC("tc")
int prog_b(struct __sk_buff *skb)
{
	return global_clamp(skb->len, 100) + triple(2);
}

char LICENSE[] SEC("license") = "GPL";
