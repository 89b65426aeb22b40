#!/usr/bin/env bash
# Backup benchmark: `hearth backup` (plain and encrypted) of a large database (1 GiB unless
# SIZE_MIB is given) while a user keeps sending, and the longest send during it. Writes
# docs/benchmarks-backup.md. Takes several minutes and a few GiB of disk; not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release --locked -p hearth-server -p hearth-bench
"$TARGET_DIR/release/hearth-backup-bench" "$TARGET_DIR/release/hearth" docs/benchmarks-backup.md "${1:-1024}"
