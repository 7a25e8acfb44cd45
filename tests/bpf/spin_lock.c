// SPDX-License-Identifier: GPL-2.0
/* bpf_spin_lock inside a map value: adds len to a shared counter under the lock. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct locked {
	struct bpf_spin_lock lock;
	__u32 updates;
	__u64 total;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct locked);
	__uint(max_entries, 1);
} shared SEC(".maps");

SEC("tc")
int spin_add(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct locked *l = bpf_map_lookup_elem(&shared, &zero);
	__u64 total;

	if (!l)
		return -1;
	bpf_spin_lock(&l->lock);
	l->total += skb->len;
	l->updates++;
	total = l->total;
	bpf_spin_unlock(&l->lock);
	return total;
}

char LICENSE[] SEC("license") = "GPL";
