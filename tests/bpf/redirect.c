// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_redirect from XDP and tc: the ifindex comes from the first packet
 * byte; 0 means no redirect (XDP_PASS / TC_ACT_OK). XDP: first byte 0xee
 * passes an invalid flag (XDP_ABORTED). tc: odd second byte sets
 * BPF_F_INGRESS, 0xee passes an invalid flag (TC_ACT_SHOT). Returns the
 * helper's verdict (XDP_REDIRECT 4 / TC_ACT_REDIRECT 7).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_redirect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 ifindex;

	if (data + 1 > data_end)
		return XDP_DROP;
	ifindex = *(__u8 *)data;
	if (!ifindex)
		return XDP_PASS;
	if (ifindex == 0xee)
		return bpf_redirect(1, 1);
	return bpf_redirect(ifindex, 0);
}

SEC("tc")
int tc_redirect(struct __sk_buff *skb)
{
	__u8 b[2];

	if (bpf_skb_load_bytes(skb, 0, b, 2))
		return TC_ACT_SHOT;
	if (!b[0])
		return TC_ACT_OK;
	if (b[0] == 0xee)
		return bpf_redirect(1, 0x10);
	return bpf_redirect(b[0], (b[1] & 1) ? BPF_F_INGRESS : 0);
}

char LICENSE[] SEC("license") = "GPL";
