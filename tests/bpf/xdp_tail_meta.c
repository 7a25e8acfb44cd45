// SPDX-License-Identifier: GPL-2.0
/*
 * XDP metadata and tail adjustment: reserves 8 bytes of metadata with
 * bpf_xdp_adjust_meta(-8), stores {len, first byte} there, then trims the
 * tail by (first byte % 8) bytes with bpf_xdp_adjust_tail and reads the
 * metadata back through data_meta. A trim that would leave less than an
 * Ethernet header fails (-EINVAL). Returns
 * meta_ok << 24 | tail_failed << 20 | new length.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct meta {
	__u32 len;
	__u32 first;
};

SEC("xdp")
int xdp_tail_meta(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = data_end - data, first, trim, tail_failed = 0, meta_ok = 0;
	struct meta *m;

	if (data + 1 > data_end)
		return XDP_ABORTED;
	first = *(__u8 *)data;
	trim = first % 8;
	if (first == 0xff)
		trim = len; /* too much: must fail */

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct meta)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	m = (void *)(long)ctx->data_meta;
	if ((void *)(m + 1) > data)
		return XDP_DROP;
	m->len = len;
	m->first = first;

	if (bpf_xdp_adjust_tail(ctx, -(int)trim))
		tail_failed = 1;

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	m = (void *)(long)ctx->data_meta;
	if ((void *)(m + 1) > data)
		return XDP_DROP;
	if (m->len == len && m->first == first)
		meta_ok = 1;
	return meta_ok << 24 | tail_failed << 20 | (__u32)(data_end - data);
}

char LICENSE[] SEC("license") = "GPL";
