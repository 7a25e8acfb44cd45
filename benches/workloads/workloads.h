/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Cordon benchmark workloads: one body per workload, written once and
 * compiled three ways from workloads.c:
 *
 *   clang -target bpf            -> workloads.o      (XDP entries, Cordon + Linux)
 *   clang -target bpf -DRAW_ENTRY -> workloads_raw.o (raw-memory entries, rbpf)
 *   cc -O2 -DNATIVE              -> native code      (the speed limit, cordon-bench)
 *
 * Every body is `static __always_inline` over (data, data_end[, map]) and
 * returns a __u32 (Linux's BPF_PROG_TEST_RUN reports the low 32 bits of r0).
 * Loops are bounded so that both Linux's and Cordon's verifiers accept
 * them; every packet access is checked against data_end, which native code
 * executes too (same source, same checks).
 */
#ifndef CORDON_BENCH_WORKLOADS_H
#define CORDON_BENCH_WORKLOADS_H

#ifdef NATIVE
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int32_t __s32;
typedef int64_t __s64;
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#define __noinline __attribute__((noinline))
/* Map helpers: provided by cordon-bench, backed by cordon-runtime's maps
 * (the same map implementation Cordon's helpers use). */
void *cordon_bench_map_lookup(void *map, const void *key);
long cordon_bench_map_update(void *map, const void *key, const void *value, __u64 flags);
#define bpf_map_lookup_elem cordon_bench_map_lookup
#define bpf_map_update_elem cordon_bench_map_update
#define BPF_ANY 0
#else
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#ifndef __noinline
#define __noinline __attribute__((noinline))
#endif
#endif

/* Hide a value from the optimiser (keeps branch-free code branch-free: BPF
 * has no conditional move, so a compare turned back into a select would
 * become a branch). */
#define OPAQUE(x) __asm__ volatile("" : "+r"(x))

#define LOAD16(p) (*(const __u16 *)(p))
#define LOAD32(p) (*(const __u32 *)(p))
#define LOAD64(p) (*(const __u64 *)(p))

/* ---- primes: count the primes below N < 512 (N from the first two bytes) */
static __always_inline __u32 wl_primes(const __u8 *d, const __u8 *e)
{
	if (d + 2 > e)
		return 0;
	__u32 n = ((__u32)d[0] | ((__u32)d[1] << 8)) & 511;
	__u32 count = 0;
	for (__u32 i = 2; i < 512; i++) {
		if (i >= n)
			break;
		__u32 prime = 1;
		for (__u32 j = 2; j <= 23; j++) {
			if (j * j > i)
				break;
			if (i % j == 0) {
				prime = 0;
				break;
			}
		}
		count += prime;
	}
	return count;
}

/* ---- log2: sum of floor(log2(x | 1)) over 256 32-bit words -------------- */
static __always_inline __u32 ilog2_u32(__u32 v)
{
	__u32 r = 0;
	if (v >= (1u << 16)) { v >>= 16; r += 16; }
	if (v >= (1u << 8)) { v >>= 8; r += 8; }
	if (v >= (1u << 4)) { v >>= 4; r += 4; }
	if (v >= (1u << 2)) { v >>= 2; r += 2; }
	if (v >= (1u << 1)) { r += 1; }
	return r;
}

static __always_inline __u32 wl_log2(const __u8 *d, const __u8 *e)
{
	if (d + 1024 > e)
		return 0;
	__u32 sum = 0;
	for (__u32 i = 0; i < 256; i++)
		sum += ilog2_u32(LOAD32(d + 4 * i) | 1);
	return sum;
}

/* ---- switch: a byte-code machine, one 8-way switch per input byte -------- */
static __always_inline __u32 wl_switch(const __u8 *d, const __u8 *e)
{
	if (d + 512 > e)
		return 0;
	__u32 acc = 0x12345678;
	for (__u32 i = 0; i < 512; i++) {
		__u32 b = d[i];
		switch (b & 7) {
		case 0: acc += b; break;
		case 1: acc ^= acc << 3; break;
		case 2: acc = acc * 33 + i; break;
		case 3: acc -= b ^ 0x5a; break;
		case 4: acc = (acc >> 7) | (acc << 25); break;
		case 5: acc += i * i; break;
		case 6: acc ^= b << (i & 15); break;
		default: acc = ~acc; break;
		}
	}
	return acc;
}

/* ---- memcpy: copy 128-byte chunks of the packet to the stack, then read
 * the copy back at data-dependent positions ------------------------------- */
static __always_inline __u32 wl_memcpy(const __u8 *d, const __u8 *e)
{
	if (d + 1024 > e)
		return 0;
	__u64 buf[16];
	__u64 h = 0xcbf29ce484222325ull;
	for (__u32 c = 0; c < 8; c++) {
		const __u8 *src = d + c * 128;
		for (__u32 w = 0; w < 16; w++)
			buf[w] = LOAD64(src + 8 * w);
		for (__u32 w = 0; w < 16; w++) {
			h = (h ^ buf[w]) * 0x100000001b3ull;
			h += buf[(h >> 7) & 15];
		}
	}
	return (__u32)(h ^ (h >> 32));
}

/* ---- strcmp: compare 64 neighbouring 16-byte NUL-terminated records ------ */
static __always_inline int strcmp16(const __u8 *a, const __u8 *b)
{
	for (__u32 k = 0; k < 16; k++) {
		__u8 x = a[k], y = b[k];
		if (x != y)
			return x < y ? -1 : 1;
		if (x == 0)
			return 0;
	}
	return 0;
}

static __always_inline __u32 wl_strcmp(const __u8 *d, const __u8 *e)
{
	if (d + 1024 > e)
		return 0;
	__u32 acc = 0;
	for (__u32 r = 0; r < 63; r++) {
		int c = strcmp16(d + 16 * r, d + 16 * (r + 1));
		acc = acc * 3 + (__u32)(c + 1);
	}
	return acc;
}

/* ---- checksum: RFC 1071 Internet checksum over 1500 bytes ---------------- */
static __always_inline __u32 wl_checksum(const __u8 *d, const __u8 *e)
{
	if (d + 1500 > e)
		return 0;
	__u32 sum = 0;
	for (__u32 i = 0; i < 750; i++)
		sum += LOAD16(d + 2 * i);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (~sum) & 0xffff;
}

/* ---- popcount: bits set in 192 64-bit words ------------------------------ */
static __always_inline __u32 popcount64(__u64 x)
{
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (__u32)((x * 0x0101010101010101ull) >> 56);
}

static __always_inline __u32 wl_popcount(const __u8 *d, const __u8 *e)
{
	if (d + 1536 > e)
		return 0;
	__u32 n = 0;
	for (__u32 i = 0; i < 192; i++)
		n += popcount64(LOAD64(d + 8 * i));
	return n;
}

/* ---- bsearch: 256 branch-free lower-bound (at most 63) queries in a sorted table of 64
 * u32, copied from the packet to the stack ------------------------------ */
static __always_inline __u32 wl_bsearch(const __u8 *d, const __u8 *e)
{
	if (d + 1280 > e)
		return 0;
	__u32 tab[64];
	for (__u32 i = 0; i < 64; i++)
		tab[i] = LOAD32(d + 4 * i);
	const __u8 *queries = d + 256;
	__u32 acc = 0;
	for (__u32 q = 0; q < 256; q++) {
		__u64 key = LOAD32(queries + 4 * q);
		__u64 lo = 0;
		for (__u32 half = 32; half > 0; half >>= 1) {
			/* branch-free: lo += half when tab[lo + half - 1] < key */
			__u64 diff = (__u64)tab[(lo + half - 1) & 63] - key;
			OPAQUE(diff);
			lo += half & (0 - (diff >> 63));
		}
		acc = acc * 3 + (__u32)lo;
	}
	return acc;
}

/* ---- parse: Ethernet/VLAN/IPv4/TCP/UDP parsing of 32 64-byte frames ------ */
static __always_inline __u32 parse_frame(const __u8 *f, const __u8 *e)
{
	if (f + 64 > e)
		return 0;
	__u32 off = 12;
	__u16 proto = (__u16)((f[off] << 8) | f[off + 1]);
	off += 2;
	if (proto == 0x8100) {
		proto = (__u16)((f[off + 2] << 8) | f[off + 3]);
		off += 4;
	}
	if (proto != 0x0800)
		return 1;
	const __u8 *ip = f + off;
	if ((ip[0] >> 4) != 4)
		return 2;
	__u32 ihl = (ip[0] & 15) * 4;
	if (ihl < 20)
		return 3;
	__u32 saddr = LOAD32(ip + 12), daddr = LOAD32(ip + 16);
	__u8 l4proto = ip[9];
	const __u8 *l4 = ip + (ihl & 60);
	if (l4 + 4 > e)
		return 4;
	__u32 ports = LOAD32(l4);
	__u32 h = saddr * 0x9e3779b1u ^ daddr;
	h = (h ^ ports) * 0x85ebca6bu;
	h ^= l4proto;
	if (l4proto == 6)
		return (h ^ (h >> 13)) | 0x100;
	if (l4proto == 17)
		return (h ^ (h >> 16)) | 0x200;
	return 5;
}

static __always_inline __u32 wl_parse(const __u8 *d, const __u8 *e)
{
	if (d + 2048 > e)
		return 0;
	__u32 acc = 0;
	for (__u32 i = 0; i < 32; i++)
		acc = acc * 31 + parse_frame(d + 64 * i, e);
	return acc;
}

/* ---- crc32: bitwise CRC-32 (IEEE) over 256 bytes ------------------------- */
static __always_inline __u32 wl_crc32(const __u8 *d, const __u8 *e)
{
	if (d + 256 > e)
		return 0;
	__u32 crc = 0xffffffffu;
	for (__u32 i = 0; i < 256; i++) {
		crc ^= d[i];
		for (__u32 k = 0; k < 8; k++) {
			__u32 bit = crc & 1;
			/* branch-free and select-free: multiply by the low bit */
			OPAQUE(bit);
			crc = (crc >> 1) ^ (0xedb88320u * bit);
		}
	}
	return ~crc;
}

/* ---- fnv1a: 64-bit FNV-1a over 1500 bytes (a serial dependency chain) ---- */
static __always_inline __u32 wl_fnv1a(const __u8 *d, const __u8 *e)
{
	if (d + 1500 > e)
		return 0;
	__u64 h = 0xcbf29ce484222325ull;
	for (__u32 i = 0; i < 1500; i++)
		h = (h ^ d[i]) * 0x100000001b3ull;
	return (__u32)(h ^ (h >> 32));
}

/* ---- unrolled: FNV-1a over 512 bytes, fully unrolled: ~1,500 instructions
 * of straight-line code (the largest program, for JIT compile time) ------- */
static __always_inline __u32 wl_unrolled(const __u8 *d, const __u8 *e)
{
	if (d + 512 > e)
		return 0;
	__u64 h = 0xcbf29ce484222325ull;
#pragma clang loop unroll(full)
	for (__u32 i = 0; i < 512; i++)
		h = (h ^ d[i]) * 0x100000001b3ull;
	return (__u32)(h ^ (h >> 32));
}

/* ---- matmul: nested loops, 8x8 u32 matrix product of two packet matrices */
static __always_inline __u32 wl_matmul(const __u8 *d, const __u8 *e)
{
	if (d + 512 > e)
		return 0;
	const __u8 *a = d, *b = d + 256;
	__u32 acc = 0;
	for (__u32 i = 0; i < 8; i++) {
		for (__u32 j = 0; j < 8; j++) {
			__u32 c = 0;
			for (__u32 k = 0; k < 8; k++)
				c += LOAD32(a + 4 * (8 * i + k)) * LOAD32(b + 4 * (8 * k + j));
			acc = acc * 7 + c;
		}
	}
	return acc;
}

/* ---- callchain: bpf-to-bpf calls six frames deep, each with a stack array */
#define CHAIN_FN(name, next, mul)                                            \
	static __noinline __u64 name(__u64 x, __u64 y)                       \
	{                                                                    \
		volatile __u64 t[4];                                         \
		t[0] = x;                                                    \
		t[1] = x * (mul);                                            \
		t[2] = x ^ y;                                                \
		t[3] = y + (mul);                                            \
		return next(t[1] + t[3], t[0] ^ t[2]) + t[2];                \
	}

static __noinline __u64 chain6(__u64 x, __u64 y)
{
	volatile __u64 t[4];
	t[0] = x;
	t[1] = y;
	t[2] = x * 0x9e3779b97f4a7c15ull;
	t[3] = y >> 3;
	return t[0] ^ t[1] ^ t[2] ^ t[3];
}
CHAIN_FN(chain5, chain6, 5)
CHAIN_FN(chain4, chain5, 7)
CHAIN_FN(chain3, chain4, 11)
CHAIN_FN(chain2, chain3, 13)
CHAIN_FN(chain1, chain2, 17)

static __always_inline __u32 wl_callchain(const __u8 *d, const __u8 *e)
{
	if (d + 512 > e)
		return 0;
	__u64 acc = 0;
	for (__u32 i = 0; i < 64; i++)
		acc += chain1(LOAD64(d + 8 * i), acc + i);
	return (__u32)(acc ^ (acc >> 32));
}

/* ---- hash_map: update then look up 128 keys in a hash map ---------------- */
static __always_inline __u32 wl_hash_map(const __u8 *d, const __u8 *e, void *map)
{
	if (d + 512 > e)
		return 0;
	__u32 acc = 0;
	for (__u32 i = 0; i < 128; i++) {
		__u32 key = LOAD32(d + 4 * i) & 4095;
		__u64 val = (__u64)i * 2654435761u;
		bpf_map_update_elem(map, &key, &val, BPF_ANY);
		__u64 *v = bpf_map_lookup_elem(map, &key);
		if (v)
			acc = acc * 31 + (__u32)*v;
	}
	return acc;
}

/* ---- array_map: 256 look-ups with read-modify-write in an array map ------ */
static __always_inline __u32 wl_array_map(const __u8 *d, const __u8 *e, void *map)
{
	if (d + 256 > e)
		return 0;
	__u32 acc = 0;
	for (__u32 i = 0; i < 256; i++) {
		__u32 idx = d[i] & 63;
		__u64 *v = bpf_map_lookup_elem(map, &idx);
		if (!v)
			continue;
		*v = (__u64)d[i] * 0x01000193u + i;
		acc += (__u32)(*v ^ idx);
	}
	return acc;
}

/* ---- empty: the cost of a call ------------------------------------------- */
static __always_inline __u32 wl_empty(const __u8 *d, const __u8 *e)
{
	(void)d;
	(void)e;
	return 2; /* XDP_PASS */
}

#endif
