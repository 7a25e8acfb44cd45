// SPDX-License-Identifier: GPL-2.0
/*
 * XDP firewall: drops packets whose (source address, protocol, destination
 * port) matches a rule in `fw_rules`; a rule with port 0 matches every port.
 * Per-CPU counters of packets and bytes per verdict in `fw_stats`.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum fw_stat {
	FW_STAT_PASS = 0,
	FW_STAT_DROP = 1,
	FW_STAT_MALFORMED = 2,
	FW_STAT_NON_IP = 3,
	FW_STAT_MAX = 4,
};

struct fw_key {
	__u32 addr[4];   /* source address; IPv4 uses addr[0], the rest 0 */
	__u16 port;      /* destination port, host order; 0 = any port */
	__u8 proto;      /* IPPROTO_TCP / IPPROTO_UDP / 0 = any */
	__u8 family;     /* 4 or 6 */
};

struct fw_rule {
	__u32 action;    /* XDP_DROP or XDP_PASS */
	__u32 pad;
	__u64 hits;
};

struct fw_counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct fw_key);
	__type(value, struct fw_rule);
	__uint(max_entries, 1024);
} fw_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fw_counter);
	__uint(max_entries, FW_STAT_MAX);
} fw_stats SEC(".maps");

static __always_inline void count(__u32 stat, __u64 bytes)
{
	struct fw_counter *c = bpf_map_lookup_elem(&fw_stats, &stat);

	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

static __always_inline int verdict(struct fw_key *key, __u64 bytes)
{
	struct fw_rule *rule = bpf_map_lookup_elem(&fw_rules, key);

	if (!rule) {
		key->port = 0;              /* any port */
		rule = bpf_map_lookup_elem(&fw_rules, key);
	}
	if (!rule) {
		key->proto = 0;             /* any protocol */
		rule = bpf_map_lookup_elem(&fw_rules, key);
	}
	if (rule && rule->action == XDP_DROP) {
		__sync_fetch_and_add(&rule->hits, 1);
		count(FW_STAT_DROP, bytes);
		return XDP_DROP;
	}
	count(FW_STAT_PASS, bytes);
	return XDP_PASS;
}

static __always_inline int parse_l4(void *l4, void *data_end, __u8 proto,
				    struct fw_key *key)
{
	key->proto = proto;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end)
			return -1;
		key->port = bpf_ntohs(tcp->dest);
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end)
			return -1;
		key->port = bpf_ntohs(udp->dest);
	}
	return 0;
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct ethhdr *eth = data;
	struct fw_key key = {};

	if ((void *)(eth + 1) > data_end) {
		count(FW_STAT_MALFORMED, bytes);
		return XDP_DROP;
	}

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->ihl < 5) {
			count(FW_STAT_MALFORMED, bytes);
			return XDP_DROP;
		}
		key.family = 4;
		key.addr[0] = ip->saddr;
		if (parse_l4((void *)ip + ip->ihl * 4, data_end, ip->protocol, &key)) {
			count(FW_STAT_MALFORMED, bytes);
			return XDP_DROP;
		}
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end) {
			count(FW_STAT_MALFORMED, bytes);
			return XDP_DROP;
		}
		key.family = 6;
		__builtin_memcpy(key.addr, &ip6->saddr, sizeof(key.addr));
		if (parse_l4(ip6 + 1, data_end, ip6->nexthdr, &key)) {
			count(FW_STAT_MALFORMED, bytes);
			return XDP_DROP;
		}
	} else {
		count(FW_STAT_NON_IP, bytes);
		return XDP_PASS;
	}

	return verdict(&key, bytes);
}

char LICENSE[] SEC("license") = "GPL";
