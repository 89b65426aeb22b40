#!/usr/bin/env bash
# A federation playground on loopback: a real Synapse (synapse.test) and the place where Hearth
# (hearth.test) will run, each reachable by name over TLS from a private CA, inside a private
# network and mount namespace. Then runs the given command (the Rust federation tests) in it.
#
#   tests/federation/run.sh TEST_COMMAND...
#   e.g. tests/federation/run.sh target/debug/deps/federation-abc --ignored --test-threads=1
#
# Addresses, names and the variables the command gets: see tests/federation/README.md.
# Environment knobs (defaults in brackets):
#   HEARTH_SYNAPSE_VENV [$CARGO_TARGET_DIR/synapse-venv, else target/synapse-venv]
#   HEARTH_FED_SYNAPSE_TIMEOUT [60]  seconds Synapse may take to answer after start
#   HEARTH_FED_KEEP [unset]          1: keep the work dir (certificates, configs, logs)
#   HEARTH_FED_SYNAPSES [1]          2: also a second Synapse, synapse2.test (the benchmark's)
#   HEARTH_FED_SYNAPSE_LOG_LEVEL [INFO]  Synapse's root log level (the benchmark uses WARNING)
set -euo pipefail

SYNAPSE_VERSION=1.163.2
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'federation: %s\n' "$*" >&2; exit 2; }

