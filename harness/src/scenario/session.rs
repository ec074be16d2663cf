//! A scenario's run: build the network, open the channels, run the steps, check the
//! invariants, and on failure write the report (timeline, seed, run directory).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dlp_node::store::Backend;

use super::Scenario;
use super::file::Step;
use super::interpret::{RunState, run_step};
use super::report::report;
use crate::driver::DriverKind;
use crate::error::HarnessError;
use crate::network::{Network, NodeSettings};

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    pub elapsed: Duration,
    pub run_dir: PathBuf,
    /// `None` on success; else the report (what failed, where, and the merged timeline).
    pub failure: Option<String>,
}

/// Run `scenario` on `driver` with `backend` in `run_dir`.
/// Everything random is derived from `seed`.
pub async fn run(
    scenario: &Scenario,
    driver: DriverKind,
    backend: Backend,
    run_dir: &Path,
    seed: u64,
) -> Outcome {
    let started = Instant::now();
    let mut net = match Network::new(driver, backend, run_dir, seed).await {
        Ok(net) => net,
        Err(e) => {
            return Outcome {
                elapsed: started.elapsed(),
                run_dir: run_dir.to_path_buf(),
                failure: Some(format!("the harness could not start: {e}")),
            };
        }
    };
    let result = run_steps(scenario, &mut net).await;
    let result = match result {
        Ok(()) => net.check_invariants(scenario.file.allow_penalties).await,
        Err(e) => Err(e),
    };
    let failure = result
        .err()
        .map(|e| report(scenario, &net, driver, backend, &e));
    net.shutdown_all().await;
    Outcome {
        elapsed: started.elapsed(),
        run_dir: run_dir.to_path_buf(),
        failure,
    }
}

async fn run_steps(scenario: &Scenario, net: &mut Network) -> Result<(), HarnessError> {
    add_nodes(scenario, net).await?;
    open_channels(scenario, net).await?;
    let all = 0..scenario.file.steps.len();
    run_step_list(scenario, net, &mut RunState::default(), all).await
}

/// Add (start and fund) every node of the scenario.
pub(crate) async fn add_nodes(scenario: &Scenario, net: &mut Network) -> Result<(), HarnessError> {
    for (name, decl) in &scenario.file.nodes {
        net.note_step(format!("add node {name}"));
        net.add_node(
            name,
            NodeSettings {
                audit_policy: decl.audit_policy,
                on_audit_failure: decl.on_audit_failure,
            },
        )
        .await?;
    }
    Ok(())
}

/// Open (and confirm) the scenario's channels.
pub(crate) async fn open_channels(
    scenario: &Scenario,
    net: &mut Network,
) -> Result<(), HarnessError> {
    for channel in &scenario.file.channels {
        let c = channel.get_ref();
        net.note_step(format!(
            "open channel {} {} -> {} ({})",
            c.name, c.from, c.to, c.amount
        ));
        net.connect(&c.from, &c.to).await?;
        net.open_channel(&c.name, &c.from, &c.to, c.amount).await?;
    }
    Ok(())
}

/// Run the scenario's steps in order; a failure names the step and its line.
pub(crate) async fn run_step_list(
    scenario: &Scenario,
    net: &mut Network,
    state: &mut RunState,
    range: std::ops::Range<usize>,
) -> Result<(), HarnessError> {
    for (i, step) in scenario.file.steps.iter().enumerate() {
        if !range.contains(&i) {
            continue;
        }
        let s = step.get_ref();
        net.note_step(format!("#{} {}", i + 1, describe_step(s)));
        run_step(net, s, state).await.map_err(|e| {
            let (line, _) = scenario.step_position(i).unwrap_or_default();
            let detail = match e {
                HarnessError::Expectation(message) => message,
                other => other.to_string(),
            };
            HarnessError::Expectation(format!(
                "step {} ({}, line {line}): {detail}",
                i + 1,
                s.verb()
            ))
        })?;
    }
    Ok(())
}

fn describe_step(step: &Step) -> String {
    format!("{step:?}")
}
