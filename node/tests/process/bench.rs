//! The benchmarks end to end, tiny: `bench-store` on both backends (Stale marking included)
//! and its size argument, `bench-payments` with a few payments on one backend.

use crate::support::run_cli;

#[test]
fn bench_store_runs_end_to_end_on_both_backends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    let out = run_cli(
        &[
            "bench-store",
            "--sizes",
            "64K",
            "--value-size",
            "1024",
            "--repeat",
            "2",
            "--work-dir",
            work.to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", out.stderr);
    for backend in ["| rocksdb |", "| sqlite |"] {
        let row = out
            .stdout
            .lines()
            .find(|l| l.starts_with(backend))
            .unwrap_or_else(|| panic!("no {backend} row in:\n{}", out.stdout));
        // 16 channel records (all marked Stale by the restore) and 64 values of 1 KiB.
        assert!(row.contains("| 80 |"), "{row}");
    }
}

#[test]
fn bench_store_sizes_take_binary_units_and_refuse_others() {
    for bad in ["ten", "1T"] {
        let out = run_cli(&["bench-store", "--sizes", bad], &[]);
        assert!(!out.status.success(), "{bad}: {}", out.stdout);
        assert!(
            out.stderr.contains(&format!("size {bad:?}")),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn bench_payments_runs_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_cli(
        &[
            "bench-payments",
            "--backends",
            "sqlite",
            "--payments",
            "3",
            "--starts",
            "1",
            "--work-dir",
            dir.path().to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", out.stderr);
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("| sqlite |"))
        .unwrap_or_else(|| panic!("no sqlite row in:\n{}", out.stdout));
    assert!(row.contains("| 3 |"), "{row}");
}
