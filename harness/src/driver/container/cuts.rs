//! Partitions below the nodes: from the pairs cut apart and each node's container (its network
//! namespace and its address), the drop rules in each container's network namespace (`docker.rs`
//! sets them). The rules live in the containers, which outlive the nodes' processes, so a node
//! that restarts or redials stays cut.

use std::net::IpAddr;

use super::{ContainerDriver, docker};
use crate::error::HarnessError;

impl ContainerDriver {
    /// Set the drop rules in each of `targets`' network namespaces from the cut pairs and the
    /// containers' addresses. A target without a container yet is skipped (its claim applies
    /// them); one with no cut pair gets its rules cleared only when `even_uncut` (after a heal).
    pub(super) async fn apply_cuts(
        &self,
        targets: &[String],
        even_uncut: bool,
    ) -> Result<(), HarnessError> {
        for target in targets {
            let Some(host) = self.hosts.get(target) else {
                continue;
            };
            let peers: Vec<&String> = self
                .cut
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
                .filter_map(|peer| self.hosts.get(*peer).map(|h| h.ip))
                .collect();
            docker::set_drop_rules(host.pid, &blocked).await?;
        }
        Ok(())
    }

    /// `name` and every node it is cut from.
    pub(super) fn cut_with(&self, name: &str) -> Vec<String> {
        let mut out = vec![name.to_string()];
        for (a, b) in &self.cut {
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
