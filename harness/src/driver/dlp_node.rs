//! The dlp-node flavour: what a dlp-node's home holds before its first start, written from a
//! [`NodeSpec`] the same way for every launcher (a task, a process, a container).
//!
//! - `config.toml`: the backend, loopback RPC and peer sockets on port 0 (read back from the
//!   node, so parallel runs never collide), every RPC module the harness drives (`admin` for
//!   backups, `dev` for events and step control), the ledger's URL, the seed (`dev.seed`), the
//!   audit settings, a short reveal wait for Stale channels ([`STALE_REVEAL_AFTER_MS`], so a
//!   scenario resolving a mutual restore is quick), and a backup retention the harness never
//!   hits (a scenario may restore any backup it named; retention itself is tested in dlp-node's
//!   own tests). Automatic backups when the spec asks for them, coalesced over
//!   [`AUTO_BACKUP_COALESCE_SECS`] instead of Fiber's minute, so a scenario sees one within its
//!   deadline after a channel change.
//! - `fiber/sk` and `ckb/key`: keys derived from the run's seed and the node's name, so the same
//!   seed gives the same node identities and therefore the same events.

use std::path::Path;

use dlp_chain::Hash32;
use dlp_node::layout::BaseDir;
use dlp_node_api::OnAuditFailure;

use super::{Digests, NodeSpec};
use crate::error::HarnessError;
use crate::versions::Dialect;

/// `backup.coalesce_secs` of a node with automatic backups: at most one change-triggered
/// backup per this many seconds.
pub const AUTO_BACKUP_COALESCE_SECS: u64 = 1;

/// `audit.stale_reveal_after_ms` of every node the harness runs: long enough for an honest
/// peer's ReestablishChannel on loopback or a container network (a few milliseconds), short
/// enough that a scenario resolving a mutual restore does not wait seconds.
pub const STALE_REVEAL_AFTER_MS: u64 = 300;

/// Where a node listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On the harness host's loopback, ports chosen by the OS (read back from the node).
    Loopback,
    /// On a private network of its own (a container): every interface, on fixed ports that the
    /// launcher maps or dials; both sockets opted in beyond loopback.
    PrivateNetwork { rpc_port: u16, peer_port: u16 },
}

/// Files of a node's home that change without the node's state changing, left out when the
/// harness checks that a refused restore left the home byte for byte as it was: the node's
/// output (`node.log`), the restore's output a launcher keeps (`restore.log`), and the lock file
/// (every holder, a restore too, writes its pid there for error messages).
pub const VOLATILE_HOME_FILES: [&str; 3] = ["node.log", "restore.log", "node.lock"];

/// Where a node of this flavour writes its backups, under its home.
pub fn backups_dir(home: &Path) -> std::path::PathBuf {
    BaseDir::new(home).backups_dir()
}

/// `dlp-node`'s arguments for an offline restore of `home` from `backup`, by a build of
/// `dialect` (one before digests has no flag to accept a backup without them).
pub fn restore_args(
    dialect: Dialect,
    home: &Path,
    backup: &Path,
    digests: Digests,
) -> Result<Vec<std::ffi::OsString>, HarnessError> {
    let mut args = vec![
        "-d".into(),
        home.as_os_str().to_owned(),
        "--restore".into(),
        backup.as_os_str().to_owned(),
    ];
    if digests == Digests::Bypassed {
        if dialect == Dialect::PreRouting {
            return Err(HarnessError::Setup(
                "a pre-routing build has no --accept-undigested-backup (its backups have no \
                 digests: restore them without it)"
                    .into(),
            ));
        }
        args.push("--accept-undigested-backup".into());
    }
    Ok(args)
}

/// Rewrite a backup's manifest as the format before content digests (format 1: sizes only), so
/// that a restore with `--accept-undigested-backup` checks the files' structure only. The damage
/// sweep's proof uses it: with the digests out of the way it must find silent damage.
pub fn strip_digests(backup: &Path) -> Result<(), HarnessError> {
    let mut manifest = dlp_node::backup::read_manifest(backup)
        .map_err(|e| HarnessError::Setup(format!("{}: {e}", backup.display())))?;
    manifest.format_version = dlp_node::backup::MANIFEST_FORMAT_WITHOUT_DIGESTS;
    for file in &mut manifest.files {
        file.sha256 = None;
    }
    let path = backup.join(dlp_node::backup::MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| HarnessError::Setup(format!("{}: {e}", path.display())))?;
    std::fs::write(&path, text).map_err(|e| HarnessError::io(&path, e))
}

