// SPDX-License-Identifier: GPL-2.0
/*
 * Clock, random and CPU helpers with a deterministic result: a bit mask of
 * properties that must hold. bit 0: two successive bpf_ktime_get_ns reads
 * are monotonic; bit 1: the first is non-zero; bit 2: bpf_ktime_get_boot_ns
 * read after them is >= the first (boot time includes suspend); bit 3:
 * bpf_get_smp_processor_id < 4096; bit 4: 16 bpf_get_prandom_u32 draws are
 * not all equal; bit 5: the draws fit in 32 bits. Expected: 0x3f.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int time_rand(struct __sk_buff *skb)
{
	__u64 t1 = bpf_ktime_get_ns();
	__u64 t2 = bpf_ktime_get_ns();
	__u64 boot = bpf_ktime_get_boot_ns();
	__u32 cpu = bpf_get_smp_processor_id();
	__u64 first = bpf_get_prandom_u32(), r, or = 0;
	__u32 mask = 0, differ = 0;

	for (int i = 0; i < 15; i++) {
		r = bpf_get_prandom_u32();
		or |= r;
		if (r != first)
			differ = 1;
	}
	if (t2 >= t1)
		mask |= 1;
	if (t1)
		mask |= 2;
	if (boot >= t1)
		mask |= 4;
	if (cpu < 4096)
		mask |= 8;
	if (differ)
		mask |= 16;
	if (!((or | first) >> 32))
		mask |= 32;
	return mask;
}

char LICENSE[] SEC("license") = "GPL";
