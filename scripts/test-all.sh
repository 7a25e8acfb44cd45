#!/usr/bin/env bash
# Runs Cordon's whole test suite: every crate's unit and integration tests
# (conformance suite on every engine, verifier cases, object loading, the
# Linux-comparison harness where the bpf() syscall is permitted) and the check
# that committed BPF objects match their C sources (when clang is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
# Committed BPF objects must match their C sources (skipped without clang).
for dir in tests/bpf benches/workloads; do
    if [ -f "$dir/build.sh" ]; then
        bash scripts/check-objects.sh "$dir"
    fi
done
cargo test --workspace --no-fail-fast "$@"
