#!/usr/bin/env bash
# The desktop app's packages. The .deb end to end on this machine: built by `installers/build.sh deb`
# (tauri build, a debug build to save time), checked for what a desktop package must carry
# (the runtime libraries it needs, a menu entry, icons at every size, AppStream metadata),
# installed with apt, the installed app started from /usr/bin under Xvfb (the desktop suite's
# test, which photographs the setup wizard in its window and quits it from the tray), then
# removed and purged (the program goes; the user's data is never touched, and purge says where
# it is). The .rpm, which cannot be installed here, is built and queried with rpm.
#
#   tests/packaging/desktop.sh XVFB_TEST_BINARY   (the under_xvfb test binary)
#
# Needs root (or sudo). Refuses to run where the package is already installed.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
fail() { printf 'desktop: FAILED: %s\n' "$*" >&2; exit 1; }
step() { printf '\n--> %s\n' "$*" >&2; }
[ $# -eq 1 ] || { echo "usage: $0 XVFB_TEST_BINARY" >&2; exit 2; }
xvfb_test=$(realpath "$1")
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
if dpkg -s hearth >/dev/null 2>&1; then
    fail "the desktop package (hearth) is already installed here: this test installs and purges it"
fi
keys=$(mktemp -d)
trap '$sudo dpkg --purge hearth >/dev/null 2>&1 || true; rm -rf "$keys"' EXIT

# An update key made for this run (the project's own key never leaves the release workflow's
# secrets): its public half is built into the packages, its private half signs the newer one.
cli=$(installers/build.sh tauri-cli | tail -n 1)
"$cli" signer generate --ci -p "" -w "$keys/update.key" >/dev/null
export HEARTH_UPDATER_PUBKEY
HEARTH_UPDATER_PUBKEY=$(cat "$keys/update.key.pub")
# Not asked: each test names its own manifest (update_manifest_url).
export HEARTH_UPDATER_ENDPOINT=https://updates.invalid/latest.json

step "building the package (tauri build --bundles deb --debug)"
deb=$(HEARTH_PACKAGE_DEBUG=1 installers/build.sh deb | tail -n 1)
[ -f "$deb" ] || fail "installers/build.sh printed no package path"
contents=$(dpkg-deb -c "$deb")
# tauri's bundler lists paths without the leading ./ that dpkg-deb's own packages have.
contents=$(sed 's| \(usr/\)| ./\1|' <<<"$contents")
for f in ./usr/bin/hearth-desktop ./usr/share/applications/Hearth.desktop \
    ./usr/share/metainfo/org.hearth.desktop.metainfo.xml; do
    grep -q " $f\$" <<<"$contents" || fail "$f is not in the package"
done
for size in 32x32 64x64 128x128 256x256 512x512; do
    grep -q " ./usr/share/icons/hicolor/${size}/apps/hearth-desktop.png\$" <<<"$contents" ||
        fail "no ${size} icon in the package: $(grep icons <<<"$contents")"
done
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libwebkit2gtk-4.1-0 libgtk-3-0 libayatana-appindicator3-1; do
    grep -q "$lib" <<<"$depends" || fail "Depends ($depends) does not name $lib"
done
printf 'package: %s (%s bytes, installed %s KiB), Depends: %s\n' "$deb" "$(stat -c %s "$deb")" \
    "$(dpkg-deb -f "$deb" Installed-Size)" "$depends" >&2

step "installing it with apt"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null
[ -x /usr/bin/hearth-desktop ] || fail "/usr/bin/hearth-desktop is not installed"
grep -q "^Exec=hearth-desktop" /usr/share/applications/Hearth.desktop || fail "the menu entry does not start hearth-desktop"

step "the installed app under Xvfb: the wizard in its window, serving, quit from the tray"
HEARTH_DESKTOP_BIN=/usr/bin/hearth-desktop HEARTH_DESKTOP_SHOT=installed "$xvfb_test" --ignored --exact \
    the_app_shows_the_dashboard_keeps_serving_from_the_tray_and_quits_cleanly

step "the .rpm (tauri build --bundles rpm --debug), queried with rpm"
rpm=$(HEARTH_PACKAGE_DEBUG=1 installers/build.sh rpm | tail -n 1)
[ -f "$rpm" ] || fail "installers/build.sh printed no .rpm path"
files=$(rpm -qpl "$rpm" 2>/dev/null)
for f in /usr/bin/hearth-desktop /usr/share/applications/Hearth.desktop \
    /usr/share/metainfo/org.hearth.desktop.metainfo.xml /usr/share/icons/hicolor/256x256/apps/hearth-desktop.png; do
    grep -qx "$f" <<<"$files" || fail "$f is not in the .rpm"
done
requires=$(rpm -qpR "$rpm" 2>/dev/null)
grep -qi webkit2gtk <<<"$requires" || fail "the .rpm does not require WebKitGTK: $requires"
printf 'rpm: %s (%s bytes)\n' "$rpm" "$(stat -c %s "$rpm")" >&2

step "a newer version, signed with the update key, and its manifest (installers/manifest.sh)"
current=$(dpkg-deb -f "$deb" Version)
newer=${current%.*}.$((${current##*.} + 1))
new_deb=$(HEARTH_PACKAGE_DEBUG=1 HEARTH_PACKAGE_VERSION=$newer TAURI_SIGNING_PRIVATE_KEY=$(cat "$keys/update.key") \
    TAURI_SIGNING_PRIVATE_KEY_PASSWORD="" installers/build.sh deb | tail -n 1)
[ -f "$new_deb.sig" ] || fail "no signature beside $new_deb"
[ "$(dpkg-deb -f "$new_deb" Version)" = "$newer" ] || fail "$new_deb is not version $newer"
updates=$keys/served
mkdir -p "$updates/tampered"
cp "$new_deb" "$new_deb.sig" "$updates/"
printf 'What changed in %s: the updater test'"'"'s release notes.\n' "$newer" >"$keys/notes"
installers/manifest.sh "$newer" "$keys/notes" http://update-server.invalid "$updates/$(basename "$new_deb")" >"$updates/latest.json"
# The same signature over a package with a few bytes changed.
cp "$new_deb" "$new_deb.sig" "$updates/tampered/"
tampered=$updates/tampered/$(basename "$new_deb")
printf 'tampered' | dd of="$tampered" bs=1 seek=$(($(stat -c %s "$tampered") / 2)) conv=notrunc status=none
cmp -s "$tampered" "$new_deb" && fail "the tampered copy is the same"
installers/manifest.sh "$newer" "$keys/notes" http://update-server.invalid/tampered "$tampered" >"$updates/tampered.json"

step "the installed app updates itself: the tampered package refused, the signed one installed, the data kept"
HEARTH_DESKTOP_BIN=/usr/bin/hearth-desktop HEARTH_UPDATE_FILES=$updates HEARTH_UPDATE_VERSION=$newer \
    "$xvfb_test" --ignored --exact the_installed_app_updates_itself_from_a_signed_manifest_and_keeps_its_data

step "removing and purging it"
$sudo dpkg -r hearth >/dev/null
[ ! -e /usr/bin/hearth-desktop ] || fail "/usr/bin/hearth-desktop is still there after removal"
said=$($sudo dpkg --purge hearth 2>&1)
grep -q "data stays in their home folder" <<<"$said" || fail "purge did not say where the data is: $said"
printf '\ndesktop: passed\n' >&2
