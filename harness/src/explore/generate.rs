//! Random schedules from a seed, in the scenario files' own vocabulary.
//!
//! The generator keeps a small model of the network (who runs, who is connected, which
//! channels may still be open, which backups exist) so every step it emits can apply:
//! payments both ways and through a hop, backups (by RPC, and `backup_at` a step in the middle
//! of a payment), channels opened mid-run, crashes and starts, restores from any earlier
//! backup of the node, disconnects and reconnects, cooperative and forced shutdowns, mining.
//! Outcomes it cannot predict (a payment over a Stale channel, a refused shutdown) are
//! `expect = "any"`: the explorer judges by the invariants, not by the outcomes. A
//! `wait_quiescent` follows every step, so a rerun interleaves the same way.
//!
//! Every node runs with `mutual_stale = "wait"` whatever the policy: under `reveal` a Stale
//! channel speaks when a timer runs out (`StaleNotice`), an input `wait_quiescent` cannot see
//! (nothing is in flight while the timer runs), so the same seed would not give the same events.
//! The resolution of a mutual restore is covered by scenarios and dlp-node's own tests instead.

use std::collections::BTreeSet;

use dlp_node_api::{AuditPolicy, MutualStale};
use toml::Spanned;

use crate::scenario::{ChannelDecl, NodeDecl, Shape, shape_pairs};
use crate::seeded::SplitMix64;
use crate::steps::{self, PayExpect, ScenarioFile, ShutdownExpect, Step};

/// The explorer's generator: [`SplitMix64`] from the seed (mixed with a constant of its own).
#[derive(Debug, Clone)]
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(SplitMix64::from_state(seed ^ 0x5eed_d1b0_e8c4_a11e))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.below(items.len())])
        }
    }
}

const NAMES: [&str; 4] = ["alice", "bob", "carol", "dave"];
const CHANNEL_AMOUNT: u64 = 1_000_000;
/// Channels a schedule may have in all (a mesh of four makes six; `open_channel` adds more).
const MAX_CHANNELS: usize = 10;
/// The protocol steps `backup_at` arms at: where a node's store holds a payment half-done.
const MID_PAYMENT_STEPS: [&str; 6] = [
    "received:AddTlc",
    "received:CommitmentSigned",
    "sent:CommitmentSigned",
    "received:RevokeAndAck",
    "sent:RevokeAndAck",
    "received:RemoveTlc",
];

/// What a schedule is generated for.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleSpec {
    pub seed: u64,
    /// Steps (not counting the `wait_quiescent` after each).
    pub steps: usize,
    /// 2 to 4.
    pub nodes: usize,
    /// Every node's audit policy.
    pub policy: AuditPolicy,
}

impl ScheduleSpec {
    /// The spec of a seed with the nodes that vary with it (2 to 4), as the explorer, the gate
    /// and the sharded seeds choose them when no count is given.
    pub fn of_seed(seed: u64, steps: usize, policy: AuditPolicy) -> Self {
        Self {
            seed,
            steps,
            nodes: 2 + (seed % 3) as usize,
            policy,
        }
    }

    /// The command that runs this schedule again on `backend`.
    pub fn reproduce(&self, backend: impl std::fmt::Display) -> String {
        format!(
            "dlp-harness explore --seed {} --steps {} --nodes {} --backend {backend} --policy {}",
            self.seed, self.steps, self.nodes, self.policy
        )
    }
}

