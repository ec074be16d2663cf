//! The fault verbs and expectations: `damage_backup`, `crash_restore`, `restore`'s and
//! `backup`'s `expect`, and the node key `backup_space_kb`, as `check` sees them.

use std::path::Path;

use crate::capability::{Capability, DriverKind};
use crate::error::HarnessError;
use crate::steps::Scenario;

/// Steps start at line 10 (two lines each); bob has two backups, `b1` and `b2`, alice one,
/// `a1` (lines 10, 12, 14): the step under test is at line 16.
const BASE: &str = "description = \"d\"\n[nodes.alice]\n[nodes.bob]\n\
    [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n";
const BACKUPS: [&str; 3] = [
    "backup = { node = \"bob\", name = \"b1\" }",
    "backup = { node = \"bob\", name = \"b2\" }",
    "backup = { node = \"alice\", name = \"a1\" }",
];

fn with_backups(steps: &[&str]) -> Vec<String> {
    BACKUPS
        .iter()
        .chain(steps)
        .map(|s| (*s).to_string())
        .collect()
}

fn parse(steps: &[&str]) -> Result<Scenario, HarnessError> {
    let all = with_backups(steps);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    super::support::parse_steps(BASE, &all)
}

/// The message of the refusal of the last step given.
fn refused(step: &str) -> String {
    let all = with_backups(&[step]);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let (line, msg) = super::support::refused_steps(BASE, &all);
    assert_eq!(line, 16, "{msg}");
    msg
}

#[test]
fn the_fault_verbs_parse_and_render_back() {
    let s = parse(&[
        "damage_backup = { node = \"bob\", backup = \"b1\", store = true, how = \"flip\" }",
        "damage_backup = { node = \"bob\", backup = \"b1\", file = \"db/CURRENT\", how = \"truncate\", offset = 3 }",
        "damage_backup = { node = \"bob\", backup = \"b1\", file = \"sk\", how = \"zero\", offset = 0, len = 8 }",
        "damage_backup = { node = \"bob\", backup = \"b1\", store = true, how = \"swap\", with = \"b2\" }",
        "damage_backup = { node = \"bob\", backup = \"b1\", file = \"key\", how = \"delete\" }",
        "restore = { node = \"bob\", backup = \"b1\", expect = \"refused\", reason_contains = \"SHA-256\" }",
        "crash_restore = { node = \"bob\", backup = \"b2\", at = \"rename:2\" }",
        "start = { node = \"bob\" }",
        "backup = { node = \"bob\", name = \"full\", expect = \"failed\", reason_contains = \"No space\" }",
    ])
    .expect("valid");
    let rendered = crate::scenario::render(&s.file, "");
    let again = Scenario::parse(Path::new("t.toml"), &rendered).expect("renders back");
    assert_eq!(
        super::support::step_texts(&s),
        super::support::step_texts(&again)
    );
}

#[test]
fn damage_names_exactly_one_target_of_the_nodes_own_backup() {
    for (step, want) in [
        (
            "damage_backup = { node = \"bob\", backup = \"b1\", how = \"flip\" }",
            "damage_backup: what to damage? give file = \"...\"",
        ),
        (
            "damage_backup = { node = \"bob\", backup = \"b1\", file = \"sk\", store = true, how = \"flip\" }",
            "damage_backup: give either file or store = true, not both",
        ),
        (
            "damage_backup = { node = \"bob\", backup = \"nope\", store = true, how = \"flip\" }",
            "damage_backup: no earlier backup step named \"nope\"",
        ),
        (
            "damage_backup = { node = \"bob\", backup = \"a1\", store = true, how = \"flip\" }",
            "damage_backup: backup \"a1\" is alice's, not bob's",
        ),
        (
            "damage_backup = { node = \"bob\", backup = \"b1\", file = \"../sk\", how = \"flip\" }",
            "damage_backup: path \"../sk\" has an empty, . or .. part",
        ),
        (
            "damage_backup = { node = \"bob\", backup = \"b1\", file = \"db/\", how = \"delete\" }",
            "damage_backup: file \"db/\" is a directory",
        ),
    ] {
        let msg = refused(step);
        assert!(msg.starts_with(want), "{step}\n{msg}");
    }
}

