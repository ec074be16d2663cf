//! `dlp-harness sweep --damage`: the damage sweep's command line. It prints a line per point as
//! the cases finish (under a progress bar on a terminal), a table per backend, the summary line
//! per backend (`damage <workload> <backend>: <cases> cases, <refused> refused, <benign> benign,
//! <silent> SILENT`) and the wall time and cases per second; writes the JSON report, an HTML page
//! and a regression scenario per SILENT case; exits 1 on any SILENT case or an unjudged point.

use std::path::PathBuf;

use dlp_harness::sweep::{
    CaseVerdict, DamageConfig, DamageProgress, DamageReport, Workload, damage_sweep,
    write_damage_regressions,
};

use crate::Exit;

/// What `sweep --damage` was asked for, beyond the sweep's configuration.
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
    /// Where regression scenarios go (default: a directory under the runs root).
    pub regressions: Option<PathBuf>,
}

pub fn main(workload: &Workload, config: DamageConfig, outputs: Outputs) -> Exit {
    eprintln!(
        "damage sweep of {} (node {}) on {}, {} driver, seed {}, {} places per file{}",
        workload.scenario.path.display(),
        workload.node,
        config
            .backends
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join("+"),
        config.driver.name(),
        config.seed,
        config.places,
        if config.bypass_digests {
            ", DIGESTS BYPASSED (manifests rewritten without them, restored with \
             --accept-undigested-backup)"
        } else {
            ""
        }
    );
    let runtime = match dlp_harness::run::runner::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            return Exit::CannotStart;
        }
    };
    let bar = crate::progress_cli::Progress::new(0);
    bar.running(format!("{}: finding the backup points", workload.name()));
    let progress = |p: DamageProgress| match p {
        DamageProgress::Points {
            backend,
            found,
            tried,
        } => {
            bar.line(&format!(
                "{backend}: {found} backup points, trying {}{}",
                tried.len(),
                if tried.len() < found {
                    format!(
                        " (seeded sample: {})",
                        tried
                            .iter()
                            .map(|i| format!("#{i}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                } else {
                    String::new()
                }
            ));
            bar.set_total(tried.len());
            bar.running(format!("{} on {backend}", workload.name()));
        }
        DamageProgress::PointDone {
            backend,
            point,
            label,
            cases,
            error,
            elapsed_ms,
        } => {
            let n = |v| cases.iter().filter(|c| c.verdict == v).count();
            bar.line(&format!(
                "{backend} #{point:<3} {label:<40} {} cases: {} refused, {} benign, {} SILENT ({:.1} s)",
                cases.len(),
                n(CaseVerdict::Refused),
                n(CaseVerdict::Benign),
                n(CaseVerdict::Silent),
                elapsed_ms as f64 / 1000.0
            ));
            for case in cases.iter().filter(|c| c.verdict == CaseVerdict::Silent) {
                bar.line(&format!(
                    "         SILENT: {}: {}",
                    case.damage, case.detail
                ));
            }
            if let Some(error) = error {
                bar.line(&format!(
                    "         ERROR: {}",
                    error.replace('\n', "\n         ")
                ));
            }
            bar.advance();
        }
    };
    let swept = runtime.block_on(damage_sweep(workload, &config, &progress));
    drop(bar);
    let report = match swept {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::of_sweep(&e);
        }
    };
    drop(runtime);
    print!("{}", report.tables());
    println!();
    for b in &report.backends {
        for error in &b.errors {
            println!("ERROR {}: {error}", b.backend);
        }
        for kept in &b.kept {
            println!("kept {}", kept.display());
        }
    }
    for line in report.summary_lines() {
        println!("{line}");
    }
    let seconds = report.elapsed_ms as f64 / 1000.0;
    println!(
        "{} cases in {seconds:.1} s ({:.1} cases/s)",
        report.cases(),
        report.cases() as f64 / seconds.max(0.001)
    );
    if let Err(exit) = write_outputs(&report, workload, &outputs) {
        return exit;
    }
    if report.failed() {
        Exit::Failed
    } else {
        Exit::Passed
    }
}

fn write_outputs(
    report: &DamageReport,
    workload: &Workload,
    outputs: &Outputs,
) -> Result<(), Exit> {
    let write = |path: &PathBuf, text: String| {
        std::fs::write(path, text)
            .map(|()| eprintln!("report: {}", path.display()))
            .map_err(|e| {
                eprintln!("error: cannot write {}: {e}", path.display());
                Exit::Failed
            })
    };
    if let Some(path) = &outputs.json {
        let text = serde_json::to_string_pretty(report).map_err(|e| {
            eprintln!("error: {e}");
            Exit::Failed
        })?;
        write(path, text)?;
    }
    if let Some(path) = &outputs.html {
        write(path, dlp_harness::sweep::render_damage_html(report))?;
    }
    if report.silent() > 0 {
        let dir = outputs.regressions.clone().unwrap_or_else(|| {
            dlp_harness::run::runner::runs_root()
                .join(format!("damage-regressions-{}", report.workload))
        });
        match write_damage_regressions(report, workload, &dir) {
            Ok(files) => {
                for f in files {
                    eprintln!("wrote {}", f.display());
                }
            }
            Err(e) => {
                eprintln!("error: writing regressions: {e}");
                return Err(Exit::Failed);
            }
        }
    }
    Ok(())
}
