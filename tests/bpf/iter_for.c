// SPDX-License-Identifier: GPL-2.0
/* Open-coded iterators (bpf_for / bpf_iter_num_*): sum of 3*i for i in [0, len % 100). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "cordon.h"

SEC("tc")
int iter_sum(struct __sk_buff *skb)
{
	int n = skb->len % 100, i;
	__u64 sum = 0;

	bpf_for(i, 0, n) {
		sum += i * 3;
	}
	return sum;
}

char LICENSE[] SEC("license") = "GPL";
