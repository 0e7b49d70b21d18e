#!/usr/bin/env bash
# make test: nginx (TLS gateway), squid and tinyproxy (egress proxies) for the real-server tests.
# Installed from Debian's packages when missing; if that cannot be done, those tests skip.
# The tests start their own instances on free loopback ports with their own config files, so
# the packages' system services must not be left running or enabled (they would take 80,
# 3128 and 8888 on every address, and keep running after the tests).
set -u

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v squid >/dev/null 2>&1 || [ -x /usr/sbin/squid ] || missing+=(squid)
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || missing+=(tinyproxy)
if [ ${#missing[@]} = 0 ]; then
    exit 0
fi

skip() {
    echo "${missing[*]} could not be installed here ($1): the tests that need them will be skipped" >&2
    exit 0
}

[ "$(id -u)" = 0 ] || skip "installing needs root"
command -v apt-get >/dev/null 2>&1 || skip "no apt-get"

# Block service starts while the packages install: Debian's maintainer scripts start
# services through invoke-rc.d, which asks policy-rc.d first (101 = action forbidden).
# A policy that is already there (e.g. a container's) is kept as it is.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
fi
restore_policy() {
    if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
}
trap restore_policy EXIT

packages=()
for name in "${missing[@]}"; do
    case "$name" in
        # nginx-light is the small build (core modules: ssl, gzip, limit_req, proxy); newer
        # Debian releases dropped it, and there plain nginx is that build.
        nginx) packages+=("$(apt-cache show nginx-light >/dev/null 2>&1 && echo nginx-light || echo nginx)") ;;
        *) packages+=("$name") ;;
    esac
done

echo "installing ${packages[*]} from Debian's packages for the real-server tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt_options=(-o DPkg::Lock::Timeout=300 -y -qq)
if ! apt-get "${apt_options[@]}" install "${packages[@]}" >/dev/null 2>&1; then
    # The package lists may be missing or stale (a fresh machine): refresh once and retry.
    apt-get update -qq >/dev/null 2>&1 || skip "apt-get update failed"
    apt-get "${apt_options[@]}" install "${packages[@]}" >/dev/null 2>&1 || skip "apt-get install failed"
fi

# Belt and braces, for a machine whose policy allowed the start: stop the services and keep
# them from starting at boot. Each step may fail where there is no init system; that is fine.
for service in nginx squid tinyproxy; do
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        timeout 30 systemctl disable --now "$service" >/dev/null 2>&1
    else
        [ -x "/etc/init.d/$service" ] && timeout 30 "/etc/init.d/$service" stop >/dev/null 2>&1
        command -v update-rc.d >/dev/null 2>&1 && update-rc.d "$service" disable >/dev/null 2>&1
    fi
done
exit 0