/// Write the node's config and keys into `spec.home`.
pub fn create_home(spec: &NodeSpec, placement: Placement) -> Result<(), HarnessError> {
    let home = &spec.home;
    std::fs::create_dir_all(home).map_err(|e| HarnessError::io(home, e))?;
    write_config(spec, placement)?;
    dlp_node::keys::install_keys(
        &BaseDir::new(home),
        &derived_key(spec.seed, &spec.name, "node"),
        &derived_key(spec.seed, &spec.name, "wallet"),
    )
    .map_err(|e| HarnessError::node(&spec.name, e))
}

/// Write (again) the node's `config.toml` for its spec and build, nothing else of its home.
pub fn write_config(spec: &NodeSpec, placement: Placement) -> Result<(), HarnessError> {
    let config = spec.home.join("config.toml");
    let text = config_text(spec, placement)?;
    std::fs::write(&config, text).map_err(|e| HarnessError::io(&config, e))
}

/// The config a node of this spec runs with, in the keys its build reads. A setting its build
/// does not have is refused by name, unless the build behaves that way anyway.
pub fn config_text(spec: &NodeSpec, placement: Placement) -> Result<String, HarnessError> {
    match spec.build.dialect() {
        Dialect::Current => Ok(current_config_text(spec, placement)),
        Dialect::PreRouting => pre_routing_config_text(spec, placement),
    }
}

/// The config of a pre-routing build: no `graph` module, no `allow_non_loopback` for the peer
/// socket (it listens on loopback only), no backup retention (it keeps every backup, as the
/// harness asks of current builds), no reveal, mutual-stale, force-close or fee keys (it
/// always waits, always force-closes on request, charges no fee).
fn pre_routing_config_text(spec: &NodeSpec, placement: Placement) -> Result<String, HarnessError> {
    let lacks = |what: &str| {
        Err(HarnessError::node(
            &spec.name,
            format!("its build {} has no {what}", spec.build.name()),
        ))
    };
    if let Placement::PrivateNetwork { .. } = placement {
        return lacks("peer socket beyond loopback (fiber.allow_non_loopback)");
    }
    if spec.forwarding.fee_rate.is_some_and(|rate| rate != 0) {
        return lacks("forwarding fee (fee_rate)");
    }
    if spec
        .audit
        .mutual_stale
        .is_some_and(|m| m != dlp_node_api::MutualStale::Wait)
    {
        return lacks("mutual_stale other than \"wait\"");
    }
    if spec
        .audit
        .on_force_close_request
        .is_some_and(|a| a != dlp_node_api::OnForceCloseRequest::ForceClose)
    {
        return lacks("on_force_close_request other than \"force_close\"");
    }
    let mut text = format!(
        "[store]\nbackend = \"{}\"\n\
         [rpc]\nlistening_addr = \"127.0.0.1:0\"\nallow_non_loopback = false\n\
         enabled_modules = [\"info\", \"peer\", \"channel\", \"payment\", \"invoice\", \"admin\", \"dev\"]\n\
         [fiber]\nlistening_addr = \"127.0.0.1:0\"\n",
        spec.backend
    );
    if let Some(url) = &spec.chain_url {
        text.push_str(&format!("[chain]\nrpc_url = \"{url}\"\n"));
    }
    text.push_str(&format!("[dev]\nseed = {}\n", spec.seed));
    if spec.backups.automatic {
        text.push_str(&format!(
            "[backup]\nauto = true\ncoalesce_secs = {AUTO_BACKUP_COALESCE_SECS}\n"
        ));
    }
    text.push_str("[audit]\n");
    push_audit_policy(&mut text, spec);
    Ok(text)
}

/// `policy` and `on_audit_failure`, which every build reads.
fn push_audit_policy(text: &mut String, spec: &NodeSpec) {
    if let Some(policy) = spec.audit.policy {
        text.push_str(&format!("policy = \"{policy}\"\n"));
    }
    if let Some(on_failure) = spec.audit.on_failure {
        let value = match on_failure {
            OnAuditFailure::Hold => "hold",
            OnAuditFailure::RequestClose => "request_close",
        };
        text.push_str(&format!("on_audit_failure = \"{value}\"\n"));
    }
}

