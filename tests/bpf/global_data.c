// SPDX-License-Identifier: GPL-2.0
/*
 * Global data in .data, .rodata, .bss, .rodata.str1.1 and custom
 * .data.* / .rodata.* sections, plus bpf_printk. Returns
 * len * multiplier + counter + greeting[0] + custom + table[len % 4],
 * and advances `counter` and `calls`.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

volatile const __u32 multiplier = 3;                         /* .rodata */
const volatile __u32 table[4] = { 10, 20, 30, 40 };          /* .rodata */
__u64 counter = 5;                                           /* .data */
char greeting[8] = "hello";                                  /* .data */
__u64 calls;                                                 /* .bss */
__u32 custom SEC(".data.custom") = 7;                        /* .data.custom */
const volatile __u32 limit SEC(".rodata.cfg") = 1500;        /* .rodata.cfg */

SEC("tc")
int global_data(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	__u64 ret;

	calls++;
	if (len > limit)
		len = limit;
	ret = (__u64)len * multiplier + counter + greeting[0] + custom + table[len % 4];
	counter += 1;
	bpf_printk("global_data len=%u ret=%llu", len, ret);
	/* A plain string literal: lives in .rodata.str1.1 */
	bpf_trace_printk("call\n", sizeof("call\n"));
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
