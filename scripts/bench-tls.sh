#!/usr/bin/env bash
# TLS benchmark: Hearth's own TLS listener against nginx terminating TLS in front of Hearth
# (release build, same machine, same run). Writes the table to docs/benchmarks-tls-results.md
# (or the file given). Takes under a minute; not part of CI.
#   knobs: HEARTH_TLS_BENCH_CLIENTS [16], HEARTH_TLS_BENCH_SECONDS [8]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/sbin/nginx ] || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq; $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends nginx; }
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release --locked -p hearth-server -p hearth-bench
"$TARGET_DIR/release/hearth-tls-bench" "$TARGET_DIR/release/hearth" "${1:-docs/benchmarks-tls-results.md}"
