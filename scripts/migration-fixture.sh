#!/usr/bin/env bash
# Makes the upgrade fixture of an earlier release, server/tests/fixtures/releases/NAME/:
# builds that release's `hearth` from a git worktree (sharing the cargo target folder), runs it
# on a new data folder, fills it through the client API with the `populate` test of
# server/tests/migrations.rs (this checkout's code, talking HTTP to the old server), stops it
# and keeps its data folder (database, secrets, media) and fixture.json (what it holds).
#
#   scripts/migration-fixture.sh REV NAME     e.g. scripts/migration-fixture.sh v0.2.0 0.2.0
#
# Make one for every release; server/tests/migrations.rs upgrades each with this Hearth.
set -euo pipefail
rev=${1:?usage: $0 REV NAME}
name=${2:?usage: $0 REV NAME}
repo=$(git rev-parse --show-toplevel)
out="$repo/server/tests/fixtures/releases/$name"
[ -e "$out" ] && { echo "$out exists already" >&2; exit 1; }
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  git -C "$repo" worktree remove --force "$work/src" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
git -C "$repo" worktree add -q --detach "$work/src" "$rev"

echo "building hearth at $rev…"
bin=$(cd "$work/src" && cargo build --workspace --bin hearth --message-format=json-render-diagnostics \
  | grep -o '"executable":"[^"]*/hearth"' | tail -1 | cut -d'"' -f4)
cp "$bin" "$work/hearth"

port=$(( 20000 + RANDOM % 20000 ))
{
  cat "$repo/tests/lax_rate_limits.toml"
  cat <<TOML
server_name = "family.test"
data_dir = "$work/data"
secret_store = "file"
enable_registration = true
enable_registration_without_verification = true
[admin]
port = 0
[[listeners]]
port = $port
bind_addresses = ["127.0.0.1"]
TOML
} > "$work/homeserver.toml"
HOME="$work/home" RUST_LOG=warn "$work/hearth" serve --config "$work/homeserver.toml" > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  grep -q "Listening on" "$work/server.log" && break
  sleep 0.2
done
grep -q "Listening on" "$work/server.log" || { cat "$work/server.log" >&2; exit 1; }

mkdir -p "$out"
(cd "$repo" && HEARTH_FIXTURE_URL="http://127.0.0.1:$port" HEARTH_FIXTURE_OUT="$out/fixture.json" \
  cargo test -p hearth-server --test migrations -- --ignored --exact populate)
kill -TERM "$server"
wait "$server" || true
server=""

mkdir -p "$out/data"
cp -r "$work/data/hearth.db" "$work/data/secrets" "$out/data/"
[ -d "$work/data/media" ] && cp -r "$work/data/media" "$out/data/"
# A clean stop leaves one self-contained file; VACUUM keeps the fixture small.
sqlite3 "$out/data/hearth.db" "VACUUM"
rm -f "$out/data/hearth.db-wal" "$out/data/hearth.db-shm"
echo "made $out ($(du -sh "$out" | cut -f1)) from $rev"
