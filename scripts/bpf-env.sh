# Sourced by the BPF build scripts (tests/bpf/build.sh,
# benches/workloads/build.sh): `source scripts/bpf-env.sh SRC_DIR [OUT_DIR]`.
# Sets CLANG (default clang-19), out (OUT_DIR, default SRC_DIR; created,
# absolute) and bpf_common, the clang flags every object is built with:
# reproducible (source paths mapped to ".", no compiler ident) and with
# asm/types.h found in the multiarch include directory.
# shellcheck shell=bash

bpf_src="$(cd "$1" && pwd)"
out="${2:-$bpf_src}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
CLANG="${CLANG:-clang-19}"

# asm/types.h (included by linux/types.h) lives in the multiarch directory.
multiarch="$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")"

# shellcheck disable=SC2034 # used by the sourcing script
bpf_common=(
	-target bpf -O2 -Wall -Werror
	-idirafter "/usr/include/$multiarch"
	"-fdebug-prefix-map=$bpf_src=."
	"-ffile-prefix-map=$bpf_src=."
	-fno-ident
)
