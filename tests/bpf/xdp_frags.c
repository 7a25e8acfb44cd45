// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * XDP multi-buffer: a "xdp.frags" program (BPF_F_XDP_HAS_FRAGS) that works on
 * the whole packet through the helpers while data..data_end is only the
 * linear part. Per packet length it records in `frag_stats`:
 *   - bpf_xdp_get_buff_len and the linear length,
 *   - the sum of every byte (bpf_xdp_load_bytes in 64-byte chunks),
 *   - the last 4 bytes (a trailer past the linear part for large packets),
 *   - the result of error probes (offset past the end: -EINVAL, offset above
 *     0xffff: -EFAULT),
 *   - a store of 4 bytes across the linear/fragment boundary (-EINVAL for a
 *     linear packet), and a byte 100 bytes into the first fragment flipped,
 *   - bpf_xdp_adjust_tail shrinking by 32 * byte 14 and then growing by
 *     16 * byte 15 (releasing fragments, growing into the last fragment's
 *     page), and the lengths afterwards.
 * Returns the final bpf_xdp_get_buff_len.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct frag_stats {
	__u64 sum;
	__u32 len;
	__u32 linear;
	__u32 trailer;
	__s32 err_past_end;
	__s32 err_big_offset;
	__s32 cross_ret;
	__s32 flip_ret;
	__s32 trim_ret;
	__s32 grow_ret;
	__u32 final_len;
	__u32 final_linear;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct frag_stats);
} frag_stats SEC(".maps");

#define CHUNK 64
#define MAX_CHUNKS 160

SEC("xdp.frags")
int xdp_frags(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct frag_stats s = {};
	__u8 buf[CHUNK];
	__u8 mark[4] = { 0xde, 0xad, 0xbe, 0xef };
	__u8 *p = data;
	__u32 len, off = 0, trim, grow;
	__u8 b;
	int i;

	if (p + 16 > (__u8 *)data_end)
		return XDP_ABORTED;
	trim = p[14] * 32u;
	grow = p[15] * 16u;

	len = bpf_xdp_get_buff_len(ctx);
	s.len = len;
	s.linear = data_end - data;

	for (i = 0; i < MAX_CHUNKS; i++) {
		if (off + CHUNK > len)
			break;
		if (bpf_xdp_load_bytes(ctx, off, buf, CHUNK))
			break;
		for (int j = 0; j < CHUNK; j++)
			s.sum += buf[j];
		off += CHUNK;
	}
	for (i = 0; i < CHUNK; i++) {
		if (off >= len)
			break;
		if (bpf_xdp_load_bytes(ctx, off, &b, 1))
			break;
		s.sum += b;
		off++;
	}

	bpf_xdp_load_bytes(ctx, len - 4, &s.trailer, 4);
	s.err_past_end = bpf_xdp_load_bytes(ctx, len, &b, 1);
	s.err_big_offset = bpf_xdp_load_bytes(ctx, 0x10000, &b, 1);

	s.cross_ret = bpf_xdp_store_bytes(ctx, s.linear - 2, mark, 4);
	s.flip_ret = bpf_xdp_load_bytes(ctx, s.linear + 100, &b, 1);
	if (!s.flip_ret) {
		b ^= 0xff;
		s.flip_ret = bpf_xdp_store_bytes(ctx, s.linear + 100, &b, 1);
	}

	s.trim_ret = trim ? bpf_xdp_adjust_tail(ctx, -(int)trim) : 0;
	s.grow_ret = grow ? bpf_xdp_adjust_tail(ctx, (int)grow) : 0;

	s.final_len = bpf_xdp_get_buff_len(ctx);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	s.final_linear = data_end - data;

	bpf_map_update_elem(&frag_stats, &len, &s, BPF_ANY);
	return s.final_len;
}

char LICENSE[] SEC("license") = "GPL";
