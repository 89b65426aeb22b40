#!/usr/bin/env bash
# Builds Hearth's packages into target/installers/ and prints each package's path (the last
# line of its output). The release workflow calls this same script, on each system.
#
#   installers/build.sh server-deb   the headless server for Debian/Ubuntu: hearth-server_<v>_<arch>.deb
#   installers/build.sh deb          the desktop app for Debian/Ubuntu: Hearth_<v>_<arch>.deb
#   installers/build.sh rpm          the desktop app for Fedora/openSUSE: Hearth-<v>-1.<arch>.rpm
#   installers/build.sh dmg          on macOS: Hearth_<v>_universal.dmg (Apple silicon and Intel)
#   installers/build.sh msi|nsis     on Windows: Hearth_<v>_x64_en-US.msi (WiX), Hearth_<v>_x64-setup.exe
#   installers/build.sh tauri-cli    the pinned Tauri CLI's path (`tauri signer generate` makes
#                                    an update key; see installers/README.md)
#
# The desktop packages come from `tauri build`, with the Tauri CLI pinned below, installed from
# npm into the target folder the first time (Node is needed). HEARTH_PACKAGE_DEBUG=1 bundles a debug build
# (the test suite's, quicker to build); released packages are release builds.
# HEARTH_PACKAGE_BINARY=PATH (server-deb) packages that hearth binary instead of building a
# release one (the test suite passes its debug build).
#
# Signing, when the variables are set (the release workflow sets them from repository secrets;
# without them the packages are built unsigned):
#   macOS: APPLE_CERTIFICATE (base64 .p12), APPLE_CERTIFICATE_PASSWORD, APPLE_SIGNING_IDENTITY;
#          notarisation with APPLE_ID, APPLE_PASSWORD (an app-specific password), APPLE_TEAM_ID
#          (all read by tauri build itself)
#   Windows: HEARTH_WINDOWS_CERT_THUMBPRINT, a code-signing certificate already in the user's
#          certificate store (the workflow imports it), with HEARTH_WINDOWS_TIMESTAMP_URL
#
# Updates (the desktop packages): HEARTH_UPDATER_PUBKEY, the public half of the project's update
# key (`tauri signer generate`), builds the updater into the app, which then asks
# HEARTH_UPDATER_ENDPOINT (default: latest.json of the latest GitHub release of
# HEARTH_REPOSITORY) once a day. Without it the app does not update itself (builds by
# distributions, from source). TAURI_SIGNING_PRIVATE_KEY (and _PASSWORD) signs each package
# for the updater: PACKAGE.sig beside it, which installers/manifest.sh puts into latest.json.
# HEARTH_PACKAGE_VERSION builds another version number than Cargo.toml's (the updater's test).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
die() { printf 'installers: %s\n' "$*" >&2; exit 2; }