#[test]
fn swap_needs_another_backup_of_the_node_and_only_swap_takes_one() {
    for (step, want) in [
        (
            "damage_backup = { node = \"bob\", backup = \"b1\", store = true, how = \"swap\" }",
            "damage_backup: how = \"swap\" needs with = \"<backup>\"",
        ),
        (
            "damage_backup = { node = \"bob\", backup = \"b1\", store = true, how = \"swap\", with = \"b1\" }",
            "damage_backup: with names the damaged backup itself",
        ),
        (
            "damage_backup = { node = \"bob\", backup = \"b1\", store = true, how = \"swap\", with = \"a1\" }",
            "damage_backup: backup \"a1\" is alice's, not bob's",
        ),
        (
            "damage_backup = { node = \"bob\", backup = \"b1\", store = true, how = \"flip\", with = \"b2\" }",
            "damage_backup: with is only for how = \"swap\", not \"flip\"",
        ),
        (
            "damage_backup = { node = \"bob\", backup = \"b1\", store = true, how = \"delete\", offset = 1 }",
            "damage_backup: offset means nothing for how = \"delete\"",
        ),
        (
            "damage_backup = { node = \"bob\", backup = \"b1\", store = true, how = \"flip\", len = 1 }",
            "damage_backup: len is only for how = \"zero\"",
        ),
        (
            "damage_backup = { node = \"bob\", backup = \"b1\", store = true, how = \"zero\", len = 0 }",
            "damage_backup: len must be at least 1",
        ),
        (
            "damage_backup = { node = \"bob\", backup = \"b1\", store = true, how = \"zero\", offset = 2000000000 }",
            "damage_backup: offset must be at most 1073741824 bytes",
        ),
    ] {
        let msg = refused(step);
        assert!(msg.starts_with(want), "{step}\n{msg}");
    }
    let msg = refused(
        "damage_backup = { node = \"bob\", backup = \"b1\", store = true, how = \"bend\" }",
    );
    assert!(msg.contains("unknown variant `bend`"), "{msg}");
}

#[test]
fn a_kill_point_names_a_syscall_and_a_call_number() {
    for at in [
        "rename",
        "rename:0",
        "rename:100001",
        "Rename:1",
        ":1",
        "re name:1",
        "rename:x",
    ] {
        let msg = refused(&format!(
            "crash_restore = {{ node = \"bob\", backup = \"b1\", at = \"{at}\" }}"
        ));
        assert!(msg.starts_with("crash_restore: at = "), "{at}: {msg}");
        assert!(msg.contains("expected \"<syscall>:<n>\""), "{at}: {msg}");
    }
    let msg = refused("crash_restore = { node = \"bob\", backup = \"a1\", at = \"fsync:1\" }");
    assert_eq!(msg, "crash_restore: backup \"a1\" is alice's, not bob's");
}

#[test]
fn a_killed_restore_leaves_the_node_stopped_for_the_liveness_check() {
    // After crash_restore bob is stopped: a step that needs him must start him first.
    let (line, msg) = super::support::refused_steps(
        BASE,
        &[
            "backup = { node = \"bob\", name = \"b1\" }",
            "crash_restore = { node = \"bob\", backup = \"b1\", at = \"rename:1\" }",
            "pause = { node = \"bob\" }",
        ],
    );
    assert_eq!(line, 14, "{msg}");
    assert!(
        msg.contains("bob is not running here (stopped at line 12)"),
        "{msg}"
    );
}

#[test]
fn a_reason_belongs_to_a_refusal_and_a_failed_backup_names_nothing() {
    let msg = refused("restore = { node = \"bob\", backup = \"b1\", reason_contains = \"x\" }");
    assert_eq!(
        msg,
        "restore: reason_contains says what a refusal must say: it needs expect = \"refused\""
    );
    let msg = refused(
        "restore = { node = \"bob\", backup = \"b1\", expect = \"refused\", reason_contains = \"\" }",
    );
    assert!(msg.contains("must be 1 to 256 bytes"), "{msg}");
    let msg = refused("backup = { node = \"bob\", name = \"x\", reason_contains = \"full\" }");
    assert!(msg.contains("it needs expect = \"failed\""), "{msg}");
    // A failed backup is not there to restore.
    let (_, msg) = super::support::refused_steps(
        BASE,
        &[
            "backup = { node = \"bob\", name = \"full\", expect = \"failed\" }",
            "restore = { node = \"bob\", backup = \"full\" }",
        ],
    );
    assert_eq!(msg, "restore: no earlier backup step named \"full\"");
}

#[test]
fn backup_space_needs_a_driver_that_limits_it_and_a_sane_size() {
    let text = |kb: u64| {
        format!(
            "description = \"d\"\n[nodes.alice]\n[nodes.bob]\nbackup_space_kb = {kb}\n\
             [[steps]]\nbackup = {{ node = \"bob\", name = \"b\" }}\n"
        )
    };
    let s = Scenario::parse(Path::new("t.toml"), &text(64)).expect("valid");
    assert!(
        s.required_capabilities()
            .contains(&Capability::BackupSpaceLimit)
    );
    let err = s
        .check_capabilities(DriverKind::Process.capabilities())
        .expect_err("process cannot limit it");
    assert!(
        err.to_string().starts_with(
            "t.toml:3:8: node bob: backup_space_kb needs a size limit on the backup directory"
        ),
        "{err}"
    );
    s.check_capabilities(DriverKind::Container.capabilities())
        .expect("containers can");
    for kb in [15, 1_048_577] {
        let err = Scenario::parse(Path::new("t.toml"), &text(kb)).expect_err("out of range");
        assert!(
            err.to_string()
                .contains(&format!("backup_space_kb {kb} is not 16 to 1048576")),
            "{err}"
        );
    }
}
