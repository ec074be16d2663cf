#!/usr/bin/env bash
# The network-size benchmark: each star of benches/star/ (10, 25, 50, 100 nodes: a hub and its
# leaves, a payment on every channel, the hub backed up, restored and audited by every leaf) run
# once per backend in process with `dlp-harness run`, timed, as a Markdown table:
#
#     benches/star/run.sh                  # every star, both backends
#     benches/star/run.sh 10 50            # some sizes
#     DRIVER=process benches/star/run.sh   # dlp-node processes instead
#     BACKENDS=rocksdb benches/star/run.sh # one backend
#
# Wall time of the whole run (setup with every channel opened and its gossip settled, then the
# steps), and the setup's and the steps' shares from the run's run.json. Results vary by a second
# or so at 50 nodes from run to run on a 2-core machine: take the table as a shape, not a gate.
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(10 25 50 100)
driver="${DRIVER:-in-process}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --locked -q --workspace --bin dlp-harness >&2
harness="$target/debug/dlp-harness"
runs="$(mktemp -d)"
trap 'rm -rf "$runs"' EXIT

echo "| nodes | channels | backend | driver | run | setup | steps |"
echo "|---:|---:|---|---|---:|---:|---:|"
for n in "${sizes[@]}"; do
    file="benches/star/star_$n.toml"
    [ -f "$file" ] || { echo "no $file (python3 benches/star/generate.py $n)" >&2; exit 2; }
    for backend in ${BACKENDS:-rocksdb sqlite}; do
        rm -rf "$runs"/*
        DLP_HARNESS_RUN_DIR="$runs" "$harness" run "$file" --backend "$backend" --driver "$driver" \
            --seed 1 --keep > "$runs.out" 2>&1 || { cat "$runs.out" >&2; exit 1; }
        python3 - "$runs" "$n" "$backend" "$driver" <<'PY'
import glob, json, sys
runs, n, backend, driver = sys.argv[1:]
run = json.load(open(glob.glob(f"{runs}/*/run.json")[0]))
first = run["steps"][0]["started_ms"] if run["steps"] else run["ended_ms"]
total = (run["ended_ms"] - run["started_ms"]) / 1000
setup = (first - run["started_ms"]) / 1000
print(f"| {n} | {int(n) - 1} | {backend} | {driver} | {total:.1f} s | {setup:.1f} s | {total - setup:.1f} s |")
PY
    done
done
rm -f "$runs.out"
