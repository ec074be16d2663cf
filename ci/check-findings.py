#!/usr/bin/env python3
"""What the shipped sweep workloads were written to find, over all their points at once.

Each point is a test of its own (harness/tests/shards.rs) and checks what every point must show;
what only the whole workload can show (that Fiber's +/-1 rule is found unsafe somewhere, that a
both-ends restore both resumes and closes) is checked here, on the merged answer:

    python3 ci/check-findings.py target/sharded-sweep/merged.json

(`dlp-harness merge ... --json FILE` writes it; .ci/run checks the sharded run's.) Exit 1 naming
every finding that is missing."""
import json
import sys
from collections import Counter


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: ci/check-findings.py MERGED.json", file=sys.stderr)
        return 2
    reports = {r["workload"]: r for r in json.load(open(sys.argv[1]))["reports"]}
    problems = []

    def counts(workload: str, policy: str) -> Counter:
        """Point verdicts (each point by its own channel) of a workload under a policy."""
        c = Counter()
        for r in reports.get(workload, {}).get("results", []):
            if r["policy"] != policy:
                continue
            own = [ch["verdict"] for ch in r["channels"] if ch["channel"] == r["point"]["channel"]]
            c[own[0] if own and not r.get("error") else "ERROR"] += 1
        return c

    def expect(workload: str, policy: str, verdict: str, why: str) -> None:
        if workload not in reports:
            problems.append(f"{workload}: no results at all")
        elif counts(workload, policy)[verdict] == 0:
            problems.append(f"{workload} {policy}: no {verdict} point ({why}); counts {dict(counts(workload, policy))}")

    for workload in ["two_node_direct", "three_node_multi_hop", "four_node_route",
                     "concurrent_payments_through_hop", "crossing_updates"]:
        expect(workload, "fiber", "UNSAFE", "Fiber's +/-1 rule resumes revoked backups here")
    expect("two_node_direct", "fiber", "FROZEN", "under fiber a failed audit holds the funds")
    expect("two_node_direct", "strict", "closed", "under strict the peer closes on request")
    # The concurrent workloads (their interleaving pinned): every point judged, none an ERROR.
    for workload in ["concurrent_payments_through_hop", "crossing_updates"]:
        for policy in ["fiber", "strict"]:
            if counts(workload, policy)["ERROR"]:
                problems.append(f"{workload} {policy}: ERROR points {dict(counts(workload, policy))}")
    expect("two_node_direct_both_restored", "strict", "resumed", "a backup at the latest state resumes")
    expect("two_node_direct_both_restored", "strict", "closed", "older ones are closed by the newer end")
    forgotten = sum(
        1
        for r in reports.get("channel_opened_mid_workload", {}).get("results", [])
        for ch in r["channels"]
        if ch["channel"] == "bc" and ch["verdict"] == "forgotten"
    )
    if forgotten == 0:
        problems.append("channel_opened_mid_workload: no point forgets bc (points before its opening must)")
    for p in problems:
        print(f"MISSING FINDING: {p}")
    if not problems:
        print(f"check-findings: every expected finding is there ({len(reports)} workloads)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
