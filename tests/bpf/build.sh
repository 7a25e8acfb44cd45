#!/usr/bin/env bash
# Rebuild every BPF test object. Usage: tests/bpf/build.sh [output-dir]
# (default: next to the sources). The build is reproducible: paths are
# mapped so the objects do not depend on where the checkout lives.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# CLANG, out (default: here) and bpf_common, the flags shared with
# benches/workloads/build.sh.
source "$here/../../scripts/bpf-env.sh" "$here" "${1:-}"
common=("${bpf_common[@]}" -I include)

# output  source  extra flags
builds=(
	"xdp_firewall.o   xdp_firewall.c   -g -mcpu=v3"
	"xdp_firewall_v1.o xdp_firewall.c  -g -mcpu=v1"
	"tc_mark.o        tc_mark.c        -g -mcpu=v3"
	"socket_filter.o  socket_filter.c  -g -mcpu=v2"
	"maps_basic.o     maps_basic.c     -g -mcpu=v3"
	"tail_call.o      tail_call.c      -g -mcpu=v3"
	"ringbuf.o        ringbuf.c        -g -mcpu=v3"
	"queue_stack.o    queue_stack.c    -g -mcpu=v3"
	"map_in_map.o     map_in_map.c     -g -mcpu=v3"
	"global_data.o    global_data.c    -g -mcpu=v3"
	"subprogs.o       subprogs.c       -g -mcpu=v3"
	"subprogs_v1.o    subprogs.c       -g -mcpu=v1"
	"subprogs_nobtf.o subprogs.c       -mcpu=v2"
	"loop_callback.o  loop_callback.c  -g -mcpu=v3"
	"iter_for.o       iter_for.c       -g -mcpu=v3"
	"spin_lock.o      spin_lock.c      -g -mcpu=v3"
	"cpuv4.o          cpuv4.c          -g -mcpu=v4"
	"kfunc_obj.o      kfunc_obj.c      -g -mcpu=v3"
	"legacy_maps.o    legacy_maps.c    -g -mcpu=v2"
	"legacy_maps_nobtf.o legacy_maps.c -mcpu=v1"
	"exceptions.o     exceptions.c     -g -mcpu=v3"
	"exception_cb.o   exception_cb.c   -g -mcpu=v3"
	"core_local.o     core_local.c     -g -mcpu=v3"
	"xdp_swap.o       xdp_swap.c       -g -mcpu=v3"
	"lpm_bloom.o      lpm_bloom.c      -g -mcpu=v3"
	"perf_output.o    perf_output.c    -g -mcpu=v3"
	"deep_calls.o     deep_calls.c     -g -mcpu=v3"
	"bloom_ulong.o    bloom_ulong.c    -g -mcpu=v3"
	"xdp_tail_meta.o  xdp_tail_meta.c  -g -mcpu=v3"
	"tc_nat.o         tc_nat.c         -g -mcpu=v3"
	"csum_diff.o      csum_diff.c      -g -mcpu=v3"
	"redirect.o       redirect.c       -g -mcpu=v3"
	"xdp_redirect_map.o xdp_redirect_map.c -g -mcpu=v3"
	"time_rand.o      time_rand.c      -g -mcpu=v3"
	"printk_fmt.o     printk_fmt.c     -g -mcpu=v3"
	"vlan_ipv6.o      vlan_ipv6.c      -g -mcpu=v3"
	"tcp_opts.o       tcp_opts.c       -g -mcpu=v3"
	"queue_full.o     queue_full.c     -g -mcpu=v3"
	"ringbuf_query.o  ringbuf_query.c  -g -mcpu=v3"
	"sdiv_edge.o      sdiv_edge.c      -g -mcpu=v4"
	"tail_chain.o     tail_chain.c     -g -mcpu=v3"
	"lru_evict.o      lru_evict.c      -g -mcpu=v3"
	"xdp_frags.o      xdp_frags.c      -g -mcpu=v3"
	"skb_helpers.o    skb_helpers.c    -g -mcpu=v3"
	"for_each_map.o   for_each_map.c   -g -mcpu=v3"
	"ld_abs_reshape.o ld_abs_reshape.c -g -mcpu=v3"
)

cd "$here"
for line in "${builds[@]}"; do
	read -r obj src flags <<<"$line"
	# shellcheck disable=SC2086
	"$CLANG" "${common[@]}" $flags -c "$src" -o "$out/$obj"
done
echo "built ${#builds[@]} objects in $out"
