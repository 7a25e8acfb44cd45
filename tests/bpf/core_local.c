// SPDX-License-Identifier: GPL-2.0
/*
 * CO-RE relocations against types the object defines itself (and against
 * the UAPI __sk_buff), so the target type is the local type. Returns
 * cfg.b + cfg.c[1] + (field/type existence and size checks).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct cfg {
	__u32 a;
	__u64 b;
	__u16 c[4];
	__u8 flags:3, mode:5;
} __attribute__((preserve_access_index));

enum cfg_mode { MODE_OFF = 0, MODE_ON = 5 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct cfg);
	__uint(max_entries, 1);
} cfgs SEC(".maps");

SEC("tc")
int core_read(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct cfg *c = bpf_map_lookup_elem(&cfgs, &zero);
	__u64 ret = 0;

	if (!c)
		return -1;
	ret = c->b + c->c[1];
	ret += BPF_CORE_READ_BITFIELD(c, mode);
	if (bpf_core_field_exists(c->a))
		ret += 1000;
	ret += bpf_core_field_size(c->c) * 10000;
	ret += bpf_core_type_size(struct cfg) * 100000;
	if (bpf_core_enum_value_exists(enum cfg_mode, MODE_ON))
		ret += bpf_core_enum_value(enum cfg_mode, MODE_ON) * 1000000;
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
