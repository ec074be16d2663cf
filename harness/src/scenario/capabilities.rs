//! What a scenario needs from its driver beyond the nodes' plain RPC, and the check that
//! refuses it before anything starts when the driver offers less: a `hold` on a driver without
//! step control would otherwise wait out its deadline, and a penalty check without the
//! dlp-chain ledger would have nothing to read. Each verb says what it needs
//! ([`Facts::needs`](super::Facts::needs), next to how it runs); the
//! invariants, checked at the end of every scenario, need
//! [`INVARIANT_CAPABILITIES`]. `scenarios/README.md` lists the mapping.

use std::collections::BTreeSet;

use super::Scenario;
use super::facts::StepFormat;
use crate::capability::{Capability, INVARIANT_CAPABILITIES};
use crate::error::HarnessError;

impl<S: StepFormat> Scenario<S> {
    /// Every capability the scenario needs: its steps', its nodes' and the invariants'.
    pub fn required_capabilities(&self) -> BTreeSet<Capability> {
        let nodes = self.file.nodes.values().flat_map(|d| {
            let space = d
                .backup_space_kb
                .is_some()
                .then_some(&Capability::BackupSpaceLimit);
            let version = d.version.as_deref().map(version_needs).unwrap_or_default();
            space.into_iter().chain(version)
        });
        self.file
            .steps
            .iter()
            .flat_map(|s| s.get_ref().facts().needs)
            .chain(INVARIANT_CAPABILITIES)
            .chain(nodes)
            .copied()
            .collect()
    }

    /// Refuse the scenario if it needs a capability that is not `offered`: the error names the
    /// file, the line of what needs it (the first step, in file order; the invariants, which
    /// every scenario has, at line 1), that verb and the capability.
    pub fn check_capabilities(&self, offered: &[Capability]) -> Result<(), HarnessError> {
        let lacking = |needed: &[Capability]| needed.iter().find(|c| !offered.contains(c)).copied();
        let offers = if offered.is_empty() {
            "none".to_string()
        } else {
            offered
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(missing) = lacking(INVARIANT_CAPABILITIES) {
            return Err(self.invalid_at(
                0,
                format!(
                    "the invariants (checked at the end of every scenario) need {missing}, which \
                     the driver does not offer (it offers: {offers})"
                ),
            ));
        }
        for (name, decl) in &self.file.nodes {
            if decl.backup_space_kb.is_some() && !offered.contains(&Capability::BackupSpaceLimit) {
                let at = super::locate::key_offset(&self.text, "nodes", name).unwrap_or(0);
                return Err(self.invalid_at(
                    at,
                    format!(
                        "node {name}: backup_space_kb needs {}, which the driver does not offer \
                         (it offers: {offers})",
                        Capability::BackupSpaceLimit
                    ),
                ));
            }
        }
        for (name, decl) in &self.file.nodes {
            let Some(version) = decl.version.as_deref() else {
                continue;
            };
            if let Some(missing) = lacking(version_needs(version)) {
                let at = super::locate::key_offset(&self.text, "nodes", name).unwrap_or(0);
                return Err(self.invalid_at(
                    at,
                    format!(
                        "node {name}: version = {version:?} needs {missing}, which the driver \
                         does not offer (it offers: {offers})"
                    ),
                ));
            }
        }
        for (index, step) in self.file.steps.iter().enumerate() {
            let step = step.get_ref();
            if let Some(missing) = lacking(step.facts().needs) {
                return Err(self.invalid_at_step(
                    index,
                    format!(
                        "{}: needs {missing}, which the driver does not offer (it offers: \
                         {offers})",
                        step.verb()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// What running a node of the build named `version` needs: nothing for this build; another
/// build needs a driver that runs them, and one that listens on loopback only (pre-routing)
/// needs its peers on the host's loopback.
pub fn version_needs(version: &str) -> &'static [Capability] {
    use crate::versions::{CURRENT, Catalog, Dialect};
    if version == CURRENT {
        return &[];
    }
    let dialect = Catalog::committed()
        .ok()
        .and_then(|c| c.get(version).ok())
        .map(|v| v.dialect);
    match dialect {
        Some(Dialect::PreRouting) => &[Capability::NodeVersions, Capability::LoopbackOnlyBuilds],
        _ => &[Capability::NodeVersions],
    }
}
