// SPDX-License-Identifier: GPL-2.0
/*
 * Destination NAT in tc: IPv4 TCP/UDP packets to 10.0.0.254:80 are
 * rewritten to 192.168.1.1:8080 with bpf_skb_load_bytes/bpf_skb_store_bytes;
 * the IPv4 header checksum is fixed with bpf_l3_csum_replace and the TCP/UDP
 * checksum with bpf_l4_csum_replace (pseudo-header flag for the address;
 * UDP with BPF_F_MARK_MANGLED_0 so a zero checksum stays zero). Counts
 * rewrites per protocol in `nat_hits` (array: 0 TCP, 1 UDP). Returns
 * TC_ACT_OK (0) after a rewrite, 1 for untouched traffic, TC_ACT_SHOT (2)
 * when a load fails (truncated packet).
 */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define IP_DST_OFF (IP_OFF + offsetof(struct iphdr, daddr))

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} nat_hits SEC(".maps");

SEC("tc")
int tc_nat(struct __sk_buff *skb)
{
	__be32 old_ip, new_ip = bpf_htonl(0xc0a80101);
	__be16 old_port, new_port = bpf_htons(8080);
	__u16 proto_eth;
	struct iphdr ip;
	__u32 l4, csum_off, key;
	__u64 *hits;
	int flags;

	if (bpf_skb_load_bytes(skb, 12, &proto_eth, 2))
		return 2;
	if (proto_eth != bpf_htons(ETH_P_IP))
		return 1;
	if (bpf_skb_load_bytes(skb, IP_OFF, &ip, sizeof(ip)))
		return 2;
	if (ip.ihl != 5 || ip.daddr != bpf_htonl(0x0a0000fe))
		return 1;
	l4 = IP_OFF + sizeof(ip);
	if (ip.protocol == IPPROTO_TCP) {
		csum_off = l4 + offsetof(struct tcphdr, check);
		flags = 0;
		key = 0;
	} else if (ip.protocol == IPPROTO_UDP) {
		csum_off = l4 + offsetof(struct udphdr, check);
		flags = BPF_F_MARK_MANGLED_0;
		key = 1;
	} else {
		return 1;
	}
	if (bpf_skb_load_bytes(skb, l4 + 2, &old_port, 2))
		return 2;
	if (old_port != bpf_htons(80))
		return 1;
	old_ip = ip.daddr;

	if (bpf_l4_csum_replace(skb, csum_off, old_ip, new_ip,
				flags | BPF_F_PSEUDO_HDR | sizeof(new_ip)))
		return 2;
	if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port,
				flags | sizeof(new_port)))
		return 2;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_ip, new_ip, sizeof(new_ip)))
		return 2;
	if (bpf_skb_store_bytes(skb, IP_DST_OFF, &new_ip, sizeof(new_ip), 0))
		return 2;
	if (bpf_skb_store_bytes(skb, l4 + 2, &new_port, sizeof(new_port), 0))
		return 2;
	hits = bpf_map_lookup_elem(&nat_hits, &key);
	if (hits)
		__sync_fetch_and_add(hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
