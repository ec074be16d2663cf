//! `dlp-harness report RUN_DIR...`: write a kept run directory's report.html again, from its
//! files alone (run.json, ledger.json, each node's events.jsonl and log). A path that is not a
//! run directory is refused by name (exit 2); an unreadable record fails (exit 1).

use std::path::PathBuf;

use dlp_harness::report::{ReportError, write_html};

use crate::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run directories (as printed with a failure: `run directory (kept): ...`).
    #[arg(required = true)]
    run_dirs: Vec<PathBuf>,
}

pub fn main(args: Args) -> Exit {
    let mut exit = Exit::Passed;
    for dir in &args.run_dirs {
        match write_html(dir) {
            Ok(path) => println!("{}", path.display()),
            Err(e) => {
                eprintln!("error: {e}");
                exit = exit.max(match e {
                    ReportError::NotARunDir { .. } => Exit::Invalid,
                    ReportError::Record { .. } | ReportError::Io { .. } => Exit::Failed,
                });
            }
        }
    }
    exit
}
