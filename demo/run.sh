#!/usr/bin/env bash
# The Cordon demo: an XDP firewall (tests/bpf/xdp_firewall.c) run over a
# capture of mixed traffic (demo/sample.pcap, 3000 packets), with the rules
# of demo/rules.json loaded into its `fw_rules` hash map first. Shows the
# verdict per XDP action, the time per packet on both engines, and the
# firewall's own per-verdict counters (`fw_stats`, per CPU) and rule hits.
#
#   bash demo/run.sh            # from the repository root (or anywhere)
#
# Needs: a Rust toolchain (cargo). python3 only to regenerate the capture.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

echo "==> building cordon (release)"
cargo build --release -q -p cordon-cli --bin cordon
CORDON="$CARGO_TARGET_DIR/release/cordon"

OBJ=tests/bpf/xdp_firewall.o
PCAP=demo/sample.pcap
RULES=demo/rules.json

echo
echo "==> the program: $OBJ"
"$CORDON" inspect "$OBJ"

echo
echo "==> verifying it (Linux-compatible verifier)"
"$CORDON" verify "$OBJ"

echo
echo "==> the first instructions, with source lines from BTF"
"$CORDON" disasm "$OBJ" | head -n 24

for engine in interp jit; do
    echo
    echo "==> $PCAP through the firewall, engine: $engine"
    "$CORDON" run "$OBJ" --prog xdp_firewall --pcap "$PCAP" \
        --maps-file "$RULES" --engine "$engine" --repeat 20
done

echo
echo "==> one pass with the maps afterwards (fw_rules: hits per rule; fw_stats: packets/bytes per verdict)"
"$CORDON" run "$OBJ" --prog xdp_firewall --pcap "$PCAP" --maps-file "$RULES" \
    --engine jit --dump-maps
