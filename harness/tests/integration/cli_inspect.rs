//! The inspection verbs through the `dlp-harness` binary: `check` refuses what cannot work at
//! its line (exit 2), and a failing `expect_backup_files` names what is missing and lists what
//! the backup holds (exit 1).

use crate::testkit::{DEADLINE, OutputWithin, harness, write};

/// Steps start at line 12.
const FIBER: &str = "description = \"d\"\nbackends = [\"sqlite\"]\n[nodes.fiber1]\n\
    auto_backup = true\n[nodes.fiber2]\n\
    [[channels]]\nname = \"c\"\nfrom = \"fiber1\"\nto = \"fiber2\"\namount = 100_000\n";

#[test]
fn check_refuses_an_automatic_backup_of_a_node_without_them_and_a_backup_of_another_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "no_auto.toml",
        &format!("{FIBER}[[steps]]\nwait_auto_backup = {{ node = \"fiber2\", name = \"a\" }}\n"),
    );
    let out = harness().arg("check").arg(&path).output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:12:1: wait_auto_backup: fiber2 takes no automatic backups",
            path.display()
        )),
        "{stderr}"
    );
    let path = write(
        dir.path(),
        "not_its_own.toml",
        &format!(
            "{FIBER}[[steps]]\nbackup = {{ node = \"fiber2\", name = \"b\" }}\n\
             [[steps]]\nexpect_backup_files = {{ node = \"fiber1\", backup = \"b\", store = true }}\n"
        ),
    );
    let out = harness().arg("check").arg(&path).output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:14:1: expect_backup_files: backup \"b\" is fiber2's, not fiber1's",
            path.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_backup_file_fails_naming_it_and_listing_what_is_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "missing.toml",
        &format!(
            "{FIBER}[[steps]]\nwait_auto_backup = {{ node = \"fiber1\", name = \"a\" }}\n\
             [[steps]]\nexpect_backup_files = {{ node = \"fiber1\", backup = \"a\", \
             files = [\"sk\", \"key\", \"db/CURRENT\"], store = true }}\n"
        ),
    );
    let out = harness()
        .arg("run")
        .arg(&path)
        .env("DLP_HARNESS_RUN_DIR", dir.path().join("runs"))
        .output_within(DEADLINE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // A SQLite backup: its store is data.sqlite, and it has no db/.
    let line = stderr
        .lines()
        .find(|l| l.starts_with("step 2 (expect_backup_files, line 14): expectation failed"))
        .unwrap_or_else(|| panic!("no failed step in:\n{stderr}"));
    assert!(line.contains(" lacks db/CURRENT; it holds: "), "{line}");
    for present in ["data.sqlite", "dlp-backup.json", "key", "sk"] {
        assert!(line.contains(present), "{present} not listed: {line}");
    }
}