struct Model {
    nodes: Vec<String>,
    channels: Vec<(String, String, String)>,
    running: BTreeSet<String>,
    connected: BTreeSet<(String, String)>,
    /// Channels a shutdown was asked for: no further shutdowns on them.
    closing: BTreeSet<String>,
    backups: Vec<(String, String)>,
    /// A node just restored: the next step usually lets one of its peers dial it (a restore
    /// matters once a peer reestablishes).
    restored: Option<String>,
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

impl Model {
    fn drop_connections(&mut self, node: &str) {
        self.connected.retain(|(a, b)| a != node && b != node);
    }
}

/// The schedule for `spec`: a scenario file (nodes, channels by a random shape, steps).
pub fn generate(spec: ScheduleSpec) -> ScenarioFile {
    let mut rng = Rng::new(spec.seed);
    let count = spec.nodes.clamp(2, 4);
    let nodes: Vec<String> = NAMES[..count].iter().map(|s| s.to_string()).collect();
    let shape = match (count, rng.below(3)) {
        (2, _) | (_, 0) => Shape::Line,
        (_, 1) => Shape::Star,
        _ => Shape::Mesh,
    };
    let channels: Vec<(String, String, String)> = shape_pairs(shape, &nodes)
        .into_iter()
        .map(|(a, b)| (format!("{a}-{b}"), a, b))
        .collect();
    let mut model = Model {
        nodes: nodes.clone(),
        channels: channels.clone(),
        running: nodes.iter().cloned().collect(),
        connected: channels.iter().map(|(_, a, b)| pair(a, b)).collect(),
        closing: BTreeSet::new(),
        backups: Vec::new(),
        restored: None,
    };
    let mut steps = Vec::new();
    for _ in 0..spec.steps {
        let step = next_step(&mut rng, &mut model);
        steps.push(Spanned::new(0..0, step));
        steps.push(Spanned::new(
            0..0,
            Step::WaitQuiescent(steps::network::WaitQuiescent {}),
        ));
    }
    ScenarioFile {
        description: format!(
            "Explorer schedule: seed {}, {} steps over {count} nodes ({shape:?} channels), \
             policy {}.",
            spec.seed, spec.steps, spec.policy
        ),
        backends: None,
        allow_penalties: false,
        nodes: nodes
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    NodeDecl {
                        audit_policy: Some(spec.policy),
                        on_audit_failure: None,
                        auto_backup: false,
                        backup_space_kb: None,
                        // Pinned: see the module docs.
                        mutual_stale: Some(MutualStale::Wait),
                        on_force_close_request: None,
                        fee_rate: None,
                        version: None,
                    },
                )
            })
            .collect(),
        topology: None,
        channels: channels
            .iter()
            .map(|(name, a, b)| {
                Spanned::new(
                    0..0,
                    ChannelDecl {
                        name: name.clone(),
                        from: a.clone(),
                        to: b.clone(),
                        amount: CHANNEL_AMOUNT,
                    },
                )
            })
            .collect(),
        steps,
        sweep: None,
    }
}

fn next_step(rng: &mut Rng, m: &mut Model) -> Step {
    if let Some(node) = m.restored.take()
        && rng.below(10) < 7
    {
        let peers: Vec<String> = m
            .channels
            .iter()
            .filter_map(|(_, a, b)| {
                if *a == node {
                    Some(b.clone())
                } else if *b == node {
                    Some(a.clone())
                } else {
                    None
                }
            })
            .filter(|p| m.running.contains(p) && !m.connected.contains(&pair(p, &node)))
            .collect();
        if let Some(peer) = rng.pick(&peers).cloned() {
            m.connected.insert(pair(&peer, &node));
            return Step::Connect(steps::links::Connect {
                from: peer,
                to: node,
            });
        }
    }
    loop {
        if let Some(step) = try_step(rng, m) {
            return step;
        }
    }
}

