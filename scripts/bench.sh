#!/usr/bin/env bash
# Load benchmark: Hearth (release build) and Synapse from PyPI, same workload, same machine, same
# run. Writes the table to docs/benchmarks-results.md. Takes a few minutes; not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

SYNAPSE_VERSION=1.163.2
# Where cargo builds, wherever it is configured (CARGO_TARGET_DIR, a cargo config file).
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
VENV=${HEARTH_SYNAPSE_VENV:-$TARGET_DIR/synapse-venv}

if ! "$VENV/bin/python" -c "import synapse, sys; sys.exit(synapse.__version__ != '$SYNAPSE_VERSION')" >/dev/null 2>&1; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "matrix-synapse==$SYNAPSE_VERSION"
fi

cargo build --release --locked -p hearth-server -p hearth-bench
"$TARGET_DIR/release/hearth-bench" "$TARGET_DIR/release/hearth" "$VENV" "${1:-docs/benchmarks-results.md}"
