#!/usr/bin/env bash
# make test: a Java runtime (Debian's default-jre-headless) and pyspark (the `spark` extra) in
# .venv, for the test that runs docs/schema.md's Spark recipe. Installed when missing; if that
# cannot be done, that test skips and says why.
set -u
PY=${PY:-.venv/bin/python}
if ! command -v java >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing default-jre-headless from Debian's packages for the Spark recipe test" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null
    fi
fi
command -v java >/dev/null 2>&1 || { echo "no Java here: the Spark recipe test will be skipped" >&2; exit 0; }
"$PY" -c "import pyspark" 2>/dev/null && exit 0
echo "installing pyspark into .venv for the Spark recipe test" >&2
"$PY" -m pip install --quiet -e '.[spark]' \
    || echo "pyspark could not be installed: the Spark recipe test will be skipped" >&2
exit 0