/// One attempt: a random verb, `None` if it cannot apply now.
fn try_step(rng: &mut Rng, m: &mut Model) -> Option<Step> {
    let running: Vec<String> = m.running.iter().cloned().collect();
    let stopped: Vec<String> = m
        .nodes
        .iter()
        .filter(|n| !m.running.contains(*n))
        .cloned()
        .collect();
    let roll = rng.below(100);
    match roll {
        // Pay: any two running nodes (over any route the payer finds; there may be none).
        0..=24 => {
            let from = rng.pick(&running)?.clone();
            let others: Vec<String> = running.iter().filter(|n| **n != from).cloned().collect();
            let to = rng.pick(&others)?.clone();
            let amount = 1_000 * (1 + rng.below(50) as u64);
            Some(Step::Pay(steps::payments::Pay {
                from,
                to,
                amount,
                expect: PayExpect::Any,
                reason_contains: None,
                route: None,
                attempts: None,
            }))
        }
        25..=30 => {
            let node = rng.pick(&running)?.clone();
            let name = format!("b{}", m.backups.len() + 1);
            m.backups.push((name.clone(), node.clone()));
            Some(Step::Backup(steps::backups::Backup::of(&node, &name)))
        }
        31..=36 => {
            // A backup in the middle of a payment: right after a commitment step of one of
            // the node's channels (or of any), the first or second time. Whether it fires
            // depends on later payments; a restore of one never written is skipped by the
            // explorer (see `run_schedule`).
            let node = rng.pick(&running)?.clone();
            let step = rng.pick(&MID_PAYMENT_STEPS)?.to_string();
            let channels: Vec<String> = m
                .channels
                .iter()
                .filter(|(_, a, b)| *a == node || *b == node)
                .map(|(name, _, _)| name.clone())
                .collect();
            let channel = if rng.below(3) == 0 {
                None
            } else {
                Some(rng.pick(&channels)?.clone())
            };
            let nth = 1 + rng.below(2) as u64;
            let name = format!("b{}", m.backups.len() + 1);
            m.backups.push((name.clone(), node.clone()));
            Some(Step::BackupAt(steps::backups::BackupAt {
                node,
                step,
                channel,
                nth,
                name,
            }))
        }
        37..=48 => {
            let (backup, node) = rng.pick(&m.backups)?.clone();
            m.drop_connections(&node);
            m.running.insert(node.clone());
            m.restored = Some(node.clone());
            Some(Step::Restore(steps::backups::Restore::of(&node, &backup)))
        }
        49..=52 => {
            let node = rng.pick(&running)?.clone();
            m.running.remove(&node);
            m.drop_connections(&node);
            Some(Step::Crash(steps::lifecycle::Crash { node }))
        }
        53..=56 => {
            let node = rng.pick(&running)?.clone();
            m.drop_connections(&node);
            Some(Step::Restart(steps::lifecycle::Restart { node }))
        }
        57..=64 => {
            let node = rng.pick(&stopped)?.clone();
            m.running.insert(node.clone());
            Some(Step::Start(steps::lifecycle::Start { node }))
        }
        65..=79 => {
            // Connect two running channel peers that are not connected (whoever dials).
            let candidates: Vec<(String, String)> = m
                .channels
                .iter()
                .map(|(_, a, b)| (a.clone(), b.clone()))
                .filter(|(a, b)| {
                    m.running.contains(a)
                        && m.running.contains(b)
                        && !m.connected.contains(&pair(a, b))
                })
                .collect();
            let (a, b) = rng.pick(&candidates)?.clone();
            m.connected.insert(pair(&a, &b));
            let (from, to) = if rng.below(2) == 0 { (a, b) } else { (b, a) };
            Some(Step::Connect(steps::links::Connect { from, to }))
        }
        80..=85 => {
            let connected: Vec<(String, String)> = m.connected.iter().cloned().collect();
            let (a, b) = rng.pick(&connected)?.clone();
            if !m.running.contains(&a) || !m.running.contains(&b) {
                return None;
            }
            m.connected.remove(&pair(&a, &b));
            Some(Step::Disconnect(steps::links::Disconnect {
                from: a,
                to: b,
            }))
        }
        86..=93 => {
            let open: Vec<(String, String, String)> = m
                .channels
                .iter()
                .filter(|(name, _, _)| !m.closing.contains(name))
                .cloned()
                .collect();
            let (channel, a, b) = rng.pick(&open)?.clone();
            let node = if rng.below(2) == 0 { a } else { b };
            if !m.running.contains(&node) {
                return None;
            }
            m.closing.insert(channel.clone());
            let force = rng.below(2) == 0;
            Some(Step::Shutdown(steps::channels::Shutdown {
                node,
                channel,
                force,
                expect: ShutdownExpect::Any,
            }))
        }
        94..=96 => {
            // A channel opened mid-run between two running nodes (connected first if they
            // are not), so backups taken before it predate it.
            if m.channels.len() >= MAX_CHANNELS {
                return None;
            }
            let from = rng.pick(&running)?.clone();
            let others: Vec<String> = running.iter().filter(|n| **n != from).cloned().collect();
            let to = rng.pick(&others)?.clone();
            let name = format!("{from}-{to}-{}", m.channels.len() + 1);
            m.channels.push((name.clone(), from.clone(), to.clone()));
            m.connected.insert(pair(&from, &to));
            Some(Step::OpenChannel(steps::channels::OpenChannel {
                name,
                from,
                to,
                amount: CHANNEL_AMOUNT,
            }))
        }
        _ => {
            let blocks = 1 + rng.below(10) as u64;
            Some(Step::Mine(steps::ledger::Mine { blocks }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::render;
    use crate::steps::Scenario;
    use std::path::Path;

    #[test]
    fn the_same_seed_gives_the_same_valid_schedule() {
        for seed in 0..200 {
            let spec = ScheduleSpec {
                seed,
                steps: 25,
                nodes: 2 + (seed % 3) as usize,
                policy: AuditPolicy::Strict,
            };
            let a = render(&generate(spec), "");
            let b = render(&generate(spec), "");
            assert_eq!(a, b, "seed {seed}");
            Scenario::parse(Path::new("gen.toml"), &a)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{a}"));
        }
        let one = render(
            &generate(ScheduleSpec {
                seed: 1,
                steps: 25,
                nodes: 3,
                policy: AuditPolicy::Strict,
            }),
            "",
        );
        let two = render(
            &generate(ScheduleSpec {
                seed: 2,
                steps: 25,
                nodes: 3,
                policy: AuditPolicy::Strict,
            }),
            "",
        );
        assert_ne!(one, two, "different seeds, different schedules");
    }
}