/// The config of a build that reads what this one does.
fn current_config_text(spec: &NodeSpec, placement: Placement) -> String {
    let (rpc, peer, beyond_loopback) = match placement {
        Placement::Loopback => ("127.0.0.1:0".to_string(), "127.0.0.1:0".to_string(), false),
        Placement::PrivateNetwork {
            rpc_port,
            peer_port,
        } => (
            format!("0.0.0.0:{rpc_port}"),
            format!("0.0.0.0:{peer_port}"),
            true,
        ),
    };
    let mut text = format!(
        "[store]\nbackend = \"{}\"\n\
         [rpc]\nlistening_addr = \"{rpc}\"\nallow_non_loopback = {beyond_loopback}\n\
         enabled_modules = [\"info\", \"peer\", \"channel\", \"payment\", \"invoice\", \"graph\", \"admin\", \"dev\"]\n\
         [fiber]\nlistening_addr = \"{peer}\"\nallow_non_loopback = {beyond_loopback}\n",
        spec.backend
    );
    if let Some(rate) = spec.forwarding.fee_rate {
        text.push_str(&format!("[channel]\nfee_rate = {rate}\n"));
    }
    if let Some(url) = &spec.chain_url {
        text.push_str(&format!("[chain]\nrpc_url = \"{url}\"\n"));
    }
    text.push_str(&format!("[dev]\nseed = {}\n", spec.seed));
    text.push_str(&format!("[backup]\nkeep = {}\n", u32::MAX));
    if spec.backups.automatic {
        text.push_str(&format!(
            "auto = true\ncoalesce_secs = {AUTO_BACKUP_COALESCE_SECS}\n"
        ));
    }
    text.push_str(&format!(
        "[audit]\nstale_reveal_after_ms = {STALE_REVEAL_AFTER_MS}\n"
    ));
    push_audit_policy(&mut text, spec);
    if let Some(mode) = spec.audit.mutual_stale {
        text.push_str(&format!("mutual_stale = \"{mode}\"\n"));
    }
    if let Some(answer) = spec.audit.on_force_close_request {
        text.push_str(&format!("on_force_close_request = \"{answer}\"\n"));
    }
    text
}

/// A secret key derived from the seed, the node's name and a role.
fn derived_key(seed: u64, name: &str, role: &str) -> secp256k1::SecretKey {
    let mut attempt = 0u32;
    loop {
        let mut data = b"dlp-harness/key/v1".to_vec();
        data.extend_from_slice(&seed.to_be_bytes());
        data.extend_from_slice(name.as_bytes());
        data.push(0);
        data.extend_from_slice(role.as_bytes());
        data.extend_from_slice(&attempt.to_be_bytes());
        // A digest is a valid key except with negligible probability; try the next if not.
        if let Ok(key) = secp256k1::SecretKey::from_secret_bytes(Hash32::digest(&data).0) {
            return key;
        }
        attempt += 1;
    }
}

