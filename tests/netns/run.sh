#!/usr/bin/env bash
# Runs one command in private network and mount namespaces where only loopback exists: it may
# listen on any port (80 and 443 as a real server would) and nothing it does reaches the
# machine's network. /etc/resolv.conf there names 127.0.0.1 (a test's own DNS server, such as
# pebble-challtestsrv, answers on port 53), and /etc/hosts knows only localhost.
#
#   tests/netns/run.sh COMMAND [ARGS...]     the command gets HEARTH_NETNS=1
#
# The command's exit status is the script's. Used by scripts/test.sh for the built-in HTTPS
# tests that need the real ports (server/tests/acme.rs).
set -euo pipefail

if [ -z "${HEARTH_NETNS:-}" ]; then
    [ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
    missing=()
    command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    if ((${#missing[@]})); then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    # Root gets plain namespaces; anyone else needs a user namespace to be allowed them.
    userns=()
    [ "$(id -u)" -eq 0 ] || userns=(--map-root-user)
    exec unshare --net --mount "${userns[@]}" -- env HEARTH_NETNS=1 bash "$0" "$@"
fi

ip link set lo up
# No proxy is reachable from here.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
work=$(mktemp -d -t hearth-netns.XXXXXX)
trap 'rm -rf "$work"' EXIT
mount --make-rprivate /
printf '127.0.0.1 localhost %s\n::1 localhost ip6-localhost ip6-loopback\n' "$(hostname)" >"$work/hosts"
echo "nameserver 127.0.0.1" >"$work/resolv.conf"
mount --bind "$work/hosts" /etc/hosts
mount --bind "$work/resolv.conf" /etc/resolv.conf
# getaddrinfo must answer from these two files only (not through systemd-resolved's module).
if [ -f /etc/nsswitch.conf ] && ! grep -qE '^hosts:[[:space:]]+files dns[[:space:]]*$' /etc/nsswitch.conf; then
    sed -E 's/^hosts:.*/hosts: files dns/' /etc/nsswitch.conf >"$work/nsswitch.conf"
    mount --bind "$work/nsswitch.conf" /etc/nsswitch.conf
fi
status=0
"$@" || status=$?
exit "$status"
