#!/usr/bin/env bash
# Load benchmark: Hearth (release build), Synapse from PyPI and Conduit built from its source
# (scripts/build-conduit.sh), same workload, same machine, same run. Writes the table to
# docs/benchmarks-results.md. Takes about 15 minutes (the first Conduit build 20 more); not part
# of CI. HEARTH_BENCH_CONDUIT=0 leaves Conduit out.
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

CONDUIT=()
if [ "${HEARTH_BENCH_CONDUIT:-1}" != 0 ]; then
    if bin=$(scripts/build-conduit.sh); then
        CONDUIT=("$bin")
    else
        echo "Conduit could not be built; the run goes on without it" >&2
    fi
fi

cargo build --release --locked -p hearth-server -p hearth-bench
# The code-order list names functions by symbols whose hashes change with hearth-server's
# dependencies; a stale list shows only as more idle memory (docs/benchmarks.md, "The order
# of the code").
coverage=$(scripts/code-order.sh --check | tail -n 1)
echo "code order: $coverage" >&2
if [ "$(sed -n 's/.*(\([0-9]*\)%)$/\1/p' <<< "$coverage")" -lt 90 ] 2>/dev/null; then
    echo "warning: server/code-order.txt is stale; scripts/code-order.sh writes it again (about 30 minutes)" >&2
fi
"$TARGET_DIR/release/hearth-bench" "$TARGET_DIR/release/hearth" "$VENV" "${1:-docs/benchmarks-results.md}" "${CONDUIT[@]}"
