#!/usr/bin/env bash
# Rebuild the benchmark workload objects. Usage: benches/workloads/build.sh
# [output-dir] (default: next to the sources). The build is reproducible:
# paths are mapped so the objects do not depend on where the checkout lives.
#
#   workloads.o      XDP entry points (Cordon and Linux run the same object)
#   workloads_raw.o  raw-memory entry points (rbpf, which has no XDP context)
#
# The native build of the same source is done by crates/cordon-bench/build.rs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# CLANG, out (default: here) and bpf_common, the flags shared with
# tests/bpf/build.sh.
source "$here/../../scripts/bpf-env.sh" "$here" "${1:-}"
common=("${bpf_common[@]}" -g -mcpu=v3)

cd "$here"
"$CLANG" "${common[@]}" -c workloads.c -o "$out/workloads.o"
"$CLANG" "${common[@]}" -DRAW_ENTRY -c workloads.c -o "$out/workloads_raw.o"
echo "built 2 objects in $out"
