// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_throw with an exception callback named by a BTF decl tag on the main
 * program: when the first packet byte is odd the program throws that byte
 * and the callback returns cookie * 2; otherwise returns len.
 * (Needs libbpf >= 1.3 to load in Linux.)
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "cordon.h"

__noinline int on_exception(__u64 cookie)
{
	return cookie * 2;
}

SEC("tc")
__exception_cb(on_exception)
int throw_with_cb(struct __sk_buff *skb)
{
	__u8 b;

	if (bpf_skb_load_bytes(skb, 0, &b, 1))
		return -1;
	if (b & 1)
		bpf_throw(b);
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
