//! The one-test-per-point runs' inputs and outputs: the committed point lists must be what the
//! workloads find (else the command that rewrites them is named), and the result files of
//! several shards merge into the answer of one run, naming what is missing, conflicting, stale
//! or not a result at all.

use std::path::{Path, PathBuf};

use dlp_harness::capability::DriverKind;
use dlp_harness::run::runner::{runs_root, runtime};
use dlp_harness::shards::{
    MergeFilter, Outcome, SHARDS_FILE, ShardTest, ShardsFile, merge, run_test,
};
use dlp_harness::sweep::{PointList, Workload};
use dlp_node_api::{AuditPolicy, Backend};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shipped() -> ShardsFile {
    ShardsFile::load(&workspace().join(SHARDS_FILE)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_committed_point_list_is_what_its_workload_finds() {
    let file = shipped();
    assert!(file.workloads.len() >= 6, "{:?}", file.workloads);
    let rt = runtime().expect("runtime");
    let mut stale = Vec::new();
    for path in &file.workloads {
        let workload = Workload::load(path).unwrap_or_else(|e| panic!("{e}"));
        let committed = PointList::load(path).unwrap_or_else(|e| panic!("{e}"));
        // Discovered again under the committed interleaving: the same run, so the same points.
        let found = rt
            .block_on(PointList::discover(
                &workload,
                &[Backend::Rocksdb, Backend::Sqlite],
                file.seed,
                &runs_root(),
                Some(&committed.order),
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(diff) = committed.differences(&found) {
            stale.push(format!(
                "{}: {diff}\n  if the workload changed on purpose: dlp-harness points --write {}",
                path.display(),
                path.display()
            ));
        }
    }
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}

#[test]
fn the_committed_points_hold_the_steps_each_workload_was_written_for() {
    let list = |name: &str| {
        PointList::load(&workspace().join("scenarios/sweeps").join(name))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    for backend in [Backend::Rocksdb, Backend::Sqlite] {
        // Bob forwards both payments, one on each of his channels: a point right after each
        // AddTlc he sends.
        let route = list("four_node_route.toml");
        let forwarded = route
            .of(backend)
            .iter()
            .filter(|p| p.step == "sent:AddTlc")
            .count();
        assert_eq!(forwarded, 2, "{backend}: {:?}", route.of(backend));
        // The channel opened mid-workload has points of its own.
        let mid = list("channel_opened_mid_workload.toml");
        assert!(
            mid.of(backend).iter().any(|p| p.channel == "bc"),
            "{backend}"
        );
        assert!(
            mid.of(backend).iter().any(|p| p.channel == "ab"),
            "{backend}"
        );
    }
}

/// A configuration of one workload under strict and two explorer seeds, in a directory of its
/// own (the workload and its point list copied there).
fn small_config(dir: &Path) -> ShardsFile {
    let sweeps = workspace().join("scenarios/sweeps");
    for name in [
        "payment_then_shutdown.toml",
        "payment_then_shutdown.points.json",
    ] {
        std::fs::copy(sweeps.join(name), dir.join(name)).expect("copy");
    }
    let path = dir.join("shards.toml");
    std::fs::write(
        &path,
        "seed = 1\n[sweep]\nworkloads = [\"payment_then_shutdown.toml\"]\npolicies = [\"strict\"]\n\
         [explore]\nfirst_seed = 3\nseeds = 1\nsteps = 6\npolicy = \"strict\"\n",
    )
    .expect("write");
    ShardsFile::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn shards_merge_into_the_answer_of_one_run_and_name_what_is_missing_or_conflicting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = small_config(dir.path());
    let (tests, broken) = file.tests();
    assert!(broken.is_empty(), "{broken:?}");
    // 7 points x 2 backends under strict, 1 seed x 2 backends.
    assert_eq!(
        tests.len(),
        7 * 2 + 2,
        "{:?}",
        tests.iter().map(ShardTest::name).collect::<Vec<_>>()
    );
    // Two shards of the tests, every third test left out of both: missing.
    let (one, two, whole) = (
        dir.path().join("one"),
        dir.path().join("two"),
        dir.path().join("whole"),
    );
    let mut left_out = Vec::new();
    for (i, test) in tests.iter().enumerate() {
        if i % 3 == 2 && !matches!(test, ShardTest::Explore { .. }) {
            left_out.push(test.name());
            continue;
        }
        let record = run_test(&file, test, DriverKind::InProcess, &runs_root(), &|_, _| {
            Vec::new()
        });
        assert!(
            record.problems.is_empty(),
            "{}: {:?}",
            record.test,
            record.problems
        );
        record
            .write(if i % 2 == 0 { &one } else { &two })
            .expect("write");
        record.write(&whole).expect("write");
    }
    let sharded = merge(&file, &[one.clone(), two.clone()], &MergeFilter::default());
    let single = merge(&file, std::slice::from_ref(&whole), &MergeFilter::default());
    assert_eq!(sharded.verdicts, single.verdicts);
    left_out.sort();
    assert_eq!(sharded.missing, left_out);
    assert!(sharded.failed(), "missing tests fail the merge");
    let text = sharded.render_text();
    assert!(
        text.contains(&format!("MISSING ({}", left_out.len())),
        "{text}"
    );
    assert!(
        text.contains("payment_then_shutdown @ rocksdb, policy strict"),
        "{text}"
    );
    assert!(
        text.contains("explorer: 2 seed runs, 2 passed, 0 failed"),
        "{text}"
    );
    assert_eq!(sharded.reports.len(), 1);
    assert!(
        sharded.reports[0]
            .results
            .iter()
            .all(|r| r.verdict().to_string() == "closed")
    );
    // The same test in two shards with another verdict: a conflict. A file of a test the
    // configuration does not have: stale, ignored. A file that is no result: unreadable.
    let copy = std::fs::read_dir(&one)
        .expect("one")
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"kind\": \"sweep\"")))
        .expect("a sweep record in shard one");
    let text = std::fs::read_to_string(&copy).expect("read");
    let tampered = dir.path().join("tampered");
    std::fs::create_dir_all(&tampered).expect("dir");
    std::fs::write(
        tampered.join("x.json"),
        text.replacen("\"verdict\": \"closed\"", "\"verdict\": \"UNSAFE\"", 1),
    )
    .expect("write");
    std::fs::write(
        tampered.join("stale.json"),
        text.replacen("\"test\": \"sweep/", "\"test\": \"sweep/gone_", 1),
    )
    .expect("write");
    std::fs::write(tampered.join("junk.json"), "[]").expect("write");
    let merged = merge(&file, &[one, two, tampered], &MergeFilter::default());
    assert_eq!(merged.conflicts.len(), 1, "{:?}", merged.conflicts);
    assert_eq!(merged.stale.len(), 1, "{:?}", merged.stale);
    assert!(
        merged.stale[0].contains("sweep/gone_"),
        "{:?}",
        merged.stale
    );
    assert_eq!(merged.unreadable.len(), 1, "{:?}", merged.unreadable);
    // Another run that judged one point otherwise, or lacks one: `--same-as` names both.
    let (flipped, fewer) = (dir.path().join("flipped"), dir.path().join("fewer"));
    for target in [&flipped, &fewer] {
        std::fs::create_dir_all(target).expect("dir");
    }
    let mut sweep_files: Vec<PathBuf> = std::fs::read_dir(&whole)
        .expect("whole")
        .flatten()
        .map(|e| e.path())
        .collect();
    sweep_files.sort();
    let mut flipped_one = false;
    for (i, path) in sweep_files.iter().enumerate() {
        let text = std::fs::read_to_string(path).expect("read");
        let name = path.file_name().expect("name");
        let is_sweep = text.contains("\"kind\": \"sweep\"");
        let changed = if is_sweep && !flipped_one {
            flipped_one = true;
            text.replacen("\"verdict\": \"closed\"", "\"verdict\": \"resumed\"", 1)
        } else {
            text.clone()
        };
        std::fs::write(flipped.join(name), changed).expect("write");
        if i > 0 {
            std::fs::write(fewer.join(name), text).expect("write");
        }
    }
    let differences = single.differences(&merge(
        &file,
        std::slice::from_ref(&flipped),
        &MergeFilter::default(),
    ));
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert!(
        differences[0].contains("closed (backup") && differences[0].contains("resumed (backup"),
        "{differences:?}"
    );
    let differences = single.differences(&merge(&file, &[fewer], &MergeFilter::default()));
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert!(
        differences[0].ends_with("only here") || differences[0].ends_with("not run there"),
        "{differences:?}"
    );
    assert!(single.differences(&single).is_empty());
    // Results of another seed are stale, not this configuration's answer.
    let reseeded = dir.path().join("reseeded");
    std::fs::create_dir_all(&reseeded).expect("dir");
    for path in &sweep_files {
        let text = std::fs::read_to_string(path).expect("read");
        std::fs::write(
            reseeded.join(path.file_name().expect("name")),
            text.replacen("\"seed\": 1,", "\"seed\": 2,", 1),
        )
        .expect("write");
    }
    let merged = merge(&file, &[reseeded], &MergeFilter::default());
    assert!(
        merged.stale.iter().any(|s| s.contains("with seed 2")),
        "{:?}",
        merged.stale
    );
    assert!(merged.reports.is_empty(), "stale results make no report");
    // Only the tests under one policy are expected: none here is fiber's.
    let fiber_only = merge(
        &file,
        std::slice::from_ref(&whole),
        &MergeFilter {
            policy: Some(AuditPolicy::Fiber),
        },
    );
    assert!(
        fiber_only.missing.is_empty() && fiber_only.stale.is_empty(),
        "{:?}",
        fiber_only.missing
    );
    assert!(fiber_only.reports.is_empty() && fiber_only.explore.is_empty());
    // The explorer's records are the seeds' own.
    assert!(
        single
            .explore
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Explore { seed: 3, .. }))
    );
    assert!(single.render_html().contains("Explorer seeds"));
}
