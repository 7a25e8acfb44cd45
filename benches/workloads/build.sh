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
out="${1:-$here}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
CLANG="${CLANG:-clang-19}"

# asm/types.h (included by linux/types.h) lives in the multiarch directory.
multiarch="$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")"

common=(
	-target bpf -O2 -g -mcpu=v3 -Wall -Werror
	-idirafter "/usr/include/$multiarch"
	"-fdebug-prefix-map=$here=."
	"-ffile-prefix-map=$here=."
	-fno-ident
)

cd "$here"
"$CLANG" "${common[@]}" -c workloads.c -o "$out/workloads.o"
"$CLANG" "${common[@]}" -DRAW_ENTRY -c workloads.c -o "$out/workloads_raw.o"
echo "built 2 objects in $out"
