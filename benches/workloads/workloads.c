/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Entry points of the benchmark workloads (bodies in workloads.h).
 *
 * - default (BPF):   SEC("xdp") int xdp_<name>(struct xdp_md *ctx)
 * - RAW_ENTRY (BPF): SEC("raw") __u32 raw_<name>(struct raw_ctx *ctx), for
 *                    engines without XDP context handling (rbpf: r1 points to
 *                    a buffer holding the data and data_end pointers)
 * - NATIVE (host):   __u32 native_<name>(const __u8 *data, __u64 len, void *map)
 *                    (prefix: NATIVE_PREFIX)
 */
#include "workloads.h"

#define PURE_WORKLOADS(X)                                                    \
	X(primes) X(log2) X(switch) X(memcpy) X(strcmp) X(checksum)           \
	X(popcount) X(bsearch) X(parse) X(crc32) X(fnv1a) X(unrolled)         \
	X(matmul) X(callchain) X(empty)

#define MAP_WORKLOADS(X) X(hash_map, bench_hash) X(array_map, bench_array)

#if defined(NATIVE)

/* NATIVE_PREFIX names the entry points, so that the same source can be
 * linked in twice (build.rs: native_ at -O2, native_novec_ without
 * auto-vectorisation, the scalar reference a BPF JIT can reach). */
#ifndef NATIVE_PREFIX
#define NATIVE_PREFIX native_
#endif
#define NATIVE_CAT2(a, b) a##b
#define NATIVE_CAT(a, b) NATIVE_CAT2(a, b)
#define NATIVE_FN(name) NATIVE_CAT(NATIVE_PREFIX, name)

#define NATIVE_PURE(name)                                                    \
	__u32 NATIVE_FN(name)(const __u8 *data, __u64 len, void *map)         \
	{                                                                    \
		(void)map;                                                   \
		return wl_##name(data, data + len);                          \
	}
#define NATIVE_MAP(name, map_name)                                           \
	__u32 NATIVE_FN(name)(const __u8 *data, __u64 len, void *map)         \
	{                                                                    \
		return wl_##name(data, data + len, map);                     \
	}
PURE_WORKLOADS(NATIVE_PURE)
MAP_WORKLOADS(NATIVE_MAP)

#elif defined(RAW_ENTRY)

struct raw_ctx {
	__u64 data;
	__u64 data_end;
};

#define RAW_PURE(name)                                                       \
	SEC("raw") __u32 raw_##name(struct raw_ctx *ctx)                      \
	{                                                                    \
		return wl_##name((const __u8 *)(long)ctx->data,               \
				 (const __u8 *)(long)ctx->data_end);         \
	}
PURE_WORKLOADS(RAW_PURE)

#else

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} bench_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} bench_array SEC(".maps");

#define XDP_PURE(name)                                                       \
	SEC("xdp") int xdp_##name(struct xdp_md *ctx)                         \
	{                                                                    \
		return wl_##name((const __u8 *)(long)ctx->data,               \
				 (const __u8 *)(long)ctx->data_end);         \
	}
#define XDP_MAP(name, map_name)                                              \
	SEC("xdp") int xdp_##name(struct xdp_md *ctx)                         \
	{                                                                    \
		return wl_##name((const __u8 *)(long)ctx->data,               \
				 (const __u8 *)(long)ctx->data_end, &map_name); \
	}
PURE_WORKLOADS(XDP_PURE)
MAP_WORKLOADS(XDP_MAP)

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#endif
