#!/usr/bin/env bash
# make test: the PostgreSQL server binaries the sink tests start a throwaway cluster with.
# Installed from Debian's packages when missing; if that cannot be done, those tests skip.
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing PostgreSQL from Debian's packages for the sink tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; then
        exit 0
    fi
fi
echo "PostgreSQL could not be installed here: the PostgreSQL sink tests will be skipped" >&2
exit 0
