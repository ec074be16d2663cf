#!/usr/bin/env bash
# ci/sharded-sweep.sh N: the heavy work (harness/tests/shards.rs: one test per sweep point and
# per explorer seed, configured by shards.toml) as a CI matrix of N runners runs it, on this
# machine, one partition after the other:
#   1. the build job:   `cargo nextest archive` of the shards binary, once;
#   2. N runner jobs:   each unpacks the archive into a directory of its own and runs
#                       `--partition hash:k/N`, its result files into a directory of its own;
#   3. the merge job:   `dlp-harness merge` of the N directories (tables, JSON, HTML);
# then exits 0 only when the merged verdicts are exactly those of one unpartitioned run of the
# same tests. The unpartitioned run is made here from the same archive, unless
# DLP_UNPARTITIONED_RESULTS names the result directory of one already made (CI's main test
# step writes one: DLP_SHARD_RESULTS in .ci/run).
#
# Output in $DLP_SHARDED_OUT (default target/sharded-sweep): merged.json, merged.html,
# merged.txt (what the merge printed), and each run's nextest output (partition-k.log,
# whole.log).
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-}"
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: ci/sharded-sweep.sh N   (N >= 1 partitions)" >&2
    exit 2
fi
target="${CARGO_TARGET_DIR:-$PWD/target}"
out="${DLP_SHARDED_OUT:-$PWD/target/sharded-sweep}"
rm -rf "$out"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step() { echo "== sharded-sweep: $*"; }
seconds() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(seconds)"; }

# The same unification of features as every other build here: the whole workspace, only the
# shards test target.
step "archive (the build job)"
t0="$(seconds)"
cargo nextest archive --workspace --locked --test shards --archive-file "$work/shards.tar.zst"
cargo build --locked -q --workspace --bin dlp-harness
harness="$target/debug/dlp-harness"
echo "archive: $(du -h "$work/shards.tar.zst" | cut -f1) in $(elapsed "$t0") s"

run_from_archive() { # <results dir> <extract dir> [nextest args...]
    local results="$1" extract="$2"
    shift 2
    mkdir -p "$extract"
    # Exit 100 is "some test failed": the merge says which, and both runs must agree on it.
    local status=0
    DLP_SHARD_RESULTS="$results" cargo nextest run --archive-file "$work/shards.tar.zst" \
        --workspace-remap "$PWD" --extract-to "$extract" --no-fail-fast "$@" || status=$?
    if [ "$status" -ne 0 ] && [ "$status" -ne 100 ]; then
        echo "sharded-sweep: nextest exited $status (not a test failure)"
        return 1
    fi
}

dirs=()
for k in $(seq 1 "$n"); do
    step "partition hash:$k/$n (runner $k)"
    t0="$(seconds)"
    run_from_archive "$work/shard-$k" "$work/unpacked-$k" --partition "hash:$k/$n" \
        > "$out/partition-$k.log" 2>&1 || { cat "$out/partition-$k.log"; exit 1; }
    tail -n 3 "$out/partition-$k.log"
    echo "partition $k/$n: $(find "$work/shard-$k" -name '*.json' 2>/dev/null | wc -l) results in $(elapsed "$t0") s"
    dirs+=("$work/shard-$k")
done

whole="${DLP_UNPARTITIONED_RESULTS:-}"
if [ -z "$whole" ]; then
    step "one unpartitioned run of the same archive"
    t0="$(seconds)"
    whole="$work/whole"
    run_from_archive "$whole" "$work/unpacked-whole" > "$out/whole.log" 2>&1 \
        || { cat "$out/whole.log"; exit 1; }
    tail -n 1 "$out/whole.log"
    echo "unpartitioned: $(elapsed "$t0") s"
else
    step "the unpartitioned run's results: $whole"
fi

# The merge job's command, with the comparison: `--same-as` merges the unpartitioned results
# too and exits 1 unless every point and seed is judged the same (a point's own channel always;
# another channel where its backup holds the same numbers in both runs, as the sweep compares
# its backends: how a hub's two channels interleave varies from run to run).
step "merge of the $n partitions (the merge job), compared with the unpartitioned run"
status=0
"$harness" merge "${dirs[@]}" --json "$out/merged.json" --html "$out/merged.html" \
    --same-as "$whole" > "$out/merged.txt" || status=$?
grep -E "^(SAME|merged |explorer)" "$out/merged.txt" || true
python3 -c 'import sys; t=open(sys.argv[1]).read(); i=t.find("DIFFERENT"); print(t[i:][:6000] if i >= 0 else "", end="")' "$out/merged.txt"
if ! grep -q "^SAME: " "$out/merged.txt"; then
    echo "sharded-sweep: the merged partitions are not the unpartitioned run's verdicts" >&2
    exit 1
fi
# The backends must agree at every point of every workload (the sweep's own rule).
python3 - "$out/merged.json" <<'PY'
import json, sys
reports = json.load(open(sys.argv[1]))["reports"]
bad = [(r["workload"], d) for r in reports for d in r["disagreements"]]
for workload, d in bad:
    print(f"BACKENDS DISAGREE in {workload}: {d}")
sys.exit(1 if bad else 0)
PY
# Exit 1 of the merge itself is the sweep's own verdict (fiber's UNSAFE points, the known
# finding): not this script's concern, which is that sharding changes nothing.
echo "merged report: $out/merged.html (merge exit status $status)"
