#!/usr/bin/env bash
# Builds Hearth's packages into target/installers/ and prints each package's path (the last
# lines of its output). The release workflow calls this same script.
#
#   installers/build.sh server-deb   the headless server for Debian/Ubuntu: hearth-server_<v>_<arch>.deb
#   installers/build.sh deb          the desktop app for Debian/Ubuntu: Hearth_<v>_<arch>.deb (tauri build)
#   installers/build.sh rpm|dmg|msi|nsis   not built yet (installers/README.md)
#
# The desktop packages come from `tauri build`, with the Tauri CLI pinned below, installed from
# crates.io into the target folder the first time. HEARTH_PACKAGE_DEBUG=1 bundles a debug build
# (the test suite's, quicker to build); released packages are release builds.
# HEARTH_PACKAGE_BINARY=PATH packages that hearth binary instead of building a release one (the
# test suite passes its debug build, to check the package without a release build); the
# packages people install are release builds.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
die() { printf 'installers: %s\n' "$*" >&2; exit 2; }

[ $# -eq 1 ] || die "usage: $0 server-deb|deb|rpm|dmg|msi|nsis"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
OUT=$TARGET_DIR/installers
mkdir -p "$OUT"
VERSION=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "hearth-server"))')

TAURI_CLI_VERSION=2.9.6

# The pinned Tauri CLI's path, installed from crates.io (with its own lock file) when missing.
tauri_cli() {
    local root=$TARGET_DIR/tauri-cli
    if ! "$root/bin/cargo-tauri" --version 2>/dev/null | grep -qx "tauri-cli $TAURI_CLI_VERSION"; then
        printf 'installers: installing the Tauri CLI %s from crates.io (once)\n' "$TAURI_CLI_VERSION" >&2
        cargo install tauri-cli --version "=$TAURI_CLI_VERSION" --locked --root "$root" \
            --target-dir "$TARGET_DIR/tauri-cli-build" >&2
    fi
    echo "$root/bin/cargo-tauri"
}

desktop_deb() {
    local cli profile args=(build --bundles deb --ci)
    cli=$(tauri_cli)
    if [ -n "${HEARTH_PACKAGE_DEBUG:-}" ]; then
        args+=(--debug)
        profile=debug
        (cd src-tauri && "$cli" "${args[@]}") >&2
    else
        profile=release
        (cd src-tauri && HEARTH_BUILD=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) "$cli" "${args[@]}") >&2
    fi
    local made
    made=$(ls -t "$TARGET_DIR/$profile/bundle/deb/"*.deb 2>/dev/null | head -n 1)
    [ -n "$made" ] || die "tauri build made no .deb in $TARGET_DIR/$profile/bundle/deb"
    cp "$made" "$OUT/"
    echo "$OUT/$(basename "$made")"
}

server_deb() {
    command -v dpkg-deb >/dev/null || die "dpkg-deb is needed (Debian's dpkg package)"
    local binary=${HEARTH_PACKAGE_BINARY:-}
    if [ -z "$binary" ]; then
        # The commit goes into `hearth --version` (hearth_server::VERSION).
        HEARTH_BUILD=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
            cargo build --release --locked -p hearth-server --bin hearth
        binary=$TARGET_DIR/release/hearth
    fi
    [ -x "$binary" ] || die "no hearth binary at $binary"
    local arch root deb
    arch=$(dpkg --print-architecture)
    root=$(mktemp -d)
    trap 'rm -rf "$root"' RETURN
    chmod 0755 "$root"
    install -D -m 0755 "$binary" "$root/usr/bin/hearth"
    # Debug symbols stay out of the package (a tenth of the size).
    strip --strip-unneeded "$root/usr/bin/hearth"
    install -D -m 0644 installers/server/hearth.service "$root/lib/systemd/system/hearth.service"
    install -D -m 0640 installers/server/homeserver.toml "$root/etc/hearth/homeserver.toml"
    local doc=$root/usr/share/doc/hearth-server
    install -d "$doc"
    gzip -9n <README.md >"$doc/README.md.gz"
    gzip -9n <docs/configuration.md >"$doc/configuration.md.gz"
    gzip -9n <docs/operations.md >"$doc/operations.md.gz"
    cat >"$doc/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hearth
Files: *
License: $(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(next(p["license"] for p in json.load(sys.stdin)["packages"] if p["name"] == "hearth-server"))')
COPY
    install -d "$root/DEBIAN"
    install -m 0755 installers/server/postinst installers/server/prerm installers/server/postrm "$root/DEBIAN/"
    echo /etc/hearth/homeserver.toml >"$root/DEBIAN/conffiles"
    local size
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    cat >"$root/DEBIAN/control" <<CONTROL
Package: hearth-server
Version: $VERSION
Architecture: $arch
Maintainer: Hearth developers <hearth@localhost>
Installed-Size: $size
Depends: libc6, adduser
Section: net
Priority: optional
Homepage: https://matrix.org
Description: Matrix homeserver for a family or a small group
 Hearth is a personal Matrix homeserver: one program with its database (SQLite),
 for Element and every other Matrix app. This package runs it as a system service
 (the hearth user, /etc/hearth/homeserver.toml, data in /var/lib/hearth); set it
 up from its web page (sudo -u hearth hearth admin-url --config
 /etc/hearth/homeserver.toml prints the link).
CONTROL
    deb=$OUT/hearth-server_${VERSION}_${arch}.deb
    # Files owned by root in the package whoever builds it.
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
    echo "$deb"
}

case "$1" in
    server-deb) server_deb ;;
    deb) desktop_deb ;;
    rpm | dmg | msi | nsis)
        die "the desktop $1 is not built yet (installers/README.md says what exists)" ;;
    *) die "unknown package $1: server-deb, deb, rpm, dmg, msi or nsis" ;;
esac
