//! The sweep's human output: one table per backend x policy (a row per backup point), and a
//! summary line each. The JSON report is `SweepReport` serialized.

use std::fmt::Write as _;

use super::{PointResult, Resolution, SweepReport, Verdict};

fn numbers(n: Option<(u64, u64)>) -> String {
    n.map_or_else(|| "-".to_string(), |(l, r)| format!("{l}/{r}"))
}

/// One row's cells per channel of the node (the point's own channel first):
/// `channel backup peer expected verdict`.
pub(super) fn row(r: &PointResult) -> Vec<[String; 5]> {
    if let Some(error) = &r.error {
        let first = error.lines().next().unwrap_or_default().to_string();
        return vec![[
            r.point.channel.clone(),
            numbers(r.point.numbers.get(&r.point.channel).copied()),
            "-".into(),
            "-".into(),
            format!("ERROR: {first}"),
        ]];
    }
    // The point's own channel first: its verdict is the point's.
    let mut channels: Vec<_> = r.channels.iter().collect();
    channels.sort_by_key(|c| c.channel != r.point.channel);
    channels
        .into_iter()
        .map(|c| {
            let mut verdict = c.verdict.to_string();
            if let (Some(by), Some(unlock)) = (&c.closed_by, c.unlock) {
                let _ = write!(
                    verdict,
                    " by {by} ({} blocks, {} ms)",
                    unlock.blocks, unlock.ms
                );
            } else if let (Verdict::Resumed, Some(unlock)) = (c.verdict, c.unlock) {
                let _ = write!(verdict, " ({} ms)", unlock.ms);
            }
            if !c.detail.is_empty() && (c.verdict.is_failure() || c.verdict == Verdict::Frozen) {
                verdict.push_str(": ");
                verdict.push_str(c.detail.lines().next().unwrap_or_default());
            }
            [
                c.channel.clone(),
                numbers(Some(c.backup)),
                numbers(c.peer_numbers),
                c.expected.to_string(),
                verdict,
            ]
        })
        .collect()
}

/// The tables, one per backend x policy present in the report.
pub fn render_tables(report: &SweepReport) -> String {
    let mut out = String::new();
    for (backend, policy) in combos(report) {
        let rows: Vec<&PointResult> = report
            .results
            .iter()
            .filter(|r| r.backend == backend && r.policy == policy)
            .collect();
        let _ = writeln!(
            out,
            "\n{} @ {backend}, policy {policy}: node {}, {} backup points (seed {})",
            report.workload,
            report.node,
            rows.len(),
            report.seed
        );
        let _ = writeln!(
            out,
            "  {:>3}  {:<36} {:<8} {:>9} {:>9}  {:<26} outcome",
            "#", "step", "channel", "backup", "peer", "expected"
        );
        for r in rows {
            for (i, cells) in row(r).into_iter().enumerate() {
                let (index, label) = if i == 0 {
                    (
                        r.point.index.to_string(),
                        format!("{}#{}", r.point.step, r.point.nth),
                    )
                } else {
                    (String::new(), String::new())
                };
                let _ = writeln!(
                    out,
                    "  {index:>3}  {label:<36} {:<8} {:>9} {:>9}  {:<26} {}",
                    cells[0], cells[1], cells[2], cells[3], cells[4]
                );
            }
        }
    }
    out
}

/// What `dlp-harness sweep` prints after its points (and `dlp-harness merge` per workload):
/// the tables, the summary lines, the time-to-unlock table, any disagreement of the backends.
pub fn render_text(report: &SweepReport) -> String {
    let mut out = render_tables(report);
    out.push('\n');
    for line in summary_lines(report) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "\ntime to funds unlocked (from the reconnection; closed: blocks until the last output was in a wallet):"
    );
    let _ = writeln!(out, "{UNLOCK_HEADER}");
    for row in unlock_rows(report) {
        let _ = writeln!(out, "{row}");
    }
    for d in &report.disagreements {
        let _ = writeln!(out, "BACKENDS DISAGREE: {d}");
    }
    out
}

