#!/usr/bin/env bash
# Schema-aware fuzzing of Hearth's client-server API with schemathesis.
#
#   tests/fuzz/run.sh HEARTH_BINARY        e.g. tests/fuzz/run.sh target/debug/hearth
#
# Every operation of the bundled Matrix spec (client-server.json, see bundle_spec.py) is fuzzed
# against a fresh Hearth; any 5xx answer fails the run. The server and the fuzzer share a private
# network namespace with nothing but loopback, so no generated request (a media download from
# some random server name, say) can leave this machine.
#
# Environment knobs (defaults in brackets):
#   FUZZ_MAX_EXAMPLES [75]  cases per operation in the fuzzing phase; the run time scales with it
#   FUZZ_SEED [20251202]    Hypothesis seed, so a run can be repeated
#   FUZZ_WORKERS [2]        concurrent schemathesis workers
#   FUZZ_PHASES [examples,coverage,fuzzing]
#   FUZZ_TIME_LIMIT [1200]  seconds after which schemathesis is stopped (the run then fails)
#   FUZZ_REPORT_DIR [$CARGO_TARGET_DIR/fuzz-report]  NDJSON/JUnit reports and Hearth's log
# Extra arguments after the binary go to `st run` as they are (e.g. --include-path-regex login).
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
VENV=$TARGET_DIR/fuzz-venv
REPORT_DIR=${FUZZ_REPORT_DIR:-$TARGET_DIR/fuzz-report}

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'fuzz: %s\n' "$*" >&2; exit 2; }