[ $# -eq 1 ] || die "usage: $0 server-deb|deb|rpm|dmg|msi|nsis|tauri-cli"
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    TARGET_DIR=$CARGO_TARGET_DIR
elif command -v jq >/dev/null; then
    # Wherever cargo builds, also when a cargo config file says so.
    TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
else
    TARGET_DIR=$REPO/target
fi
# Git Bash on Windows: a path that cargo and tauri (Windows programs) understand.
if command -v cygpath >/dev/null; then TARGET_DIR=$(cygpath -m "$TARGET_DIR"); fi
export CARGO_TARGET_DIR=$TARGET_DIR
OUT=$TARGET_DIR/installers
mkdir -p "$OUT"

TAURI_CLI_VERSION=2.12.4

# The pinned Tauri CLI's path, installed when missing. npm's @tauri-apps/cli is the tauri-cli
# crate's release prebuilt for each system (Apache-2.0 OR MIT, run by Node): building the crate
# with `cargo install` took most of a cold CI run's packaging step.
tauri_cli() {
    local root=$TARGET_DIR/tauri-cli-npm
    if ! "$root/node_modules/.bin/tauri" --version 2>/dev/null | grep -qx "tauri-cli $TAURI_CLI_VERSION"; then
        printf 'installers: installing the Tauri CLI %s from npm (once)\n' "$TAURI_CLI_VERSION" >&2
        mkdir -p "$root"
        npm install --prefix "$root" --no-save --no-audit --no-fund --silent "@tauri-apps/cli@$TAURI_CLI_VERSION" >&2
    fi
    echo "$root/node_modules/.bin/tauri"
}

# `tauri build` for one kind of bundle; prints the package's path (copied into $OUT).
desktop() { # KIND (deb, rpm, dmg, msi, nsis) FILE-PATTERN
    local kind=$1 pattern=$2 cli profile=release args=(build --ci --bundles "$1")
    cli=$(tauri_cli)
    [ -z "${HEARTH_PACKAGE_DEBUG:-}" ] || { args+=(--debug); profile=debug; }
    # One macOS app for both architectures.
    [ "$kind" != dmg ] || args+=(--target universal-apple-darwin)
    if [ -n "${HEARTH_WINDOWS_CERT_THUMBPRINT:-}" ]; then
        args+=(--config "{\"bundle\":{\"windows\":{\"certificateThumbprint\":\"$HEARTH_WINDOWS_CERT_THUMBPRINT\",\"digestAlgorithm\":\"sha256\",\"timestampUrl\":\"${HEARTH_WINDOWS_TIMESTAMP_URL:-http://timestamp.digicert.com}\"}}}")
    fi
    # The workflow passes a secret the repository does not have as an empty string: unset it,
    # so that tauri builds unsigned instead of failing on an empty certificate.
    local v
    for v in APPLE_CERTIFICATE APPLE_CERTIFICATE_PASSWORD APPLE_SIGNING_IDENTITY APPLE_ID APPLE_PASSWORD APPLE_TEAM_ID; do
        [ -n "${!v:-}" ] || unset "$v"
    done
    if [ "$profile" = release ]; then
        # The commit goes into `--version` (hearth_server::VERSION).
        export HEARTH_BUILD
        HEARTH_BUILD=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    fi
    if [ -n "${HEARTH_UPDATER_PUBKEY:-}" ]; then
        local endpoint=${HEARTH_UPDATER_ENDPOINT:-https://github.com/${HEARTH_REPOSITORY:-hearth-chat/hearth}/releases/latest/download/latest.json}
        args+=(--config "$(jq -cn --arg k "$HEARTH_UPDATER_PUBKEY" --arg e "$endpoint" \
            '{plugins: {updater: {pubkey: $k, endpoints: [$e], requireSignedVersion: true}}}')")
        # macOS and Windows: the updater's own archives and signatures (Linux packages are signed below).
        if [ -n "${TAURI_SIGNING_PRIVATE_KEY:-}" ] && [ "$kind" != deb ] && [ "$kind" != rpm ]; then
            args+=(--config '{"bundle":{"createUpdaterArtifacts":true}}')
        fi
    fi
    if [ -n "${HEARTH_PACKAGE_VERSION:-}" ]; then
        args+=(--config "$(jq -cn --arg v "$HEARTH_PACKAGE_VERSION" '{version: $v}')")
        export HEARTH_PACKAGE_VERSION
    fi
    local started
    started=$(mktemp)
    # Without a key to sign with, tauri must not look for one.
    (cd src-tauri && if [ -z "${TAURI_SIGNING_PRIVATE_KEY:-}" ]; then unset TAURI_SIGNING_PRIVATE_KEY TAURI_SIGNING_PRIVATE_KEY_PASSWORD; fi &&
        "$cli" "${args[@]}") >&2
    local made
    made=$(find "$TARGET_DIR" -path "*/$profile/bundle/$kind/*" -name "$pattern" -newer "$started" 2>/dev/null | head -n 1)
    rm -f "$started"
    [ -n "$made" ] || die "tauri build made no $pattern under $TARGET_DIR/*/$profile/bundle/$kind"
    local out
    out=$OUT/$(basename "$made")
    if [ "$kind" = deb ]; then
        smaller_deb "$made" "$out"
    else
        cp "$made" "$out"
    fi
    # macOS updates itself from the app bundle as an archive (createUpdaterArtifacts), not the .dmg.
    if [ "$kind" = dmg ] && [ -n "${HEARTH_UPDATER_PUBKEY:-}" ] && [ -n "${TAURI_SIGNING_PRIVATE_KEY:-}" ]; then
        local archive
        archive=$(find "$TARGET_DIR" -path "*/$profile/bundle/macos/*" -name '*.app.tar.gz' 2>/dev/null | head -n 1)
        [ -n "$archive" ] && [ -f "$archive.sig" ] || die "tauri build made no signed .app.tar.gz for the updater"
        cp "$archive" "$OUT/Hearth_$(app_version)_universal.app.tar.gz"
        cp "$archive.sig" "$OUT/Hearth_$(app_version)_universal.app.tar.gz.sig"
        echo "$OUT/Hearth_$(app_version)_universal.app.tar.gz" >&2
    fi
    if [ -n "${TAURI_SIGNING_PRIVATE_KEY:-}" ]; then
        case "$kind" in
            # The signature names the version, which the app requires (requireSignedVersion):
            # an old package cannot be announced as a newer one.
            deb | rpm) "$cli" signer sign --app-version "$(app_version)" "$out" >&2 ;;
            *) [ ! -f "$made.sig" ] || cp "$made.sig" "$out.sig" ;;
        esac
    fi
    echo "$out"
}

