// SPDX-License-Identifier: GPL-2.0
/*
 * TCP options parser with a bounded loop (tc): loads up to 40 option bytes
 * with bpf_skb_load_bytes into a 64-byte buffer and walks them in a
 * bpf_loop(40) callback, indices masked with 63 (EOL, NOP, MSS, window scale,
 * SACK-permitted, timestamps, unknown kinds by length). Returns
 * mss << 16 | wscale << 8 | sack_ok << 4 | ts_seen; the timestamp value is
 * stored in `last_tsval` (array). Malformed options (length < 2 or past the
 * header): 0xdead; not IPv4/TCP: 0.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} last_tsval SEC(".maps");

struct walk {
	__u8 opts[64];
	__u32 olen, i, mss, wscale, sack, ts, tsval, bad;
};

static long walk_one(__u64 n, void *data)
{
	struct walk *w = data;
	__u32 i = w->i;
	__u8 kind, len;

	if (i >= w->olen)
		return 1;
	kind = w->opts[i & 63];
	if (kind == 0)
		return 1;
	if (kind == 1) {
		w->i = i + 1;
		return 0;
	}
	if (i + 1 >= w->olen) {
		w->bad = 1;
		return 1;
	}
	len = w->opts[(i + 1) & 63];
	if (len < 2 || i + len > w->olen) {
		w->bad = 1;
		return 1;
	}
	if (kind == 2 && len == 4) {
		w->mss = w->opts[(i + 2) & 63] << 8 | w->opts[(i + 3) & 63];
	} else if (kind == 3 && len == 3) {
		w->wscale = w->opts[(i + 2) & 63];
	} else if (kind == 4 && len == 2) {
		w->sack = 1;
	} else if (kind == 8 && len == 10) {
		w->tsval = w->opts[(i + 2) & 63] << 24 | w->opts[(i + 3) & 63] << 16 |
			   w->opts[(i + 4) & 63] << 8 | w->opts[(i + 5) & 63];
		w->ts = 1;
	}
	w->i = i + len;
	return 0;
}

SEC("tc")
int tcp_opts(struct __sk_buff *skb)
{
	struct walk w = {};
	struct iphdr ip;
	struct tcphdr th;
	__u16 eth_proto;
	__u32 olen, zero = 0;

	if (bpf_skb_load_bytes(skb, 12, &eth_proto, 2) || eth_proto != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) || ip.protocol != IPPROTO_TCP ||
	    ip.ihl != 5)
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + 20, &th, sizeof(th)))
		return 0;
	olen = th.doff * 4;
	if (olen < 20)
		return 0xdead;
	olen -= 20;
	if (olen > 40)
		olen = 40;
	if (olen && bpf_skb_load_bytes(skb, ETH_HLEN + 40, w.opts, olen))
		return 0xdead;
	w.olen = olen;
	bpf_loop(40, walk_one, &w, 0);
	if (w.bad)
		return 0xdead;
	if (w.ts)
		bpf_map_update_elem(&last_tsval, &zero, &w.tsval, BPF_ANY);
	return w.mss << 16 | w.wscale << 8 | w.sack << 4 | w.ts;
}

char LICENSE[] SEC("license") = "GPL";
