//! The verbs that look at what a node holds: automatic backups, a backup's files, the
//! channels it lists, and where the peer stood in an audit.

use std::path::Path;

use crate::error::HarnessError;
use crate::steps::Scenario;

/// Steps start at line 12.
const BASE: &str = "description = \"d\"\n[nodes.alice]\nauto_backup = true\n[nodes.bob]\n\
    [nodes.carol]\n[[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n";

fn parse(steps: &[&str]) -> Result<Scenario, HarnessError> {
    super::support::parse_steps(BASE, steps)
}

/// The line and message of the refusal.
fn refused(steps: &[&str]) -> (usize, String) {
    super::support::refused_steps(BASE, steps)
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
        super::support::step_texts(&s),
        super::support::step_texts(&again)
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
    let (_, msg) =
        refused(&["expect_channels = { node = \"alice\", count = 1, state = \"Closed(0x1)\" }"]);
    assert!(msg.contains("closed channels are not counted"), "{msg}");
    let (_, msg) =
        refused(&["expect_channels = { node = \"alice\", peer = \"alice\", count = 1 }"]);
    assert!(msg.contains("is the node itself"), "{msg}");
    let (_, msg) = refused(&["expect_channels = { node = \"alice\", peer = \"eve\", count = 1 }"]);
    assert!(msg.contains("unknown node \"eve\""), "{msg}");
    let (_, msg) = refused(&["expect_channels = { node = \"alice\", count = 257 }"]);
    assert!(msg.contains("at most 256"), "{msg}");
    parse(&["expect_channels = { node = \"alice\", count = 1, state = \"ShuttingDown(0x1)\" }"])
        .expect("flags as printed");
    let (_, msg) = refused(&[
        "expect_audit = { node = \"alice\", channel = \"ab\", outcome = \"passed\", peer = \"aside\" }",
    ]);
    assert!(msg.contains("aside"), "{msg}");
}

#[test]
fn where_the_peer_stands_in_an_audit() {
    use crate::steps::AuditPeer::{self, *};
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
