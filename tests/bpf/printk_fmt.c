// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_trace_printk formats: %d, %i, %u, %x, %ld, %lu, %lx, %lld, %llu,
 * %llx, %c, %s (stack string), %%, width/zero padding and a format with no
 * arguments. bpf_trace_printk returns the number of bytes formatted, so the
 * program returns the sum of those counts (packet length makes it vary).
 * An unsupported conversion (%n) returns -EINVAL: first byte 0xff adds 1000
 * when it does.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int printk_fmt(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	__s32 neg = -(__s32)len;
	__u64 big = (__u64)len << 40 | 0xabc;
	char name[] = "cordon";
	char c = 'A' + len % 26;
	long total = 0, r;

	total += bpf_printk("no args");
	total += bpf_printk("d=%d i=%i u=%u", neg, neg, len);
	total += bpf_printk("x=%x ld=%ld lu=%lu", len, (long)neg, (unsigned long)len);
	total += bpf_printk("lx=%lx lld=%lld", big, (long long)neg);
	total += bpf_printk("llu=%llu llx=%llx", big, big);
	total += bpf_printk("c=%c s=%s 100%%", c, name);
	total += bpf_printk("w=%5d z=%08x", len, len);
	if (len == 0xff) {
		r = bpf_printk("bad %n", len);
		if (r < 0)
			total += 1000;
	}
	return total;
}

char LICENSE[] SEC("license") = "GPL";
