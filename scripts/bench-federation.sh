#!/usr/bin/env bash
# Federation benchmark: Hearth (release build) and Synapse from PyPI joining a 2,000-member room
# hosted on Synapse, and receiving a busy room's PDUs, in the same run, in the private network of
# tests/federation/run.sh (two Synapses). Writes docs/benchmarks-federation-results.md. Takes
# several minutes (building the big room on Synapse is most of it); not part of CI.
#   HEARTH_FED_BENCH_MEMBERS [2000]  members of the room to join
#   HEARTH_FED_BENCH_PDUS [2000]     PDUs sent to each receiver
#   HEARTH_FED_BENCH_LOG [unset]     a file for Hearth's log (RUST_LOG is then passed on)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release --locked -p hearth-server -p hearth-bench
out=$(realpath -m "${1:-docs/benchmarks-federation-results.md}")
# Synapse logs warnings only, as Hearth does: log I/O is not part of the race.
HEARTH_FED_SYNAPSES=2 HEARTH_FED_SYNAPSE_LOG_LEVEL=WARNING \
    HEARTH_SYNAPSE_VENV="${HEARTH_SYNAPSE_VENV:-$TARGET_DIR/synapse-venv}" \
    bash tests/federation/run.sh "$TARGET_DIR/release/hearth-fed-bench" "$TARGET_DIR/release/hearth" "$out"