# ---------------------------------------------------------------------------------------------
# Outside the namespace: everything that needs the network (apt, PyPI) happens here, once.
# ---------------------------------------------------------------------------------------------
if [ -z "${FUZZ_IN_NETNS:-}" ]; then
    [ $# -ge 1 ] || die "usage: $0 HEARTH_BINARY [st run options...]"
    HEARTH=$(realpath "$1") || die "no such file: $1"
    [ -x "$HEARTH" ] || die "$HEARTH is not an executable"
    shift

    missing=()
    command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
    if ((${#missing[@]})); then
        step "installing Debian packages: ${missing[*]}"
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi

    if [ "$("$VENV/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
        step "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
        rm -rf "$VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    fi

    # Root gets a plain network namespace; anyone else needs a user namespace to be allowed one.
    userns=()
    [ "$(id -u)" -eq 0 ] || userns=(--map-root-user)
    step "entering a private network namespace"
    exec unshare --net "${userns[@]}" -- env FUZZ_IN_NETNS=1 HEARTH="$HEARTH" VENV="$VENV" \
        REPORT_DIR="$REPORT_DIR" bash "$0" "$@"
fi

# ---------------------------------------------------------------------------------------------
# Inside the namespace: only loopback exists.
# ---------------------------------------------------------------------------------------------
ip link set lo up

work=$(mktemp -d)
hearth_pid=""
cleanup() {
    # The namespace dies with its last process, not with this script: stop Hearth explicitly.
    if [ -n "$hearth_pid" ] && kill -0 "$hearth_pid" 2>/dev/null; then
        kill -TERM "$hearth_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$hearth_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$hearth_pid" 2>/dev/null || true
        wait "$hearth_pid" 2>/dev/null || true
    fi
    if [ -f "$work/hearth.log" ]; then cp "$work/hearth.log" "$REPORT_DIR/hearth.log"; fi
    rm -rf "$work"
}
trap cleanup EXIT
# A signal ends the script through `exit`, so the EXIT trap above still stops Hearth.
trap 'exit 130' INT TERM
mkdir -p "$REPORT_DIR"
rm -f "$REPORT_DIR/events.ndjson" "$REPORT_DIR/junit.xml" "$REPORT_DIR/hearth.log"

SERVER_NAME=localhost
PORT=8008
BASE=http://127.0.0.1:$PORT
# Open registration without verification, so the fixture (and the fuzzer's own /register
# cases) can create accounts; rate limits far above what two workers can send, so answers
# are about the request and not 429s.
cat >"$work/homeserver.toml" <<EOF
server_name = "$SERVER_NAME"
data_dir = "$work/data"
log_dir = "$work/logs"
log_level = "info"
secret_store = "file"
enable_registration = true
enable_registration_without_verification = true
$(cat "$REPO/tests/lax_rate_limits.toml")

[admin]
port = 8009
bind_address = "127.0.0.1"

[[listeners]]
port = $PORT
bind_addresses = ["127.0.0.1"]
EOF

step "starting $HEARTH"
# HOME too: nothing of this run may touch the real user's config or keychain. No backtraces:
# with RUST_BACKTRACE set every error response captures one, slowing the server several-fold
# and burying the log; a panic's location and message are printed without it.
HOME=$work RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0 "$HEARTH" serve --config "$work/homeserver.toml" >"$work/hearth.log" 2>&1 &
hearth_pid=$!
for i in $(seq 120); do
    curl -fsS -o /dev/null "$BASE/_matrix/client/versions" 2>/dev/null && break
    kill -0 "$hearth_pid" 2>/dev/null || { cat "$work/hearth.log" >&2; die "Hearth exited during start-up"; }
    [ "$i" -lt 120 ] || { cat "$work/hearth.log" >&2; die "Hearth did not answer /_matrix/client/versions within 60 s"; }
    sleep 0.5
done

# ---------------------------------------------------------------------------------------------
# Fixture: an account with a room, an alias, an event and a media item, whose IDs the hooks
# mix into generated path and body values so handlers get past "not found".
# ---------------------------------------------------------------------------------------------
step "creating the fixture (account, room, message, media)"
api() { # METHOD PATH JSON -> body; fails on a non-2xx answer
    # No Authorization header at all before there is a token: an empty one is refused with 401.
    local auth=()
    [ -z "${TOKEN:-}" ] || auth=(-H "Authorization: Bearer $TOKEN")
    curl -fsS -X "$1" "${auth[@]}" -H 'Content-Type: application/json' --data "$3" "$BASE$2"
}
json() { "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

USER_NAME=fuzzer
PASSWORD=fuzz-password-$RANDOM$RANDOM
TOKEN=$(api POST /_matrix/client/v3/register \
    "{\"username\":\"$USER_NAME\",\"password\":\"$PASSWORD\",\"auth\":{\"type\":\"m.login.dummy\"}}" | json access_token)
USER_ID="@$USER_NAME:$SERVER_NAME"
ROOM_ID=$(api POST /_matrix/client/v3/createRoom '{"name":"Fuzz","room_alias_name":"fuzz","preset":"public_chat"}' | json room_id)
EVENT_ID=$(api PUT "/_matrix/client/v3/rooms/$ROOM_ID/send/m.room.message/fixture-1" \
    '{"msgtype":"m.text","body":"hello fuzzer"}' | json event_id)
MXC_URI=$(curl -fsS -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/plain' \
    --data 'fuzz media' "$BASE/_matrix/media/v3/upload?filename=fuzz.txt" | json content_uri)
printf 'user %s, room %s, event %s, media %s\n' "$USER_ID" "$ROOM_ID" "$EVENT_ID" "$MXC_URI" >&2

# ---------------------------------------------------------------------------------------------
# The fuzzing run.
# ---------------------------------------------------------------------------------------------
step "schemathesis $SCHEMATHESIS_VERSION"
export SCHEMATHESIS_HOOKS=$HERE/hooks.py
export FUZZ_BASE_URL=$BASE FUZZ_SERVER_NAME=$SERVER_NAME FUZZ_USER=$USER_NAME FUZZ_PASSWORD=$PASSWORD \
    FUZZ_ACCESS_TOKEN=$TOKEN FUZZ_USER_ID=$USER_ID FUZZ_ROOM_ID=$ROOM_ID FUZZ_EVENT_ID=$EVENT_ID \
    FUZZ_ROOM_ALIAS="#fuzz:$SERVER_NAME" FUZZ_MXC_URI=$MXC_URI
# Only not_a_server_error: the other checks (schema conformance, status codes) find spec
# deviations, a separate and much noisier question than "does the server break".
# The stateful phase needs OpenAPI links, which the Matrix spec does not declare.
# No example database: a run must not depend on what earlier runs found.
st_args=(
    run "$HERE/client-server.json"
    --url "$BASE"
    --checks not_a_server_error
    --phases "${FUZZ_PHASES:-examples,coverage,fuzzing}"
    --max-examples "${FUZZ_MAX_EXAMPLES:-75}"
    --seed "${FUZZ_SEED:-20251202}"
    --workers "${FUZZ_WORKERS:-2}"
    --generation-database none
    --request-timeout 10
    --continue-on-failure
    --suppress-health-check all
    --output-sanitize false
    --report ndjson,junit
    --report-ndjson-path "$REPORT_DIR/events.ndjson"
    --report-junit-path "$REPORT_DIR/junit.xml"
    --no-color
    "$@"
)
printf 'st %s\n' "${st_args[*]}" >&2
start=$(date +%s)
st_status=0
# A hard stop as well, so a hanging server cannot keep the run (and its requests) going.
(cd "$work" && timeout -s INT -k 30 "${FUZZ_TIME_LIMIT:-1200}" "$VENV/bin/st" "${st_args[@]}") || st_status=$?
printf '\nschemathesis finished in %s s with exit code %s\n' "$(($(date +%s) - start))" "$st_status" >&2

# The verdict is summarize.py's (any 5xx, or an unfinished run), not st's exit code: st also
# fails on things that are no server bug (a request timing out, a case it cannot generate),
# which the summary lists for information.
status=0
"$VENV/bin/python" "$HERE/summarize.py" "$HERE/client-server.json" "$REPORT_DIR/events.ndjson" "$work/hearth.log" || status=1
if ! kill -0 "$hearth_pid" 2>/dev/null; then
    printf 'fuzz: Hearth is no longer running (crashed?); see %s/hearth.log\n' "$REPORT_DIR" >&2
    status=1
fi
printf 'reports: %s\n' "$REPORT_DIR" >&2
exit "$status"