# The version the desktop packages carry.
app_version() {
    if [ -n "${HEARTH_PACKAGE_VERSION:-}" ]; then
        echo "$HEARTH_PACKAGE_VERSION"
    else
        cargo metadata --format-version 1 --no-deps | jq -r '.packages[] | select(.name == "hearth-desktop") | .version'
    fi
}

# tauri's .deb, smaller: the binary without its symbol table, and xz instead of gzip (18.6 MB
# becomes about 11). Checksums and Installed-Size are made again for the stripped binary.
smaller_deb() { # FROM TO
    local root
    root=$(mktemp -d)
    dpkg-deb -R "$1" "$root"
    strip --strip-unneeded "$root/usr/bin/hearth-desktop"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
    sed -i "s/^Installed-Size: .*/Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)/" "$root/DEBIAN/control"
    dpkg-deb --root-owner-group -Zxz -z9 --build "$root" "$2" >/dev/null
    rm -rf "$root"
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
    local arch root deb version
    arch=$(dpkg --print-architecture)
    version=${HEARTH_PACKAGE_VERSION:-$(cargo metadata --format-version 1 --no-deps | jq -r '.packages[] | select(.name == "hearth-server") | .version')}
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
License: $(cargo metadata --format-version 1 --no-deps | jq -r '.packages[] | select(.name == "hearth-server") | .license')
COPY
    install -d "$root/DEBIAN"
    install -m 0755 installers/server/postinst installers/server/prerm installers/server/postrm "$root/DEBIAN/"
    echo /etc/hearth/homeserver.toml >"$root/DEBIAN/conffiles"
    local size
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    cat >"$root/DEBIAN/control" <<CONTROL
Package: hearth-server
Version: $version
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
    deb=$OUT/hearth-server_${version}_${arch}.deb
    # Files owned by root in the package whoever builds it.
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
    echo "$deb"
}

case "$1" in
    # The pinned Tauri CLI's path (for `signer generate` and `signer sign`).
    tauri-cli) tauri_cli ;;
    server-deb) server_deb ;;
    deb) desktop deb '*.deb' ;;
    rpm) desktop rpm '*.rpm' ;;
    dmg)
        [ "$(uname -s)" = Darwin ] || die "a .dmg is built on macOS (the release workflow's macos job)"
        desktop dmg '*.dmg' ;;
    msi | nsis)
        case "$(uname -s)" in MINGW* | MSYS* | CYGWIN*) ;; *) die "a .$1 is built on Windows (the release workflow's windows job)" ;; esac
        if [ "$1" = msi ]; then desktop msi '*.msi'; else desktop nsis '*-setup.exe'; fi ;;
    *) die "unknown package $1: server-deb, deb, rpm, dmg, msi or nsis" ;;
esac
