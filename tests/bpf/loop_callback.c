// SPDX-License-Identifier: GPL-2.0
/* bpf_loop with a callback: sum of i * i for i < (len % 64); stops at i == 50. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct loop_ctx {
	__u64 sum;
	__u32 iters;
};

static int square_step(__u32 i, void *data)
{
	struct loop_ctx *c = data;

	if (i == 50)
		return 1;   /* break */
	c->sum += (__u64)i * i;
	c->iters++;
	return 0;
}

SEC("tc")
int loop_sum(struct __sk_buff *skb)
{
	struct loop_ctx c = {};
	long n;

	n = bpf_loop(skb->len % 64, square_step, &c, 0);
	if (n < 0)
		return -1;
	return c.sum + c.iters * 100000;
}

char LICENSE[] SEC("license") = "GPL";
