//! The damage sweep (`sweep --damage`) on the shipped workloads, in process. What must hold:
//! with the node's digest check in place no damaged backup restores silently on either backend
//! (every case refused or benign); with the digests out of the way (manifests rewritten without
//! them, restored with `--accept-undigested-backup`) the sweep reports SILENT cases on SQLite,
//! the defect an earlier hand-written probe found: so the sweep can never silently stop finding
//! it.

use std::path::PathBuf;

use dlp_harness::capability::DriverKind;
use dlp_harness::run::runner::runs_root;
use dlp_harness::sweep::{CaseVerdict, DamageConfig, DamageReport, Workload, damage_sweep};
use dlp_node_api::Backend;

fn damage(workload: &str, backends: Vec<Backend>, points: usize, bypass: bool) -> DamageReport {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/sweeps")
        .join(workload);
    let workload = Workload::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let config = DamageConfig {
        backends,
        driver: DriverKind::InProcess,
        seed: 1,
        places: 2,
        points: Some(points),
        bypass_digests: bypass,
        jobs: 2,
        keep: false,
        runs_root: runs_root(),
    };
    let runtime = dlp_harness::run::runner::runtime().expect("runtime");
    runtime
        .block_on(damage_sweep(&workload, &config, &|_| {}))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn describe(report: &DamageReport) -> String {
    let mut out = report.tables();
    for b in &report.backends {
        for c in b.cases.iter().filter(|c| c.verdict == CaseVerdict::Silent) {
            out.push_str(&format!(
                "\nSILENT {}: {}: {}",
                b.backend, c.damage, c.detail
            ));
        }
        for e in &b.errors {
            out.push_str(&format!("\nERROR {}: {e}", b.backend));
        }
    }
    out.push('\n');
    out.push_str(&report.summary_lines().join("\n"));
    out
}

#[test]
fn with_digests_no_damaged_backup_restores_silently_on_either_backend() {
    let report = damage(
        "two_node_direct.toml",
        vec![Backend::Rocksdb, Backend::Sqlite],
        2,
        false,
    );
    let text = describe(&report);
    for b in &report.backends {
        assert!(b.errors.is_empty(), "{text}");
        assert!(!b.cases.is_empty(), "no cases on {}\n{text}", b.backend);
        // Every file of the backup was damaged every way: the node key, the wallet key, the
        // manifest and the store are all there.
        for file in ["sk", "key", "dlp-backup.json"] {
            assert!(
                b.cases.iter().any(|c| c.file == file),
                "{file} never damaged on {}\n{text}",
                b.backend
            );
        }
        assert!(
            b.count(CaseVerdict::Refused) > 0,
            "nothing refused on {}\n{text}",
            b.backend
        );
    }
    assert_eq!(report.silent(), 0, "{text}");
    assert!(!report.failed(), "{text}");
}

#[test]
fn without_digests_the_damage_sweep_finds_silent_restores_on_sqlite() {
    let report = damage("two_node_direct.toml", vec![Backend::Sqlite], 1, true);
    let text = describe(&report);
    let sqlite = &report.backends[0];
    assert!(sqlite.errors.is_empty(), "{text}");
    let silent: Vec<_> = sqlite
        .cases
        .iter()
        .filter(|c| c.verdict == CaseVerdict::Silent)
        .collect();
    assert!(
        !silent.is_empty(),
        "the damage sweep found no silent restore with the digests bypassed: it would not find \
         the defect the digests fix\n{text}"
    );
    // The silent ones are damage inside the database that a structural check passes.
    assert!(silent.iter().any(|c| c.file == "data.sqlite"), "{text}");
    assert!(report.failed());
}
