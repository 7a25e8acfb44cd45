// SPDX-License-Identifier: GPL-2.0
/* perf_event_array + bpf_perf_event_output: emits {len, protocol} for each packet. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct sample {
	__u32 len;
	__u32 protocol;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} samples SEC(".maps");

SEC("tc")
int perf_sample(struct __sk_buff *skb)
{
	struct sample s = { .len = skb->len, .protocol = skb->protocol };

	/* no perf event attached in tests: returns -ENOENT (-2) there */
	return bpf_perf_event_output(skb, &samples, BPF_F_CURRENT_CPU, &s, sizeof(s));
}

char LICENSE[] SEC("license") = "GPL";