# ---------------------------------------------------------------------------------------------
# Outside the namespaces: everything that needs the network (apt, PyPI) happens here.
# ---------------------------------------------------------------------------------------------
if [ -z "${HEARTH_FED_IN_NETNS:-}" ]; then
    [ $# -ge 1 ] || die "usage: $0 TEST_COMMAND [ARGS...]"
    VENV=$(realpath -m "${HEARTH_SYNAPSE_VENV:-${CARGO_TARGET_DIR:-$REPO/target}/synapse-venv}")

    missing=()
    command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
    command -v ip >/dev/null 2>&1 && command -v ss >/dev/null 2>&1 || missing+=(iproute2)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    [ -x /usr/sbin/nginx ] || missing+=(nginx)
    [ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
    if ((${#missing[@]})); then
        step "installing Debian packages: ${missing[*]}"
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        # RUNLEVEL=1: the package must not start a system nginx (it would want port 80).
        $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi

    # The same venv and version as scripts/test.sh, so one install serves both.
    if ! "$VENV/bin/python" -c "import synapse, sys; sys.exit(synapse.__version__ != '$SYNAPSE_VERSION')" >/dev/null 2>&1; then
        # A venv this user cannot replace (another user's, say) is not deleted file by file.
        [ ! -e "$VENV" ] || [ -w "$VENV" ] || die "$VENV has no usable matrix-synapse $SYNAPSE_VERSION and is not writable; set HEARTH_SYNAPSE_VENV"
        step "installing matrix-synapse $SYNAPSE_VERSION into $VENV"
        rm -rf "$VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "matrix-synapse==$SYNAPSE_VERSION"
    fi

    # Root gets plain namespaces; anyone else needs a user namespace to be allowed them.
    userns=()
    [ "$(id -u)" -eq 0 ] || userns=(--map-root-user)
    step "entering private network and mount namespaces"
    exec unshare --net --mount "${userns[@]}" -- env HEARTH_FED_IN_NETNS=1 SYNAPSE_VENV="$VENV" \
        bash "$0" "$@"
fi

# ---------------------------------------------------------------------------------------------
# Inside: only loopback exists, and mounts made here are seen by nobody outside.
# ---------------------------------------------------------------------------------------------
SECONDS=0
ip link set lo up
# No proxy is reachable from here; curl, Synapse or the tests must not try one.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

HEARTH_IP=127.0.0.2
SYNAPSE_IP=127.0.0.3
SYNAPSE2_IP=127.0.0.4
# Where a test or benchmark that plays a server of its own listens (its certificate is made here).
OTHER_IP=127.0.0.5
# Where Hearth serves TLS itself, as tls.hearth.test (no nginx in front).
TLS_IP=127.0.0.6
DNS_IP=127.0.0.53
SYNAPSES=${HEARTH_FED_SYNAPSES:-1}
case "$SYNAPSES" in 1 | 2) ;; *) die "HEARTH_FED_SYNAPSES must be 1 or 2" ;; esac

work=$(mktemp -d -t hearth-fed.XXXXXX)
pids=() # NAME:PID of everything started here, stopped in reverse order
stop() { # NAME PID (negative: the whole process group): SIGTERM, up to 10 s to go, then SIGKILL
    local name=$1 pid=$2
    if kill -0 -- "$pid" 2>/dev/null; then
        kill -TERM -- "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 -- "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 -- "$pid" 2>/dev/null; then
            printf 'federation: %s (pid %s) ignored SIGTERM; killing it\n' "$name" "${pid#-}" >&2
            kill -KILL -- "$pid" 2>/dev/null || true
        fi
    fi
    wait "${pid#-}" 2>/dev/null || true
}
cleanup() {
    # The namespace outlives this script while any process is left in it: stop them all.
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[i]%%:*}" "${pids[i]#*:}"; done
    if [ "${HEARTH_FED_KEEP:-}" = 1 ]; then
        printf 'federation: work dir kept: %s\n' "$work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
# A signal ends the script through `exit`, so the EXIT trap above still runs.
trap 'exit 130' INT TERM
mkdir -p "$work/etc" "$work/tls" "$work/dnsmasq" "$work/nginx"

# --- names ------------------------------------------------------------------------------------
step "names: hearth.test=$HEARTH_IP, synapse.test=$SYNAPSE_IP, synapse2.test=$SYNAPSE2_IP, other.test=$OTHER_IP, tls.hearth.test=$TLS_IP, DNS at $DNS_IP"
mount --make-rprivate /
cat >"$work/etc/hosts" <<EOF
127.0.0.1 localhost $(hostname)
::1 localhost ip6-localhost ip6-loopback
$HEARTH_IP hearth.test
$SYNAPSE_IP synapse.test
$SYNAPSE2_IP synapse2.test
$OTHER_IP other.test
$TLS_IP tls.hearth.test
EOF
echo "nameserver $DNS_IP" >"$work/etc/resolv.conf"
mount --bind "$work/etc/hosts" /etc/hosts
mount --bind "$work/etc/resolv.conf" /etc/resolv.conf
# getaddrinfo must answer from these two files only: an nss module such as systemd-resolved's
# would ask the host's resolver, which knows nothing of .test.
if [ -f /etc/nsswitch.conf ] && ! grep -qE '^hosts:[[:space:]]+files dns[[:space:]]*$' /etc/nsswitch.conf; then
    sed -E 's/^hosts:.*/hosts: files dns/' /etc/nsswitch.conf >"$work/etc/nsswitch.conf"
    mount --bind "$work/etc/nsswitch.conf" /etc/nsswitch.conf
fi

# Exact host records, no wildcard: srv.hearth.test has only its SRV record, so a server looking
# it up finds no .well-known and must use the SRV record. --local=/test/ answers NXDOMAIN for
# every other .test name instead of "refused" (there is no upstream server).
# --user=root --group=: dnsmasq would drop to nobody and dip, and setgroups() is refused in
# the user namespace of a non-root run.
dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address="$DNS_IP" --port=53 --pid-file= --user=root --group= \
    --local=/test/ \
    --host-record="hearth.test,$HEARTH_IP" \
    --host-record="synapse.test,$SYNAPSE_IP" \
    --host-record="synapse2.test,$SYNAPSE2_IP" \
    --host-record="other.test,$OTHER_IP" \
    --host-record="tls.hearth.test,$TLS_IP" \
    --srv-host="_matrix-fed._tcp.srv.hearth.test,hearth.test,8448" \
    --log-queries --log-facility="$work/dnsmasq/dnsmasq.log" \
    >"$work/dnsmasq/stdout.log" 2>&1 &
pids+=("dnsmasq:$!")
for i in $(seq 50); do
    ss -Hlun "sport = :53" | grep -q "$DNS_IP:53" && break
    kill -0 "${pids[-1]##*:}" 2>/dev/null || { cat "$work/dnsmasq/"*.log >&2; die "dnsmasq exited during start-up"; }
    [ "$i" -lt 50 ] || { cat "$work/dnsmasq/"*.log >&2; die "dnsmasq did not listen on $DNS_IP:53 within 5 s"; }
    sleep 0.1
done

# --- certificates -----------------------------------------------------------------------------
step "test CA and certificates for hearth.test, synapse.test, synapse2.test and other.test"
tls=$work/tls
ossl() { # runs openssl quietly, dying with its output when it fails
    local out
    out=$(openssl "$@" 2>&1) || die "openssl $1 failed: $out"
}
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
    -subj "/CN=Hearth federation test CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
leaf() { # NAME SAN
    ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$tls/$1.key" -out "$tls/$1.csr"
    # rustls (webpki) and OpenSSL's strict mode want a leaf that is no CA, says what it is for,
    # and names its issuer's key.
    cat >"$tls/$1.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
subjectAltName=$2
EOF
    ossl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 7 -extfile "$tls/$1.ext" -out "$tls/$1.pem"
}
leaf hearth.test "DNS:hearth.test,DNS:*.hearth.test,IP:$HEARTH_IP"
leaf synapse.test "DNS:synapse.test,IP:$SYNAPSE_IP"
leaf synapse2.test "DNS:synapse2.test,IP:$SYNAPSE2_IP"
leaf other.test "DNS:other.test,IP:$OTHER_IP"
# Hearth's own TLS listener: its certificate, and a renewed one (another key) to swap in.
leaf tls.hearth.test "DNS:tls.hearth.test,IP:$TLS_IP"
leaf tls2.hearth.test "DNS:tls.hearth.test,IP:$TLS_IP"
CA=$tls/ca.pem

# --- nginx in front of hearth.test ------------------------------------------------------------
step "nginx: https://hearth.test (443 and 8448) -> http://$HEARTH_IP:8008"
ng=$work/nginx
cat >"$ng/nginx.conf" <<EOF
daemon off;
# Root throughout: nginx would hand its temp dirs and workers to nobody, who could not write
# here and may not exist in the user namespace of a non-root run. One process, no workers: a
# worker's switch of user calls initgroups(), which that user namespace refuses.
user root root;
master_process off;
pid $ng/nginx.pid;
error_log $ng/error.log info;
events { worker_connections 1024; }
http {
    access_log $ng/access.log;
    client_body_temp_path $ng/body;
    proxy_temp_path $ng/proxy;
    fastcgi_temp_path $ng/fastcgi;
    uwsgi_temp_path $ng/uwsgi;
    scgi_temp_path $ng/scgi;

    server {
        listen $HEARTH_IP:443 ssl http2 default_server;
        listen $HEARTH_IP:8448 ssl http2 default_server;
        server_name hearth.test *.hearth.test;
        ssl_certificate $tls/hearth.test.pem;
        ssl_certificate_key $tls/hearth.test.key;
        # Debian's nginx 1.22 offers only up to TLS 1.2 unless told.
        ssl_protocols TLSv1.2 TLSv1.3;

        location / {
            # No URI after the address: the request goes on exactly as it came (encoded IDs intact).
            proxy_pass http://$HEARTH_IP:8008;
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_http_version 1.1;
            client_max_body_size 100M;
            proxy_request_buffering off;
            # /sync waits up to a few minutes for news.
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
        }
    }
}
EOF
# -e: nginx opens its compiled-in error log before reading the config; point it here instead.
out=$(nginx -t -c "$ng/nginx.conf" -e "$ng/error.log" 2>&1) || die "nginx refused its config: $out"
nginx -c "$ng/nginx.conf" -e "$ng/error.log" >"$ng/stdout.log" 2>&1 &
pids+=("nginx:$!")
# Nothing listens on 8008 yet, so nginx answers 502: any HTTP answer proves TLS and the name.
for i in $(seq 50); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$CA" https://hearth.test:8448/ || true)
    [ "$code" = 000 ] || break
    kill -0 "${pids[-1]##*:}" 2>/dev/null || { tail -n 20 "$ng/error.log" >&2; die "nginx exited during start-up"; }
    [ "$i" -lt 50 ] || { tail -n 20 "$ng/error.log" >&2; die "nginx did not answer on https://hearth.test:8448 within 5 s"; }
    sleep 0.1
done

# --- Synapse ----------------------------------------------------------------------------------
# start_synapse NAME IP: a Synapse named NAME on IP (federation over TLS on 8448, client and
# federation over plain HTTP on 8008), its files in $work/NAME; waits until it answers.
start_synapse() {
    local name=$1 ip=$2
    local sy=$work/$1 secret
    mkdir -p "$sy"
    step "Synapse $SYNAPSE_VERSION as $name (federation https://$ip:8448, client http://$ip:8008)"
    secret=$(openssl rand -hex 32)
    echo "$secret" >"$sy/shared_secret"
    "$SYNAPSE_VENV/bin/python" -c '
import sys
from signedjson.key import generate_signing_key, write_signing_keys
with open(sys.argv[1], "w") as f:
    write_signing_keys(f, [generate_signing_key("a_fedtest")])
' "$sy/signing.key"
    cat >"$sy/log.yaml" <<EOF
version: 1
formatters:
    precise:
        format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
    # Unbuffered, so the tail printed on a failure is complete.
    file:
        class: logging.FileHandler
        formatter: precise
        filename: $sy/homeserver.log
        encoding: utf8
loggers:
    synapse.storage.SQL:
        level: WARNING
root:
    level: ${HEARTH_FED_SYNAPSE_LOG_LEVEL:-INFO}
    handlers: [file]
disable_existing_loggers: false
EOF
    # Rate limits far above what a test sends; each rc_* section that exists in 1.163.
    local lax='{per_second: 10000, burst_count: 100000}'
    cat >"$sy/homeserver.yaml" <<EOF
server_name: $name
public_baseurl: http://$ip:8008/
pid_file: $sy/homeserver.pid
signing_key_path: $sy/signing.key
log_config: $sy/log.yaml
media_store_path: $sy/media
report_stats: false
database:
    name: sqlite3
    args:
        database: $sy/homeserver.db
listeners:
    - port: 8448
      bind_addresses: ['$ip']
      type: http
      tls: true
      x_forwarded: false
      resources:
          - names: [federation]
            compress: false
    - port: 8008
      bind_addresses: ['$ip']
      type: http
      tls: false
      x_forwarded: false
      resources:
          - names: [client, federation]
            compress: false
tls_certificate_path: $tls/$name.pem
tls_private_key_path: $tls/$name.key
federation_verify_certificates: true
federation_custom_ca_list: ['$CA']
# The default ip_range_blacklist covers 127.0.0.0/8, so without this Synapse would refuse to
# reach hearth.test. (No federation_ip_range_blacklist: setting it would ignore this allowlist.)
ip_range_whitelist: ['127.0.0.0/8']
trusted_key_servers: []
suppress_key_server_warning: true
allow_public_rooms_over_federation: true
# Recent Synapse lets only admins publish rooms by default; the suite's users publish theirs.
room_list_publication_rules:
  - action: allow
enable_registration: true
enable_registration_without_verification: true
# Cheap password hashes: the suites and the benchmark register many users; hashing is not tested.
bcrypt_rounds: 4
registration_shared_secret: '$secret'
macaroon_secret_key: '$(openssl rand -hex 32)'
form_secret: '$(openssl rand -hex 32)'
rc_message: $lax
rc_registration: $lax
rc_registration_token_validity: $lax
rc_login: {address: $lax, account: $lax, failed_attempts: $lax}
rc_joins: {local: $lax, remote: $lax}
rc_joins_per_room: $lax
rc_invites: {per_room: $lax, per_user: $lax, per_issuer: $lax}
rc_third_party_invite: $lax
rc_3pid_validation: $lax
rc_key_requests: $lax
rc_media_create: $lax
rc_presence: {per_user: $lax}
rc_delayed_event_mgmt: $lax
rc_room_creation: $lax
rc_reports: $lax
rc_user_directory: $lax
rc_profile: $lax
rc_admin_redaction: $lax
# A destination that failed is normally left alone for 10 minutes and up to a week, and a failed
# request retried for minutes: between tests Hearth is often down, and the next test must not
# find hearth.test still marked as unreachable.
federation:
    destination_min_retry_interval: 1s
    destination_max_retry_interval: 5s
    max_long_retry_delay: 5s
rc_federation: {window_size: 1000, sleep_limit: 10000, sleep_delay: 1, reject_limit: 100000, concurrent: 1000}
EOF
    (cd "$sy" && exec "$SYNAPSE_VENV/bin/python" -m synapse.app.homeserver -c "$sy/homeserver.yaml") \
        >"$sy/stdout.log" 2>&1 &
    pids+=("$name:$!")
    local timeout=${HEARTH_FED_SYNAPSE_TIMEOUT:-60}
    local deadline=$((SECONDS + timeout))
    until curl -fsS -o /dev/null --max-time 2 --cacert "$CA" "https://$name:8448/_matrix/key/v2/server" 2>/dev/null &&
        curl -fsS -o /dev/null --max-time 2 "http://$ip:8008/_matrix/client/versions" 2>/dev/null; do
        kill -0 "${pids[-1]##*:}" 2>/dev/null || synapse_failed "$sy" "$name exited during start-up"
        [ "$SECONDS" -lt "$deadline" ] || synapse_failed "$sy" "$name did not answer https://$name:8448/_matrix/key/v2/server within $timeout s"
        sleep 0.5
    done
}
synapse_failed() { # DIR MESSAGE
    tail -n 80 "$1/homeserver.log" >&2 2>/dev/null || true
    cat "$1/stdout.log" >&2
    die "$2"
}
start_synapse synapse.test "$SYNAPSE_IP"
SYNAPSE_LOG=$work/synapse.test/homeserver.log
SYNAPSE_SHARED_SECRET=$(cat "$work/synapse.test/shared_secret")
if [ "$SYNAPSES" = 2 ]; then
    start_synapse synapse2.test "$SYNAPSE2_IP"
    export SYNAPSE2_URL=http://$SYNAPSE2_IP:8008 SYNAPSE2_SERVER_NAME=synapse2.test \
        SYNAPSE2_SHARED_SECRET=$(cat "$work/synapse2.test/shared_secret")
fi

# --- the tests --------------------------------------------------------------------------------
export HEARTH_FED_CA=$CA HEARTH_FED_LISTEN=$HEARTH_IP:8008 HEARTH_FED_SERVER_NAME=hearth.test \
    SYNAPSE_URL=http://$SYNAPSE_IP:8008 SYNAPSE_SERVER_NAME=synapse.test \
    SYNAPSE_SHARED_SECRET HEARTH_FED_DNS=$DNS_IP:53 HEARTH_FED_WORK=$work SYNAPSE_LOG \
    HEARTH_FED_TLS_NAME=tls.hearth.test HEARTH_FED_TLS_IP=$TLS_IP
unset HEARTH_FED_IN_NETNS SYNAPSE_VENV
step "environment ready in ${SECONDS} s; running: $*"
# In its own process group (job control on), so that a signal to this script stops the command
# and whatever it started (Hearth) with it; in the foreground, bash would hold the signal back
# until the command ended.
set -m
"$@" &
pids+=("command:-$!")
set +m
status=0
wait "${pids[-1]#*:-}" || status=$?
if [ "$status" -ne 0 ]; then
    printf '\nfederation: the command failed (exit %s); last 80 lines of the Synapse log:\n' "$status" >&2
    tail -n 80 "$SYNAPSE_LOG" >&2 || true
    [ "${HEARTH_FED_KEEP:-}" = 1 ] || printf 'federation: HEARTH_FED_KEEP=1 keeps %s (nginx, dnsmasq and Synapse logs)\n' "$work" >&2
fi
exit "$status"
