// SPDX-License-Identifier: GPL-2.0
/*
 * Parser for up to two VLAN tags (802.1Q / 802.1ad) and IPv6 extension
 * headers (hop-by-hop, routing, destination options, fragment; at most 6,
 * bounded loop). Returns ext_count << 16 | vlan_count << 12 | upper-layer
 * protocol; the VLAN ids seen are counted in `vlan_seen` (hash vid →
 * count). Not IPv6: 0xfff; truncated: 0xffe; more than 6 headers: 0xffd.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u32);
} vlan_seen SEC(".maps");

SEC("xdp")
int vlan_ipv6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cur = data + sizeof(*eth);
	__u16 proto;
	__u32 vlans = 0, exts = 0, one = 1, *cnt;
	__u8 next;
	struct ipv6hdr *ip6;

	if ((void *)(eth + 1) > data_end)
		return 0xffe;
	proto = eth->h_proto;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *vh = cur;
		__u16 vid;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end)
			return 0xffe;
		vid = bpf_ntohs(vh->tci) & 0xfff;
		cnt = bpf_map_lookup_elem(&vlan_seen, &vid);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
		else
			bpf_map_update_elem(&vlan_seen, &vid, &one, BPF_NOEXIST);
		proto = vh->proto;
		cur = vh + 1;
		vlans++;
	}
	if (proto != bpf_htons(ETH_P_IPV6))
		return 0xfff;
	ip6 = cur;
	if ((void *)(ip6 + 1) > data_end)
		return 0xffe;
	next = ip6->nexthdr;
	cur = ip6 + 1;
	for (int i = 0; i < 7; i++) {
		__u8 *h = cur;
		__u32 hlen;

		if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING &&
		    next != IPPROTO_DSTOPTS && next != IPPROTO_FRAGMENT)
			return exts << 16 | vlans << 12 | next;
		if (i == 6)
			return 0xffd;
		if ((void *)(h + 2) > data_end)
			return 0xffe;
		hlen = next == IPPROTO_FRAGMENT ? 8 : (h[1] + 1) * 8;
		next = h[0];
		cur = h + hlen;
		exts++;
	}
	return 0xffd;
}

char LICENSE[] SEC("license") = "GPL";
