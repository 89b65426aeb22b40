#!/usr/bin/env bash
# Writes server/code-order.txt, the order in which the linker places the release binary's
# functions (server/build.rs): first every function that a start and an idle minute run, then
# every other function that the benchmark's workload runs (Hearth alone), the busiest first.
# Functions are recorded with valgrind's callgrind, which sees every function run, however
# rarely. Takes about 30 minutes; not part of CI.
#
# Run it again when the list has gone stale: the names carry hashes that change with the
# compiler and with dependency versions, and a function the list does not name lands after the
# listed ones. `scripts/code-order.sh --check` says how much of the list the current release
# build still has; docs/benchmarks-results.md ("Code placed in the order it runs") says what the
# order is worth.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
BIN=$TARGET_DIR/release/hearth
LIST=server/code-order.txt

# The binary's functions: "name size", from its symbol table.
functions() {
    nm -S --defined-only "$1" | awk 'NF == 4 && $3 ~ /^[tTwW]$/ { print $4, $2 }'
}

if [ "${1:-}" = --check ]; then
    cargo build --release --locked -p hearth-server --bin hearth
    # A Rust function's local copy counts by its name without LLVM's number (`name.9523`): the
    # build places the copies numbered near the recorded one (server/build.rs).
    grep -v '^#' "$LIST" | awk -v bin="$BIN" '
        function base(name) { if (name ~ /^_(ZN|R)/) sub(/\.[0-9]+$/, "", name); return name }
        NR == FNR { have[base($1)] = 1; next }
        NF { listed++; if (base($1) in have) found++ }
        END { printf "%d of the %d functions listed are in %s (%.0f%%)\n", found, listed, bin, 100 * found / listed }
    ' <(functions "$BIN") -
    exit 0
fi

if ! command -v valgrind > /dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y -qq valgrind > /dev/null
fi

# The list's own order must not change what is recorded: the names are the same either way.
cargo build --release --locked -p hearth-server --bin hearth -p hearth-bench
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$BIN" "$WORK/hearth"
# The allocator's settings up front, so the server does not start itself over (allocator.rs).
TUNABLES="glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=4194304"

# 1. A start and an idle minute.
mkdir -p "$WORK/idle"
PORT=18399
cat > "$WORK/idle/homeserver.toml" <<EOF
server_name = "order.hearth"
data_dir = "$WORK/idle/data"
secret_store = "file"
enable_registration = true
enable_registration_without_verification = true
log_level = "warn"
log_dir = "$WORK/idle/logs"
[admin]
port = 0
[[listeners]]
port = $PORT
bind_addresses = ["127.0.0.1"]
EOF
env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE -u RUST_LOG GLIBC_TUNABLES=$TUNABLES valgrind --tool=callgrind --demangle=no --dump-instr=no \
    --callgrind-out-file="$WORK/idle.callgrind" "$WORK/hearth" serve --config "$WORK/idle/homeserver.toml" \
    > "$WORK/idle/out.log" 2>&1 &
SERVER=$!
for _ in $(seq 120); do
    curl -fs "http://127.0.0.1:$PORT/_matrix/client/versions" > /dev/null && break
    sleep 1
done
sleep 60
kill -INT "$SERVER"
wait "$SERVER" || true

# 2. The benchmark's workload, Hearth alone, the server run under callgrind by a wrapper.
cat > "$WORK/hearth-callgrind" <<EOF
#!/bin/sh
export GLIBC_TUNABLES=$TUNABLES
exec valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file="$WORK/bench.callgrind" "$WORK/hearth" "\$@" 2> "$WORK/bench.log"
EOF
chmod +x "$WORK/hearth-callgrind"
HEARTH_BENCH_ONLY=hearth "$TARGET_DIR/release/hearth-bench" "$WORK/hearth-callgrind" none "$WORK/bench.md" > /dev/null
# The benchmark only asks the server to stop; callgrind writes its record as the server ends.
while pgrep -f "$WORK/bench.callgrind" > /dev/null; do
    sleep 1
done

# Each function's own instruction count ("name count"), from callgrind's output: `fn=(id) name`
# or `cfn=(id) name` names a function the first time, `fn=(id)` after; the cost lines after a
# `fn=` line are its own, except the one after each `calls=` line, which is the callee's.
own_costs() {
    awk '
        /^c?fn=/ {
            id = $1; sub(/^c?fn=/, "", id)
            # A name of a recursive cycle ends in a quote and a number.
            if (NF > 1) { n = $2; q = index(n, sprintf("%c", 39)); name[id] = q ? substr(n, 1, q - 1) : n }
            if ($0 ~ /^fn=/) { current = name[id] }
            next
        }
        /^calls=/ { skip = 1; next }
        /^[0-9+*-]/ { if (skip) { skip = 0; next } cost[current] += $2; next }
        { skip = 0 }
        END { for (f in cost) if (cost[f] > 0) print f, cost[f] }
    ' "$1"
}

{
    echo "# The order in which the linker places the release binary's functions (server/build.rs)."
    echo "# Written by scripts/code-order.sh from $(git rev-parse --short HEAD) with $(rustc --version | cut -d' ' -f1-2); do not edit."
    echo "# First what a start and an idle minute run, then what the benchmark runs, busiest first."
    own_costs "$WORK/idle.callgrind" | sort -k2,2nr > "$WORK/idle.list"
    own_costs "$WORK/bench.callgrind" | sort -k2,2nr > "$WORK/bench.list"
    awk 'NR == FNR { have[$1] = 1; next } ($1 in have) && !seen[$1]++ { print $1 }' \
        <(functions "$BIN") "$WORK/idle.list" "$WORK/bench.list"
} > "$LIST.new"
mv "$LIST.new" "$LIST"
echo "$(grep -vc '^#' "$LIST") functions listed in $LIST"
