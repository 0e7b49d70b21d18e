#!/usr/bin/env bash
# make demo: start the sandbox on a free port, reconcile data/customers_sample.csv, stop it.
set -euo pipefail
PY=${PY:-.venv/bin/python}
state=$(mktemp -d)
trap 'kill "$(cat "$state/pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$state"' EXIT

export SANDBOX_API_KEY=demo-key KOSCOM_API_KEY=demo-key
"$PY" -m jobs sandbox --port 0 --ready-file "$state/url" --fault http503:0.03 --fault html:0.02 \
    >/dev/null 2>&1 &
echo $! > "$state/pid"
for _ in $(seq 100); do [ -s "$state/url" ] && break; sleep 0.1; done
[ -s "$state/url" ] || { echo "sandbox did not start" >&2; exit 1; }
echo "sandbox: $(cat "$state/url") (3% 503s and 2% HTML error pages injected)"

set +e
"$PY" -m jobs run data/customers_sample.csv --base-url "$(cat "$state/url")" \
    --com-id F0995 --srv-id 297 --rate 100 --concurrency 16 --out out/demo --fresh \
    --log-format text
code=$?
set -e
echo "exit code $code (0 = done; see docs/operations.md for the others)"
[ "$code" -le 1 ] || exit "$code"
"$PY" -m jobs report out/demo
echo "open out/demo/report.html in a browser (it needs no network)"
