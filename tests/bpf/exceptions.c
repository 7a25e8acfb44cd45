// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_throw without an exception callback: throws cookie (len + 1000) from a
 * subprogram when len > 100, so the program returns len + 1000; otherwise len.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "cordon.h"

static __noinline int check_len(__u32 len)
{
	if (len > 100)
		bpf_throw(len + 1000);
	return len;
}

SEC("tc")
int throw_big(struct __sk_buff *skb)
{
	return check_len(skb->len);
}

char LICENSE[] SEC("license") = "GPL";
