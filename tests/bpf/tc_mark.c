// SPDX-License-Identifier: GPL-2.0
/* tc classifier: reads __sk_buff fields, writes mark and priority. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int tc_mark(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	__u32 proto = skb->protocol;   /* network byte order */

	if (len < 14)
		return TC_ACT_SHOT;
	/* mark = (len << 16) | protocol, priority = len % 8 */
	skb->mark = (len << 16) | (proto & 0xffff);
	skb->priority = len % 8;
	skb->cb[0] = skb->ifindex + 1;
	return skb->mark == 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

/* Same logic under the legacy section name. */
SEC("classifier")
int cls_len(struct __sk_buff *skb)
{
	skb->mark = skb->len ^ 0x5a5a;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
