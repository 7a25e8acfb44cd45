#!/usr/bin/env bash
# Rebuild every BPF test object into a temporary directory and check that the
# committed objects are byte-identical (scripts/check-objects.sh). Skips
# (exit 0) when clang is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../../scripts/check-objects.sh" "$here"
