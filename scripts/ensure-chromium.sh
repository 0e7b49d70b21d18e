#!/usr/bin/env bash
# make test: headless Chromium (Debian's package) to draw report.html, and a Korean font
# (fonts-nanum) so that its Korean labels render as letters. Installed when missing; if that
# cannot be done, the report's browser tests skip and say why.
set -u
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fc-list :lang=ko 2>/dev/null | grep -q . || missing+=(fonts-nanum)
[ ${#missing[@]} = 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} from Debian's packages for the report tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        exit 0
    fi
fi
echo "${missing[*]} could not be installed here: the report's browser tests will be skipped" >&2
exit 0
