#!/usr/bin/env bash
# Rebuild the benchmark workload objects into a temporary directory and check
# that the committed objects are byte-identical. Skips (exit 0) when clang is
# missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLANG="${CLANG:-clang-19}"
if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "skipped: no clang ($CLANG not found)"
	exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
CLANG="$CLANG" "$here/build.sh" "$tmp" >/dev/null

status=0
for built in "$tmp"/*.o; do
	name="$(basename "$built")"
	if [ ! -f "$here/$name" ]; then
		echo "missing committed object: benches/workloads/$name"
		status=1
	elif ! cmp -s "$built" "$here/$name"; then
		echo "stale object: benches/workloads/$name differs from a fresh build"
		status=1
	fi
done
for committed in "$here"/*.o; do
	name="$(basename "$committed")"
	if [ ! -f "$tmp/$name" ]; then
		echo "object without a build rule: benches/workloads/$name"
		status=1
	fi
done
if [ "$status" -eq 0 ]; then
	echo "ok: $(ls "$tmp"/*.o | wc -l) objects match a fresh build"
fi
exit "$status"
