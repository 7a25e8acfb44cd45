#!/usr/bin/env bash
# Usage: scripts/check-objects.sh DIR
# Rebuilds the BPF objects of DIR (with DIR/build.sh) into a temporary
# directory and checks that the objects committed in DIR are byte-identical:
# none missing, none stale, none without a build rule. Skips (exit 0) when
# clang is missing. Used for tests/bpf and benches/workloads.
set -euo pipefail

if [ "$#" -ne 1 ]; then
	echo "usage: $0 DIR (a directory with a build.sh taking an output directory)" >&2
	exit 2
fi
if [ ! -d "$1" ] || [ ! -f "$1/build.sh" ]; then
	echo "error: $1 is not a directory with a build.sh" >&2
	exit 2
fi
dir="$(cd "$1" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# How objects are named in messages: relative to the checkout when inside it.
rel="${dir#"$root"/}"

CLANG="${CLANG:-clang-19}"
if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "skipped: no clang ($CLANG not found)"
	exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
CLANG="$CLANG" bash "$dir/build.sh" "$tmp" >/dev/null

status=0
for built in "$tmp"/*.o; do
	[ -e "$built" ] || continue
	name="$(basename "$built")"
	if [ ! -f "$dir/$name" ]; then
		echo "missing committed object: $rel/$name"
		status=1
	elif ! cmp -s "$built" "$dir/$name"; then
		echo "stale object: $rel/$name differs from a fresh build"
		status=1
	fi
done
for committed in "$dir"/*.o; do
	[ -e "$committed" ] || continue
	name="$(basename "$committed")"
	if [ ! -f "$tmp/$name" ]; then
		echo "object without a build rule: $rel/$name"
		status=1
	fi
done
if [ "$status" -eq 0 ]; then
	echo "ok: $(find "$tmp" -maxdepth 1 -name '*.o' | wc -l) objects match a fresh build in $rel"
fi
exit "$status"
