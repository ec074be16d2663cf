//! Every `scenarios/*.toml` x backend is one test, named `<scenario>@<backend>`.
//! `DLP_HARNESS_DRIVER=process` runs them on `dlp-node` processes instead of in-process nodes.

use std::path::PathBuf;

use dlp_harness::driver::DriverKind;
use dlp_harness::runner::{run_blocking, test_name};
use dlp_harness::scenario::{Scenario, discover};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let driver: DriverKind = match std::env::var("DLP_HARNESS_DRIVER") {
        Ok(name) => name
            .parse()
            .unwrap_or_else(|e| panic!("DLP_HARNESS_DRIVER: {e}")),
        Err(_) => DriverKind::InProcess,
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut trials = Vec::new();
    for path in discover(&[dir]).expect("scenarios directory") {
        match Scenario::load(&path) {
            Ok(scenario) => {
                for backend in scenario.backends() {
                    let scenario = scenario.clone();
                    trials.push(Trial::test(test_name(&scenario, backend), move || {
                        let outcome = run_blocking(&scenario, backend, driver, false);
                        match outcome.failure {
                            None => Ok(()),
                            Some(report) => Err(Failed::from(report)),
                        }
                    }));
                }
            }
            Err(e) => {
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default();
                trials.push(Trial::test(format!("{name}@invalid"), move || {
                    Err(Failed::from(e.to_string()))
                }));
            }
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
