//! The init as the container driver uses it: it stays while a harness process holds its pool
//! lock, and exits (removing the lock file) once the lock has been free for the idle time.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn stays_while_the_lock_is_held_and_retires_once_it_is_free() {
    let dir = std::env::temp_dir().join(format!("dlp-container-init-idle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("test setup");
    let lock = dir.join("pooled.lock");
    std::fs::write(&lock, b"").expect("test setup");
    let holder = File::open(&lock).expect("test setup");
    holder.lock().expect("test setup");

    let mut init = Command::new(env!("CARGO_BIN_EXE_dlp-container-init"))
        .args([
            "--lock",
            lock.to_str().expect("test setup"),
            "--idle-secs",
            "0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("test setup");
    let mut lines = BufReader::new(init.stdout.take().expect("test setup")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("test setup");
        seen.push(line.clone());
        if line.ends_with("Claimed") {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.ends_with("Claimed")),
        "{seen:?}"
    );
    assert!(lock.exists(), "a held lock is never removed");
    assert!(
        init.try_wait().expect("test setup").is_none(),
        "it stays while the lock is held"
    );

    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = init.try_wait().expect("test setup") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 20 s after the lock was freed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(status.success(), "{status:?} {rest:?}");
    assert!(rest.iter().any(|l| l.ends_with("Retired")), "{rest:?}");
    assert!(!lock.exists(), "retiring removes the lock file");
    std::fs::remove_dir_all(&dir).expect("test setup");

    let refused = Command::new(env!("CARGO_BIN_EXE_dlp-container-init"))
        .args(["--lock", "/nowhere"])
        .output()
        .expect("test setup");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("go together"));
}
