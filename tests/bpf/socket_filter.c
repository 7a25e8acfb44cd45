// SPDX-License-Identifier: GPL-2.0
/*
 * Socket filter: keeps IPv4 UDP packets (whole length) and IPv4 TCP packets
 * truncated to 64 bytes, drops everything else. Uses the legacy packet loads
 * (LD_ABS) as classic socket filters do; offsets start at the network header.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");

SEC("socket")
int socket_filter(struct __sk_buff *skb)
{
	__u8 ver = load_byte(skb, 0) >> 4;
	__u8 proto;
	__u16 total;

	if (ver != 4)
		return 0;
	proto = load_byte(skb, 9);
	total = load_half(skb, 2);
	if (proto == IPPROTO_UDP)
		return skb->len;
	if (proto == IPPROTO_TCP)
		return total < 64 ? total : 64;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
