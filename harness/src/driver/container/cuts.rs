//! Partitions below the nodes: which pairs are cut, where each node's container is, and the
//! drop rules that follow from them in each container's network namespace (`docker.rs` sets
//! them). The rules live in the containers, which outlive the nodes' processes, so a node that
//! restarts or redials stays cut.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::{ContainerDriver, docker};
use crate::error::HarnessError;

/// Where each node's container is (for partitions), and which pairs are cut.
#[derive(Debug, Default)]
pub(super) struct Placements {
    /// name -> (its container's init PID, its address)
    pub(super) nodes: BTreeMap<String, (i64, IpAddr)>,
    /// Pairs cut apart (names in order).
    pub(super) cut: BTreeSet<(String, String)>,
}

impl ContainerDriver {
    /// Set the drop rules in each of `targets`' network namespaces from the cut pairs and the
    /// containers' addresses. A target without a container yet is skipped (its claim applies
    /// them); one with no cut pair gets its rules cleared only when `even_uncut` (after a heal).
    pub(super) async fn apply_cuts(
        &self,
        targets: &[String],
        even_uncut: bool,
    ) -> Result<(), HarnessError> {
        let (nodes, cut) = {
            let p = self.placements.lock().unwrap_or_else(|e| e.into_inner());
            (p.nodes.clone(), p.cut.clone())
        };
        for target in targets {
            let Some((pid, _)) = nodes.get(target) else {
                continue;
            };
            let peers: Vec<&String> = cut
                .iter()
                .filter_map(|(a, b)| {
                    if a == target {
                        Some(b)
                    } else if b == target {
                        Some(a)
                    } else {
                        None
                    }
                })
                .collect();
            if peers.is_empty() && !even_uncut {
                continue;
            }
            let blocked: Vec<IpAddr> = peers
                .iter()
                .filter_map(|peer| nodes.get(*peer).map(|(_, ip)| *ip))
                .collect();
            docker::set_drop_rules(*pid, &blocked).await?;
        }
        Ok(())
    }

    /// `name` and every node it is cut from.
    pub(super) fn cut_with(&self, name: &str) -> Vec<String> {
        let p = self.placements.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = vec![name.to_string()];
        for (a, b) in &p.cut {
            if a == name {
                out.push(b.clone());
            } else if b == name {
                out.push(a.clone());
            }
        }
        out
    }
}

pub(super) fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}