pub(super) fn combos(report: &SweepReport) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in &report.results {
        let key = (r.backend.clone(), r.policy.clone());
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// `w rocksdb/fiber: 38 points: 30 resumed, 0 held, 0 closed, 0 FROZEN, 8 UNSAFE, 0 LOST,
/// 0 MISMATCH` (forgotten and ERROR only when there are any).
pub fn summary_lines(report: &SweepReport) -> Vec<String> {
    combos(report)
        .into_iter()
        .map(|(backend, policy)| {
            let counts = report.counts(&backend, &policy);
            let total: usize = counts.values().sum();
            let parts: Vec<String> = Verdict::ALL
                .iter()
                // Verdicts only some workloads can have are listed when they occur.
                .filter(|v| {
                    !matches!(v, Verdict::Error | Verdict::Forgotten) || counts.contains_key(v)
                })
                .map(|v| format!("{} {v}", counts.get(v).copied().unwrap_or(0)))
                .collect();
            format!(
                "{} {backend}/{policy}: {total} points: {}",
                report.workload,
                parts.join(", ")
            )
        })
        .collect()
}

/// The header of [`unlock_rows`]' table.
pub const UNLOCK_HEADER: &str = "| workload | backend | policy | points | resumed | closed | FROZEN | \
UNSAFE | LOST | median blocks | worst blocks | median ms | worst ms |\n\
|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

/// The time to funds unlocked, one Markdown row per backend x policy: counts of the points'
/// verdicts, then the median and worst over the points the nodes resolved (resumed or closed
/// after the restore; a channel closed before the restore locks nothing) and the FROZEN ones,
/// which never unlock: they count as `never`, so a policy that freezes most points shows a
/// median of `never`, not the median of its few lucky points.
pub fn unlock_rows(report: &SweepReport) -> Vec<String> {
    combos(report)
        .into_iter()
        .map(|(backend, policy)| {
            let results: Vec<&PointResult> = report
                .results
                .iter()
                .filter(|r| r.backend == backend && r.policy == policy)
                .collect();
            let count = |v: Verdict| results.iter().filter(|r| r.verdict() == v).count();
            let unlocks: Vec<_> = results
                .iter()
                .filter_map(|r| {
                    r.channels
                        .iter()
                        .find(|c| c.channel == r.point.channel)
                        .and_then(|c| c.unlock)
                })
                .collect();
            let frozen = count(Verdict::Frozen);
            // Never unlocked: every point whose own channel the nodes left frozen, whatever its
            // verdict (a MISMATCH where the oracle expected a close is frozen too).
            let never = results
                .iter()
                .filter(|r| {
                    r.channels
                        .iter()
                        .find(|c| c.channel == r.point.channel)
                        .is_some_and(|c| c.resolution == Resolution::Frozen)
                })
                .count();
            // A FROZEN point never unlocks: it counts, as "never", in the median and the worst.
            let stat = |values: Vec<u64>| -> (String, String) {
                let mut values: Vec<u64> = values
                    .into_iter()
                    .chain(std::iter::repeat_n(u64::MAX, never))
                    .collect();
                values.sort_unstable();
                let show = |v: &u64| match *v {
                    u64::MAX => "never".to_string(),
                    v => v.to_string(),
                };
                let median = values
                    .get(values.len().saturating_sub(1) / 2)
                    .map_or_else(|| "-".to_string(), show);
                let worst = values.last().map_or_else(|| "-".to_string(), show);
                (median, worst)
            };
            let (median_blocks, worst_blocks) = stat(unlocks.iter().map(|u| u.blocks).collect());
            let (median_ms, worst_ms) = stat(unlocks.iter().map(|u| u.ms).collect());
            format!(
                "| `{}` | {backend} | {policy} | {} | {} | {} | {frozen} | {} | {} | {median_blocks} | \
                 {worst_blocks} | {median_ms} | {worst_ms} |",
                report.workload,
                results.len(),
                count(Verdict::Resumed),
                count(Verdict::Closed) + count(Verdict::Forgotten),
                count(Verdict::Unsafe),
                count(Verdict::Lost),
            )
        })
        .collect()
}
