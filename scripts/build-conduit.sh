#!/usr/bin/env bash
# Builds Conduit (https://conduit.rs, Apache-2.0) from its public source with the SQLite
# backend, for the benchmark's comparison column. Prints the binary's path.
#
# Conduit is not on crates.io and pins ruma to a git commit, so both are checked out at fixed
# commits. Where GitHub is not reachable, point CONDUIT_GIT and RUMA_GIT at local clones.
set -euo pipefail
cd "$(dirname "$0")/.."

CONDUIT_GIT=${CONDUIT_GIT:-https://github.com/timokoesters/conduit.git}
CONDUIT_COMMIT=d058dab7                                   # 0.11.0-alpha, 2025
RUMA_GIT=${RUMA_GIT:-https://github.com/ruma/ruma.git}
RUMA_COMMIT=d879f7df16ba9928a73649f8149dabeee939691e      # the commit Conduit's Cargo.lock pins

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
SRC=$TARGET_DIR/conduit-src
BIN=$TARGET_DIR/conduit-build/release/conduit

if [ ! -f "$SRC/.ready-$CONDUIT_COMMIT" ]; then
    rm -rf "$SRC"
    mkdir -p "$SRC"
    git clone --quiet "$CONDUIT_GIT" "$SRC/conduit"
    git -C "$SRC/conduit" checkout --quiet "$CONDUIT_COMMIT"
    git clone --quiet "$RUMA_GIT" "$SRC/ruma"
    git -C "$SRC/ruma" checkout --quiet "$RUMA_COMMIT"
    # Their pinned toolchains would make rustup download another compiler; the installed one
    # builds both.
    rm -f "$SRC/conduit/rust-toolchain.toml" "$SRC/ruma/rust-toolchain.toml"
    printf '\n[patch."https://github.com/ruma/ruma.git"]\nruma = { path = "../ruma/crates/ruma" }\n' >> "$SRC/conduit/Cargo.toml"
    touch "$SRC/.ready-$CONDUIT_COMMIT"
fi

if [ ! -x "$BIN" ]; then
    # Its sources sit under this workspace, whose .cargo/config.toml sets SQLite's build flags
    # for Hearth: an empty LIBSQLITE3_FLAGS builds Conduit's SQLite as upstream does.
    (cd "$SRC/conduit" && CARGO_TARGET_DIR=$TARGET_DIR/conduit-build LIBSQLITE3_FLAGS= \
        cargo build --release --no-default-features --features backend_sqlite,conduit_bin >&2)
fi
echo "$BIN"
