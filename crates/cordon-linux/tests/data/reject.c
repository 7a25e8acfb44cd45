// SPDX-License-Identifier: GPL-2.0
/*
 * Built by the cordon-linux tests (clang -target bpf) to check verdicts on
 * objects: `good` loads; `bad_read` reads packet data without a bounds check
 * ("invalid access to packet"). Self-contained: no kernel headers needed.
 */
#define SEC(name) __attribute__((section(name), used))

struct __sk_buff {
	unsigned int len, pkt_type, mark, queue_mapping, protocol, vlan_present,
		vlan_tci, vlan_proto, priority, ingress_ifindex, ifindex, tc_index,
		cb[5], hash, tc_classid, data, data_end;
};

SEC("tc")
int good(struct __sk_buff *skb)
{
	return skb->len + 1;
}

SEC("tc")
int bad_read(struct __sk_buff *skb)
{
	return *(int *)(long)skb->data;
}

char LICENSE[] SEC("license") = "GPL";
