/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Declarations newer than the installed libbpf headers (1.1), plus the
 * Cordon test kfuncs. Include after <bpf/bpf_helpers.h>.
 */
#ifndef CORDON_H
#define CORDON_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#ifndef __ksym
#define __ksym __attribute__((section(".ksyms")))
#endif

#ifndef __noinline
#define __noinline __attribute__((noinline))
#endif

/* 64-bit map attribute (libbpf 1.2+): `enum { v = val } *name`. */
#ifndef __ulong
#define ___cordon_concat(a, b) a##b
#define ___cordon_uniq(n) ___cordon_concat(__unique_value, n)
#define __ulong(name, val) enum { ___cordon_uniq(__COUNTER__) = val } *name
#endif

/* Legacy map definition ("maps" section), removed from libbpf 1.0 headers. */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

/* ---- Generic kfuncs (Linux 6.4+ open-coded iterators, 6.7+ exceptions) ---- */

struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;

/* Same shape as libbpf's bpf_for (libbpf 1.2+). */
#define bpf_for(i, start, end) for (						\
	struct bpf_iter_num ___it __attribute__((aligned(8),			\
					 cleanup(bpf_iter_num_destroy))),	\
	*___p __attribute__((unused)) = (					\
		bpf_iter_num_new(&___it, (start), (end)),			\
		(void)bpf_iter_num_destroy, (void *)0);				\
	({									\
		int *___t = bpf_iter_num_next(&___it);				\
		(___t && ((i) = *___t, (i) >= (start) && (i) < (end)));	\
	});									\
)

/* Exceptions: never returns; the program returns `cookie` (or the
 * exception callback's result). */
extern void bpf_throw(__u64 cookie) __ksym;

#define __exception_cb(name) __attribute__((btf_decl_tag("exception_callback:" #name)))

/* ---- Cordon test kfuncs (provided by the Cordon test host, not Linux) ---- */

struct cordon_test_obj {
	__u64 id;
	__u64 value;
};

/* Returns NULL when id == 0; otherwise a referenced object with value = id * 2. */
extern struct cordon_test_obj *cordon_test_acquire(__u64 id) __ksym;
extern void cordon_test_release(struct cordon_test_obj *obj) __ksym;

#endif /* CORDON_H */
