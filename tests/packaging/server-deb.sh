#!/usr/bin/env bash
# The headless server package, end to end on this machine: built by installers/build.sh,
# installed with apt, its systemd unit checked by systemd-analyze, the installed binary serving
# with the packaged configuration as the hearth user (in a private network namespace, so its
# ports are its own), the documented admin commands, then removed (configuration and data kept)
# and purged (configuration, logs and user gone, data kept and said so).
#
#   tests/packaging/server-deb.sh HEARTH_BINARY   (scripts/test.sh passes its debug build)
#
# Needs root (or sudo): it installs a package. Refuses to run where Hearth's package or its
# folders already exist, and leaves none behind.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
fail() { printf 'server-deb: FAILED: %s\n' "$*" >&2; exit 1; }
step() { printf '\n--> %s\n' "$*" >&2; }
[ $# -eq 1 ] || { echo "usage: $0 HEARTH_BINARY" >&2; exit 2; }
binary=$(realpath "$1")
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

if dpkg -s hearth-server >/dev/null 2>&1 || [ -e /var/lib/hearth ] || [ -e /etc/hearth ]; then
    fail "hearth-server or its folders are already on this machine: this test installs and purges the package, so it does not run here"
fi
cleanup() {
    $sudo dpkg --purge hearth-server >/dev/null 2>&1 || true
    $sudo rm -rf /var/lib/hearth /var/log/hearth /etc/hearth
}
trap cleanup EXIT

step "building the package"
deb=$(HEARTH_PACKAGE_BINARY=$binary installers/build.sh server-deb | tail -n 1)
[ -f "$deb" ] || fail "installers/build.sh printed no package path"
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/hearth ./lib/systemd/system/hearth.service ./etc/hearth/homeserver.toml \
    ./usr/share/doc/hearth-server/copyright; do
    grep -q " $f\$" <<<"$contents" || fail "$f is not in the package"
done
[ "$(dpkg-deb -f "$deb" Package)" = hearth-server ] || fail "the package is not named hearth-server"
grep -qx /etc/hearth/homeserver.toml < <(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles) ||
    fail "the configuration is not a conffile (an upgrade would overwrite the admin's changes)"
printf 'package: %s (%s bytes)\n' "$deb" "$(stat -c %s "$deb")" >&2

step "installing it with apt"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null
[ -x /usr/bin/hearth ] || fail "/usr/bin/hearth is not installed"
getent passwd hearth >/dev/null || fail "no hearth system user"
[ "$(stat -c %U:%G /var/lib/hearth)" = hearth:hearth ] || fail "/var/lib/hearth is not hearth's"
[ "$(stat -c %a:%U:%G /etc/hearth/homeserver.toml)" = 640:root:hearth ] ||
    fail "the configuration is $(stat -c %a:%U:%G /etc/hearth/homeserver.toml), not 640 root:hearth"

step "systemd-analyze verify"
out=$(systemd-analyze verify /lib/systemd/system/hearth.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"

step "the installed binary serves with the packaged configuration, as the hearth user"
version=$(/usr/bin/hearth --version)
$sudo bash tests/netns/run.sh bash -c '
    set -euo pipefail
    fail() { printf "server-deb: FAILED: %s\n" "$*" >&2; exit 1; }
    setpriv --reuid=hearth --regid=hearth --init-groups -- /usr/bin/hearth serve --config /etc/hearth/homeserver.toml >/tmp/hearth-deb.log 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        curl -fsS -o /dev/null http://127.0.0.1:8008/_matrix/client/versions 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || { cat /tmp/hearth-deb.log >&2; fail "hearth exited"; }
        sleep 0.1
    done
    answered=$(curl -fsS http://127.0.0.1:8008/_synapse/admin/v1/server_version) || fail "the installed server does not answer"
    [ "$answered" = "{\"server_version\":\"${1#hearth }\"}" ] || fail "server_version says $answered, hearth --version says $1"
    # The documented admin commands, as the hearth user, on the running server.
    setpriv --reuid=hearth --regid=hearth --init-groups -- hearth register-user --config /etc/hearth/homeserver.toml -u mum -p a-long-password --admin >/dev/null
    login=$(curl -fsS -X POST -H "Content-Type: application/json" \
        -d "{\"type\":\"m.login.password\",\"identifier\":{\"type\":\"m.id.user\",\"user\":\"mum\"},\"password\":\"a-long-password\"}" \
        http://127.0.0.1:8008/_matrix/client/v3/login) || fail "mum cannot log in"
    grep -q access_token <<<"$login" || fail "no access token for mum: $login"
    link=$(setpriv --reuid=hearth --regid=hearth --init-groups -- hearth admin-url --config /etc/hearth/homeserver.toml)
    grep -q "^http://127.0.0.1:8009/" <<<"$link" || fail "admin-url printed: $link"
    curl -fsS -o /dev/null "http://127.0.0.1:8009/_hearth/" || fail "the setup page does not answer"
    kill -TERM "$pid"
    wait "$pid" || fail "hearth did not stop cleanly on SIGTERM"
    rm -f /tmp/hearth-deb.log
' server-deb "$version"
ls /var/lib/hearth/hearth.db >/dev/null || fail "no database in /var/lib/hearth"
ls /var/log/hearth/* >/dev/null 2>&1 || fail "no log file in /var/log/hearth"

step "removing it keeps the configuration and the data"
$sudo dpkg -r hearth-server >/dev/null
[ ! -e /usr/bin/hearth ] || fail "/usr/bin/hearth is still there after removal"
[ -f /etc/hearth/homeserver.toml ] || fail "removal deleted the configuration"
[ -f /var/lib/hearth/hearth.db ] || fail "removal deleted the database"

step "purging it removes the configuration, logs and user, keeps the data and says so"
said=$($sudo dpkg --purge hearth-server 2>&1)
grep -q "Kept /var/lib/hearth" <<<"$said" || fail "purge did not say where the data is: $said"
[ ! -e /etc/hearth ] || fail "/etc/hearth is still there after purge"
[ ! -e /var/log/hearth ] || fail "/var/log/hearth is still there after purge"
! getent passwd hearth >/dev/null || fail "the hearth user is still there after purge"
[ -f /var/lib/hearth/hearth.db ] || fail "purge deleted the database"
printf '\nserver-deb: passed\n' >&2
