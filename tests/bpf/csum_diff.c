// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_csum_diff in XDP: copies the IPv4 header (IHL 5) to the stack and
 * returns the folded one's-complement sum of it (0xffff when the header
 * checksum is right, so the packet passes); then recomputes the checksum
 * field from a diff of the header with the checksum zeroed, writes it into
 * the packet and returns the new checksum in the low 16 bits with bit 16
 * set when it had to be fixed. Not IPv4 or too short: 0x80000000.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

static __always_inline __u16 fold(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s;
}

SEC("xdp")
int xdp_csum(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	__u32 hdr[5];
	__s64 sum;
	__u16 check, fresh, fixed = 0;

	if ((void *)(iph + 1) > data_end)
		return 0x80000000;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || iph->ihl != 5)
		return 0x80000000;
	__builtin_memcpy(hdr, iph, sizeof(hdr));
	sum = bpf_csum_diff(0, 0, hdr, sizeof(hdr), 0);
	if (sum < 0)
		return 0x80000001;
	check = fold(sum);
	if (check != 0xffff) {
		/* zero the checksum field (bytes 10..11 = hdr[2] high half) */
		__u32 old = hdr[2];

		((__u16 *)hdr)[5] = 0;
		sum = bpf_csum_diff(&old, 4, &hdr[2], 4, sum);
		if (sum < 0)
			return 0x80000002;
		fresh = ~fold(sum);
		iph->check = fresh;
		fixed = 1;
	}
	return fixed << 16 | (fixed ? iph->check : check);
}

char LICENSE[] SEC("license") = "GPL";
