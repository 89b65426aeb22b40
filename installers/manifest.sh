#!/usr/bin/env bash
# Writes the update manifest (latest.json) that the desktop app's updater reads, on stdout:
# the version, its release notes, and for each platform the package's address and signature
# (PACKAGE.sig beside each package, written by installers/build.sh with the update key).
#
#   installers/manifest.sh VERSION NOTES-FILE BASE-URL PACKAGE...
#
# BASE-URL is where the packages are published (a GitHub release's download address); each
# package's file name is appended to it. The release workflow publishes the result as the
# release's latest.json; the updater's test serves it from a loopback server.
set -euo pipefail
die() { printf 'manifest: %s\n' "$*" >&2; exit 2; }
[ $# -ge 4 ] || die "usage: $0 VERSION NOTES-FILE BASE-URL PACKAGE..."
version=$1 notes=$2 base=${3%/}
shift 3
platforms='{}'
add() { # KEY FILE
    local sig=$2.sig
    [ -f "$sig" ] || die "$sig is missing: sign the package (TAURI_SIGNING_PRIVATE_KEY with installers/build.sh)"
    platforms=$(jq -c --arg k "$1" --arg u "$base/$(basename "$2")" --rawfile s "$sig" \
        '. + {($k): {url: $u, signature: ($s | rtrimstr("\n"))}}' <<<"$platforms")
}
for package in "$@"; do
    name=$(basename "$package")
    # The updater looks for OS-ARCH-BUNDLE, then OS-ARCH.
    case "$name" in
        hearth-server_*) die "$name: the headless server is updated by its package manager, not by the app's updater" ;;
        *_amd64.deb) add linux-x86_64-deb "$package" ;;
        *_arm64.deb) add linux-aarch64-deb "$package" ;;
        *.x86_64.rpm) add linux-x86_64-rpm "$package" ;;
        *.aarch64.rpm) add linux-aarch64-rpm "$package" ;;
        *universal*.app.tar.gz)
            add darwin-x86_64-app "$package"
            add darwin-aarch64-app "$package" ;;
        *.msi) add windows-x86_64-msi "$package" ;;
        *-setup.exe) add windows-x86_64-nsis "$package" ;;
        *) die "$name: not a package the updater installs" ;;
    esac
done
[ "$platforms" != '{}' ] || die "no packages"
jq -n --arg v "$version" --rawfile n "$notes" --arg d "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson p "$platforms" \
    '{version: $v, notes: ($n | rtrimstr("\n")), pub_date: $d, platforms: $p}'
