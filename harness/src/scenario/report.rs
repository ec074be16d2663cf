//! The failure report of a run: what failed and where (the step and its line), the seed, the
//! kept run directory, the command that reproduces the run, and the merged timeline of steps
//! and every node's events.

use dlp_node::store::Backend;

use super::Scenario;
use crate::driver::DriverKind;
use crate::error::HarnessError;
use crate::network::Network;

pub(crate) fn report(
    scenario: &Scenario,
    net: &Network,
    driver: DriverKind,
    backend: Backend,
    error: &HarnessError,
) -> String {
    let mut out = format!(
        "scenario {} failed ({}@{}, driver {}, seed {})\n{error}\n\nrun directory (kept): {}\n\
         reproduce: cargo run -p dlp-harness -- run {} --backend {} --driver {} --seed {}\n\
         (or DLP_HARNESS_SEED={} with cargo nextest)\n\ntimeline:\n",
        scenario.path.display(),
        scenario.name,
        backend,
        driver.name(),
        net.seed(),
        net.run_dir().display(),
        scenario.path.display(),
        backend,
        driver.name(),
        net.seed(),
        net.seed(),
    );
    let timeline = net.timeline();
    let start = timeline.first().map_or(0, |t| t.at_ms);
    for entry in timeline {
        out.push_str(&format!(
            "  +{:>6} ms  {:<10} {}\n",
            entry.at_ms.saturating_sub(start),
            entry.who,
            entry.what
        ));
    }
    out
}
