//! Validation of the verbs that look at what a node holds: `wait_auto_backup` (a backup the node
//! took by itself), `expect_backup_files` (what a backup directory holds), `expect_channels`
//! (how many channels a node lists, and their states) and `expect_node_info`. Called by
//! `validate.rs` for every step, after names are known to exist; each error is located at the
//! step by the caller.

use std::collections::{BTreeMap, BTreeSet};

use dlp_node_api::ChannelState;

use super::file::{ScenarioFile, Step};
use super::source::clip;
use super::validate::MAX_CHANNELS;
use crate::cluster::DEADLINE;

/// Most paths one `expect_backup_files` lists.
pub const MAX_BACKUP_FILES: usize = 64;
/// Longest path in `expect_backup_files`, in bytes.
pub const MAX_BACKUP_PATH: usize = 256;

/// What the steps so far named: which node each backup belongs to.
#[derive(Debug, Default)]
pub(super) struct Inspections {
    owners: BTreeMap<String, String>,
}

impl Inspections {
    /// Check `step` against the file and the steps before it, then remember what it names.
    /// `backups` holds every backup name so far (`backup`, `backup_at`, `wait_auto_backup`).
    pub(super) fn step(
        &mut self,
        file: &ScenarioFile,
        step: &Step,
        backups: &mut BTreeSet<String>,
    ) -> Result<(), String> {
        match step {
            Step::Backup { node, name } | Step::BackupAt { node, name, .. } => {
                self.owners.insert(name.clone(), node.clone());
            }
            Step::WaitAutoBackup {
                node,
                name,
                within_ms,
            } => {
                if !file.nodes.get(node).is_some_and(|n| n.auto_backup) {
                    return Err(format!(
                        "wait_auto_backup: {node} takes no automatic backups (set \
                         auto_backup = true under [nodes.{node}])"
                    ));
                }
                let deadline = DEADLINE.as_millis() as u64;
                if let Some(ms) = within_ms
                    && !(1..=deadline).contains(ms)
                {
                    return Err(format!(
                        "wait_auto_backup: within_ms {ms} must be 1 to {deadline} (every wait \
                         ends at the {} s deadline)",
                        DEADLINE.as_secs()
                    ));
                }
                if !backups.insert(name.clone()) {
                    return Err(format!("backup name {name:?} used twice"));
                }
                self.owners.insert(name.clone(), node.clone());
            }
            Step::ExpectBackupFiles {
                node,
                backup,
                files,
                store,
            } => {
                let Some(owner) = self.owners.get(backup) else {
                    return Err(format!(
                        "expect_backup_files: no earlier backup step named {backup:?}"
                    ));
                };
                if owner != node {
                    return Err(format!(
                        "expect_backup_files: backup {backup:?} is {owner}'s, not {node}'s"
                    ));
                }
                if files.is_empty() && !store {
                    return Err(
                        "expect_backup_files: nothing to check: list files or set store = true"
                            .into(),
                    );
                }
                if files.len() > MAX_BACKUP_FILES {
                    return Err(format!(
                        "expect_backup_files: {} files; at most {MAX_BACKUP_FILES}",
                        files.len()
                    ));
                }
                for path in files {
                    check_backup_path(path)?;
                }
            }
            Step::ExpectChannels {
                node,
                peer,
                count,
                state,
            } => {
                if peer.as_ref() == Some(node) {
                    return Err(format!(
                        "expect_channels: peer {node} is the node itself (a node has no channel \
                         with itself)"
                    ));
                }
                if *count > MAX_CHANNELS as u64 {
                    return Err(format!(
                        "expect_channels: count {count} is more than a scenario opens (at most \
                         {MAX_CHANNELS})"
                    ));
                }
                if let Some(state) = state {
                    check_state(state)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A path inside a backup directory: relative, no `.` or `..` or empty parts (a trailing `/`
/// marks a directory), at most [`MAX_BACKUP_PATH`] bytes.
fn check_backup_path(path: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "expect_backup_files: path {} {why} (paths are relative to the backup directory, \
             like \"sk\" or \"db/CURRENT\"; a trailing / marks a directory)",
            clip(path)
        ))
    };
    if path.len() > MAX_BACKUP_PATH {
        return bad(&format!("is longer than {MAX_BACKUP_PATH} bytes"));
    }
    if path.is_empty() || path == "/" {
        return bad("is empty");
    }
    if path.starts_with('/') {
        return bad("is absolute");
    }
    let inner = path.strip_suffix('/').unwrap_or(path);
    if inner
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return bad("has an empty, . or .. part");
    }
    Ok(())
}

/// A state `expect_channels` can see: a state name (flags in parentheses allowed), not
/// `Closed` (closed channels are not counted).
fn check_state(state: &str) -> Result<(), String> {
    let names: Vec<&str> = [
        ChannelState::NegotiatingFunding(0),
        ChannelState::CollaboratingFundingTx(0),
        ChannelState::SigningCommitment(0),
        ChannelState::AwaitingTxSignatures(0),
        ChannelState::AwaitingChannelReady(0),
        ChannelState::ChannelReady,
        ChannelState::ShuttingDown(0),
        ChannelState::Stale,
    ]
    .iter()
    .map(ChannelState::name)
    .collect();
    let name = state.split_once('(').map_or(state, |(name, _)| name);
    if name == ChannelState::Closed(0).name() {
        return Err(
            "expect_channels: closed channels are not counted, so none can be Closed (use \
             expect_state for a closed channel)"
                .into(),
        );
    }
    if !names.contains(&name) {
        return Err(format!(
            "expect_channels: unknown state {}; states: {}",
            clip(state),
            names.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::error::HarnessError;
    use crate::scenario::Scenario;

    /// Steps start at line 12.
    const BASE: &str = "description = \"d\"\n[nodes.alice]\nauto_backup = true\n[nodes.bob]\n\
        [nodes.carol]\n[[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n";

    fn parse(steps: &[&str]) -> Result<Scenario, HarnessError> {
        crate::scenario::test_support::parse_steps(BASE, steps)
    }

    /// The line and message of the refusal.
    fn refused(steps: &[&str]) -> (usize, String) {
        crate::scenario::test_support::refused_steps(BASE, steps)
    }

    #[test]
    fn the_inspection_verbs_parse_and_render_back() {
        let s = parse(&[
            "wait_auto_backup = { node = \"alice\", name = \"a\", within_ms = 5000 }",
            "expect_backup_files = { node = \"alice\", backup = \"a\", files = [\"key\", \"sk\", \"db/\"], store = true }",
            "backup = { node = \"bob\", name = \"b\" }",
            "expect_backup_files = { node = \"bob\", backup = \"b\", store = true }",
            "restore = { node = \"alice\", backup = \"a\" }",
            "expect_channels = { node = \"alice\", peer = \"bob\", count = 1, state = \"Stale\" }",
            "expect_channels = { node = \"carol\", count = 0 }",
            "expect_node_info = { node = \"bob\" }",
            "expect_audit = { node = \"alice\", channel = \"ab\", outcome = \"passed\", peer = \"behind\" }",
        ])
        .expect("valid");
        let rendered = crate::scenario::render(&s.file, "");
        assert!(rendered.contains("auto_backup = true"), "{rendered}");
        let again = Scenario::parse(Path::new("t.toml"), &rendered).expect("renders back");
        assert_eq!(
            crate::scenario::test_support::step_texts(&s),
            crate::scenario::test_support::step_texts(&again)
        );
    }

    #[test]
    fn an_automatic_backup_needs_a_node_that_takes_them_and_a_bounded_wait() {
        let (line, msg) = refused(&["wait_auto_backup = { node = \"bob\", name = \"a\" }"]);
        assert_eq!(line, 12);
        assert_eq!(
            msg,
            "wait_auto_backup: bob takes no automatic backups (set auto_backup = true under \
             [nodes.bob])"
        );
        let (_, msg) = refused(&["wait_auto_backup = { node = \"dave\", name = \"a\" }"]);
        assert!(msg.contains("unknown node \"dave\""), "{msg}");
        for ms in ["0", "30001"] {
            let (_, msg) = refused(&[&format!(
                "wait_auto_backup = {{ node = \"alice\", name = \"a\", within_ms = {ms} }}"
            )]);
            assert!(msg.contains("must be 1 to 30000"), "{msg}");
        }
        let (line, msg) = refused(&[
            "backup = { node = \"alice\", name = \"a\" }",
            "wait_auto_backup = { node = \"alice\", name = \"a\" }",
        ]);
        assert_eq!((line, msg.as_str()), (14, "backup name \"a\" used twice"));
    }

    #[test]
    fn backup_files_name_an_earlier_backup_of_the_node_and_relative_paths() {
        let (line, msg) = refused(&[
            "expect_backup_files = { node = \"alice\", backup = \"later\", store = true }",
            "backup = { node = \"alice\", name = \"later\" }",
        ]);
        assert_eq!(line, 12);
        assert_eq!(
            msg,
            "expect_backup_files: no earlier backup step named \"later\""
        );
        let (_, msg) = refused(&[
            "backup = { node = \"bob\", name = \"b\" }",
            "expect_backup_files = { node = \"alice\", backup = \"b\", store = true }",
        ]);
        assert_eq!(
            msg,
            "expect_backup_files: backup \"b\" is bob's, not alice's"
        );
        let (_, msg) = refused(&[
            "backup = { node = \"bob\", name = \"b\" }",
            "expect_backup_files = { node = \"bob\", backup = \"b\" }",
        ]);
        assert!(msg.contains("nothing to check"), "{msg}");
        for path in [
            "/etc/passwd",
            "../key",
            "db//CURRENT",
            "./sk",
            "",
            "db/../../x",
        ] {
            let (_, msg) = refused(&[
                "backup = { node = \"bob\", name = \"b\" }",
                &format!(
                    "expect_backup_files = {{ node = \"bob\", backup = \"b\", files = [{path:?}] }}"
                ),
            ]);
            assert!(
                msg.starts_with("expect_backup_files: path "),
                "{path}: {msg}"
            );
        }
        let many: Vec<String> = (0..65).map(|i| format!("\"f{i}\"")).collect();
        let (_, msg) = refused(&[
            "backup = { node = \"bob\", name = \"b\" }",
            &format!(
                "expect_backup_files = {{ node = \"bob\", backup = \"b\", files = [{}] }}",
                many.join(", ")
            ),
        ]);
        assert_eq!(msg, "expect_backup_files: 65 files; at most 64");
    }

    #[test]
    fn expected_channels_name_known_states_a_real_peer_and_a_bounded_count() {
        let (line, msg) =
            refused(&["expect_channels = { node = \"alice\", count = 1, state = \"Stael\" }"]);
        assert_eq!(line, 12);
        assert!(
            msg.starts_with("expect_channels: unknown state \"Stael\"; states: Negotiating"),
            "{msg}"
        );
        let (_, msg) = refused(&[
            "expect_channels = { node = \"alice\", count = 1, state = \"Closed(0x1)\" }",
        ]);
        assert!(msg.contains("closed channels are not counted"), "{msg}");
        let (_, msg) =
            refused(&["expect_channels = { node = \"alice\", peer = \"alice\", count = 1 }"]);
        assert!(msg.contains("is the node itself"), "{msg}");
        let (_, msg) =
            refused(&["expect_channels = { node = \"alice\", peer = \"eve\", count = 1 }"]);
        assert!(msg.contains("unknown node \"eve\""), "{msg}");
        let (_, msg) = refused(&["expect_channels = { node = \"alice\", count = 257 }"]);
        assert!(msg.contains("at most 256"), "{msg}");
        parse(&[
            "expect_channels = { node = \"alice\", count = 1, state = \"ShuttingDown(0x1)\" }",
        ])
        .expect("flags as printed");
        let (_, msg) = refused(&[
            "expect_audit = { node = \"alice\", channel = \"ab\", outcome = \"passed\", peer = \"aside\" }",
        ]);
        assert!(msg.contains("aside"), "{msg}");
    }

    #[test]
    fn where_the_peer_stands_in_an_audit() {
        use crate::scenario::AuditPeer::{self, *};
        assert_eq!(AuditPeer::of(5, 5, 5, 5), Some(Level));
        assert_eq!(AuditPeer::of(5, 5, 4, 5), Some(Behind));
        assert_eq!(AuditPeer::of(5, 5, 4, 4), Some(Behind));
        assert_eq!(AuditPeer::of(5, 5, 7, 5), Some(Ahead));
        assert_eq!(AuditPeer::of(5, 5, 6, 6), Some(Ahead));
        assert_eq!(
            AuditPeer::of(5, 5, 6, 4),
            None,
            "ahead in one, behind in the other"
        );
    }
}
