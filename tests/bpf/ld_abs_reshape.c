// SPDX-License-Identifier: GPL-2.0
/*
 * Legacy packet loads (LD_ABS / LD_IND) after helpers that reshape the skb:
 * Linux reads them relative to the new skb->data, bounded by the new length,
 * so a load the old packet could not serve succeeds and one past the new end
 * ends the program with 0. One tc program per helper; the parameter is the
 * big-endian u16 in the packet's last two bytes (read with LD_IND), the
 * observations go to the array `res` in order (a load that ends the program
 * leaves the later slots unwritten) and into the return value. tail_entry
 * reshapes, then tail-calls tail_read, which reads the new packet.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} res SEC(".maps");

/* Slot k = v with a marker in the top byte: an unwritten slot (0) differs
 * from a written zero. */
static __always_inline void put(__u32 k, __u64 v)
{
	v ^= 0xa5ull << 56;
	bpf_map_update_elem(&res, &k, &v, BPF_ANY);
}

/* The last two bytes of the packet, big-endian (LD_IND). */
static __always_inline __u32 arg(struct __sk_buff *skb)
{
	return load_half(skb, skb->len - 2);
}

/* Two pushes (the first tag moves into the packet after the MAC addresses),
 * then with arg bit 0 two pops. */
SEC("tc")
int vlan(struct __sk_buff *skb)
{
	__u32 a = arg(skb);
	long r = bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), 0x123);

	r = r << 8 | bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021AD), 0x456);
	put(0, r);
	put(1, load_half(skb, 12)); /* the tag's TPID */
	put(2, load_half(skb, 14)); /* its TCI */
	put(3, load_half(skb, 16)); /* the original Ethernet type */
	put(4, arg(skb));           /* the last bytes, 4 bytes further on */
	if (a & 1) {
		r = bpf_skb_vlan_pop(skb);
		r = r << 8 | bpf_skb_vlan_pop(skb);
		put(5, r);
		put(6, load_word(skb, 12));
		put(7, arg(skb));
	}
	return load_word(skb, 10);
}

/* change_head(arg): the old packet starts arg bytes later. */
SEC("tc")
int head(struct __sk_buff *skb)
{
	__u32 a = arg(skb);
	__u32 len0 = skb->len;
	long r = bpf_skb_change_head(skb, a, 0);

	put(0, r);
	put(1, skb->len);
	put(2, load_word(skb, 0));        /* zeroed new head (or the MACs) */
	put(3, load_word(skb, a));        /* the old first four bytes */
	put(4, load_byte(skb, len0 + a - 1)); /* the old last byte */
	put(5, arg(skb));
	return load_byte(skb, len0 + a);  /* one past the end: returns 0 */
}

/* change_tail(arg): grow (zeroed tail) or trim. */
SEC("tc")
int tail(struct __sk_buff *skb)
{
	__u32 a = arg(skb);
	long r = bpf_skb_change_tail(skb, a, 0);

	put(0, r);
	put(1, skb->len);
	put(2, load_half(skb, 12));
	put(3, load_byte(skb, a - 1));    /* the new last byte */
	put(4, load_byte(skb, a));        /* one past the new end */
	return 1;
}

/* adjust_room(arg as s16, NET) on IPv4/IPv6. */
SEC("tc")
int room(struct __sk_buff *skb)
{
	__s32 delta = (__s16)arg(skb);
	long r = bpf_skb_adjust_room(skb, delta, BPF_ADJ_ROOM_NET, 0);

	put(0, r);
	put(1, skb->len);
	put(2, load_word(skb, 14));
	put(3, load_word(skb, 18));
	put(4, load_word(skb, 34));
	put(5, arg(skb));
	return load_word(skb, skb->len - 4);
}

/* change_proto(arg): IPv4 <-> IPv6 (the header room grows or shrinks by 20). */
SEC("tc")
int proto(struct __sk_buff *skb)
{
	__u32 a = arg(skb);
	long r = bpf_skb_change_proto(skb, bpf_htons(a), 0);

	put(0, r);
	put(1, skb->len);
	put(2, load_half(skb, 12));
	put(3, load_word(skb, 14));
	put(4, load_word(skb, 54));
	put(5, arg(skb));
	return load_byte(skb, 73);
}

/* pull_data(arg): the packet stays where it is (test-run skbs are linear). */
SEC("tc")
int pull(struct __sk_buff *skb)
{
	long r = bpf_skb_pull_data(skb, arg(skb));

	put(0, r);
	put(1, arg(skb));
	return load_word(skb, 12);
}

/* Reached from tail_entry after it pushed two VLAN tags. */
SEC("tc")
int tail_read(struct __sk_buff *skb)
{
	put(0, load_word(skb, 12));
	put(1, arg(skb));
	return load_half(skb, 16);
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, int (void *));
} jump SEC(".maps") = {
	.values = {
		[0] = (void *)&tail_read,
	},
};

SEC("tc")
int tail_entry(struct __sk_buff *skb)
{
	bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), 0x123);
	bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), 0x456);
	bpf_tail_call(skb, &jump, 0);
	return 7;
}

char _license[] SEC("license") = "GPL";
