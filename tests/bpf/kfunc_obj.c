// SPDX-License-Identifier: GPL-2.0
/*
 * Cordon test kfuncs (acquire/release). The id is the first packet byte:
 * returns -1 when acquire returns NULL (id == 0), else value + id (= 3 * id).
 * Not loadable in Linux (the kfuncs only exist in the Cordon test host).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "cordon.h"

SEC("tc")
int kfunc_acquire_release(struct __sk_buff *skb)
{
	struct cordon_test_obj *obj;
	__u8 id;
	__u64 ret;

	if (bpf_skb_load_bytes(skb, 0, &id, 1))
		return -2;
	obj = cordon_test_acquire(id);
	if (!obj)
		return -1;
	ret = obj->value + obj->id;
	cordon_test_release(obj);
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
