#!/usr/bin/env bash
# Run a scenario that fails on purpose (fixtures/failing_report.toml) with --junit and --json,
# then open the report.html its kept run directory holds in headless Chromium (Debian's
# package, installed by ci/install-deps.sh --report) and check the DOM the browser built: lanes,
# arrows, the highlighted failing step, the sections (ci/check-report-dom.py). Also checks the
# JUnit and JSON name the failure and the report. With REPORT_SHOTS=DIR, also saves a
# screenshot of the report there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
    echo "ci/check-report: chromium is missing (ci/install-deps.sh --report installs it)" >&2
    exit 1
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
export DLP_HARNESS_RUN_DIR="$out/runs"

set +e
cargo run --locked -q -p dlp-harness -- run fixtures/failing_report.toml --seed 7 \
    --junit "$out/junit.xml" --json "$out/results.json" >"$out/stdout" 2>"$out/stderr"
code=$?
set -e
if [ "$code" != 1 ]; then
    echo "ci/check-report: expected exit 1 (a scenario failed), got $code" >&2
    cat "$out/stderr" >&2
    exit 1
fi
report="$(python3 - "$out/results.json" "$out/junit.xml" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["failed"] == 1 and len(r["results"]) == 1, r
res = r["results"][0]
assert res["outcome"] == "failed" and res["kind"] == "step", res
junit = open(sys.argv[2]).read()
assert junit.count("<testcase ") == 1 and "<failure " in junit, junit
assert "report: " + res["report"] in junit, junit
print(res["report"])
PY
)"
# Chromium as root needs --no-sandbox; --dump-dom prints the DOM once the page has loaded
# (after its script ran).
chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$report" \
    >"$out/dom.html" 2>"$out/chromium.log" || {
    cat "$out/chromium.log" >&2
    exit 1
}
python3 ci/check-report-dom.py "$out/dom.html" 3
if [ -n "${REPORT_SHOTS:-}" ]; then
    mkdir -p "$REPORT_SHOTS"
    cp "$report" "$REPORT_SHOTS/failing_report.html"
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1500,1100 \
        --screenshot="$REPORT_SHOTS/failing_report.png" "file://$report" 2>/dev/null
    echo "ci/check-report: screenshot $REPORT_SHOTS/failing_report.png"
fi