/// The node's log file on the host, for the launchers that write one.
pub fn log_path(home: &Path) -> std::path::PathBuf {
    home.join("node.log")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::{AuditSettings, BackupSettings, ForwardingSettings, NodeBuild};
    use dlp_node::config::Config;
    use dlp_node_api::{AuditPolicy, Backend, MutualStale, OnForceCloseRequest};

    #[test]
    fn the_config_parses_and_carries_the_spec() {
        let spec = NodeSpec {
            name: "bob".into(),
            backend: Backend::Sqlite,
            seed: 7,
            audit: AuditSettings {
                policy: Some(AuditPolicy::Strict),
                on_failure: Some(OnAuditFailure::RequestClose),
                mutual_stale: Some(MutualStale::Wait),
                on_force_close_request: Some(OnForceCloseRequest::Ignore),
            },
            chain_url: Some("http://127.0.0.1:1".into()),
            home: "/nonexistent".into(),
            backups: BackupSettings::default(),
            forwarding: ForwardingSettings {
                fee_rate: Some(2_500),
            },
            build: NodeBuild::Current,
        };
        let config: Config = config_text(&spec, Placement::Loopback)
            .expect("current")
            .parse()
            .expect("a valid config");
        assert_eq!(config.store.backend, Backend::Sqlite);
        assert_eq!(config.dev.seed, Some(7));
        assert_eq!(config.audit.policy, AuditPolicy::Strict);
        assert_eq!(
            config.audit.on_audit_failure,
            Some(OnAuditFailure::RequestClose)
        );
        assert_eq!(config.audit.mutual_stale, Some(MutualStale::Wait));
        assert_eq!(
            config.audit.on_force_close_request,
            OnForceCloseRequest::Ignore
        );
        assert_eq!(config.audit.stale_reveal_after_ms, STALE_REVEAL_AFTER_MS);
        assert_eq!(config.channel.fee_rate, 2_500);
        // Unset keys stay unset: the node's own defaults apply.
        let plain = NodeSpec {
            audit: AuditSettings::default(),
            forwarding: ForwardingSettings::default(),
            ..spec.clone()
        };
        let config: Config = config_text(&plain, Placement::Loopback)
            .expect("current")
            .parse()
            .expect("a valid config");
        assert_eq!(
            config.audit,
            dlp_node::config::AuditConfig {
                stale_reveal_after_ms: STALE_REVEAL_AFTER_MS,
                ..Default::default()
            }
        );
        assert_eq!(config.channel, dlp_node::config::ChannelConfig::default());
        assert_eq!(config.backup.keep, u32::MAX);
        assert!(!config.backup.auto, "automatic backups only when asked for");
        assert!(!config.rpc.allow_non_loopback && !config.fiber.allow_non_loopback);
        let placed = Placement::PrivateNetwork {
            rpc_port: 8227,
            peer_port: 8228,
        };
        let config: Config = config_text(&spec, placed)
            .expect("current")
            .parse()
            .expect("a valid config");
        assert_eq!(config.fiber.listening_addr.to_string(), "0.0.0.0:8228");
        assert!(config.rpc.allow_non_loopback && config.fiber.allow_non_loopback);
        let auto = NodeSpec {
            backups: BackupSettings {
                automatic: true,
                space_limit: None,
            },
            ..spec.clone()
        };
        let config: Config = config_text(&auto, Placement::Loopback)
            .expect("current")
            .parse()
            .expect("a valid config");
        assert!(config.backup.auto);
        assert_eq!(config.backup.coalesce_secs, AUTO_BACKUP_COALESCE_SECS);
        assert_eq!(config.backup.keep, u32::MAX);
        assert_eq!(derived_key(7, "bob", "node"), derived_key(7, "bob", "node"));
        assert_ne!(
            derived_key(7, "bob", "node"),
            derived_key(7, "alice", "node")
        );
    }

    #[test]
    fn a_pre_routing_build_gets_only_the_keys_it_reads_and_refuses_what_it_lacks() {
        let named = NodeBuild::Named(crate::driver::NamedBuild {
            name: "pre-routing".into(),
            commit: "d260f970797a4bf8199525be2108726f6aefc98d".into(),
            dialect: Dialect::PreRouting,
            binaries: crate::versions::Binaries {
                node: "/x/dlp-node".into(),
                chain: "/x/dlp-chain".into(),
            },
        });
        let spec = NodeSpec {
            name: "bob".into(),
            backend: Backend::Rocksdb,
            seed: 7,
            audit: AuditSettings {
                policy: Some(AuditPolicy::Strict),
                ..AuditSettings::default()
            },
            chain_url: Some("http://127.0.0.1:1".into()),
            home: "/nonexistent".into(),
            backups: BackupSettings::default(),
            forwarding: ForwardingSettings::default(),
            build: named,
        };
        let text = config_text(&spec, Placement::Loopback).expect("a pre-routing config");
        for absent in [
            "graph",
            "keep",
            "stale_reveal_after_ms",
            "allow_non_loopback = true",
        ] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        // This build reads it too (a subset of its keys), with the spec's settings.
        let config: Config = text.parse().expect("valid");
        assert_eq!(config.audit.policy, AuditPolicy::Strict);
        assert_eq!(config.store.backend, Backend::Rocksdb);
        let refuses = |spec: &NodeSpec, placement: Placement, what: &str| {
            let err = config_text(spec, placement).expect_err(what);
            assert!(err.to_string().contains(what), "{err}");
        };
        let placed = Placement::PrivateNetwork {
            rpc_port: 8227,
            peer_port: 8228,
        };
        refuses(&spec, placed, "beyond loopback");
        let fee = NodeSpec {
            forwarding: ForwardingSettings { fee_rate: Some(1) },
            ..spec.clone()
        };
        refuses(&fee, Placement::Loopback, "fee_rate");
        let reveal = NodeSpec {
            audit: AuditSettings {
                mutual_stale: Some(MutualStale::Reveal),
                ..AuditSettings::default()
            },
            ..spec.clone()
        };
        refuses(&reveal, Placement::Loopback, "mutual_stale");
        let home = std::path::Path::new("/h");
        let backup = std::path::Path::new("/b");
        let err = restore_args(Dialect::PreRouting, home, backup, Digests::Bypassed)
            .expect_err("no such flag");
        assert!(
            err.to_string().contains("--accept-undigested-backup"),
            "{err}"
        );
        let args = restore_args(Dialect::Current, home, backup, Digests::Bypassed).expect("ok");
        assert_eq!(
            args.last()
                .map(|a| a.to_string_lossy().into_owned())
                .as_deref(),
            Some("--accept-undigested-backup")
        );
    }
}
