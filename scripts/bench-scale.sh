#!/usr/bin/env bash
# Scale benchmark: a release `hearth` on a database of a million events in 2,000 rooms (made
# once through the Client-Server API, in about 13 minutes, and kept in the target directory as
# `scale-data`, about 2 GiB): its start, and /sync and sliding sync for a user in all 2,000
# rooms. Writes docs/benchmarks-scale-results.md (or the file given). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release --locked -p hearth-server -p hearth-bench
"$TARGET_DIR/release/hearth-scale-bench" "$TARGET_DIR/release/hearth" "${HEARTH_SCALE_DATA:-$TARGET_DIR/scale-data}" "${1:-docs/benchmarks-scale-results.md}"
