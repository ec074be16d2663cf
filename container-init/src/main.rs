//! `dlp-container-init`: the first process (PID 1) of every container the harness's container
//! driver starts. It does nothing itself: the driver runs the nodes, the chain and offline
//! restores in the container with `docker exec`, so a node restart is a new process in the same
//! container (same address, same network namespace, same drop rules) instead of a new container,
//! which costs the Docker daemon several times more.
//!
//! Containers of the driver's pool outlive the harness process that made them, so the next test
//! process reuses them. Who uses one is told by a lock file on the host, bind-mounted into the
//! container at the same path: a harness process holds an exclusive `flock` on it while the
//! container is its own (the kernel releases it when that process dies, however it dies). This
//! init looks at the lock once a second; when nobody has held it for `--idle-secs`, it removes
//! the file (while holding the lock itself, so nobody can claim the container in between) and
//! exits, which ends the container (the driver creates pooled containers with auto-remove). A
//! container without `--lock` (a run's private one) idles until the driver removes it.
//!
//! Usage: `dlp-container-init [--lock <file> --idle-secs <n>]`.
//!
//! It reaps no orphans: the processes the driver runs do not fork, except strace, which waits
//! for its child itself.

use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How often the lock is looked at.
const POLL: Duration = Duration::from_secs(1);

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// Idle until killed.
    Forever,
    /// Idle until the lock file is gone, or free for `idle`.
    WhileClaimed { lock: PathBuf, idle: Duration },
}

fn parse(args: &[String]) -> Result<Mode, String> {
    let mut lock = None;
    let mut idle = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--lock" => lock = Some(PathBuf::from(value("--lock")?)),
            "--idle-secs" => {
                let text = value("--idle-secs")?;
                let secs: u64 = text
                    .parse()
                    .map_err(|_| format!("--idle-secs {text}: not a number of seconds"))?;
                idle = Some(Duration::from_secs(secs));
            }
            other => {
                return Err(format!(
                    "unknown argument {other} (usage: dlp-container-init [--lock <file> --idle-secs <n>])"
                ));
            }
        }
    }
    match (lock, idle) {
        (None, None) => Ok(Mode::Forever),
        (Some(lock), Some(idle)) => Ok(Mode::WhileClaimed { lock, idle }),
        _ => Err("--lock and --idle-secs go together".into()),
    }
}

/// What one look at the lock file found.
#[derive(Debug, PartialEq, Eq)]
enum Look {
    /// Someone holds it.
    Claimed,
    /// Nobody holds it (we held it for an instant, and let go).
    Free,
    /// The file is gone: the container is retired.
    Gone,
    /// Free for long enough: the file was removed while we held it.
    Retired,
}

fn look(lock: &std::path::Path, free_for: Option<Duration>, idle: Duration) -> Look {
    let Ok(file) = File::open(lock) else {
        return Look::Gone;
    };
    match file.try_lock() {
        Ok(()) => {
            if free_for.is_some_and(|free| free >= idle) {
                // Still holding the lock: a claimant that opened the file before it was removed
                // finds it unlinked once it gets the lock, and moves on.
                let _ = std::fs::remove_file(lock);
                return Look::Retired;
            }
            Look::Free
        }
        Err(TryLockError::WouldBlock) => Look::Claimed,
        Err(TryLockError::Error(_)) => Look::Gone,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match parse(&args) {
        Ok(mode) => mode,
        Err(e) => {
            eprintln!("dlp-container-init: {e}");
            return ExitCode::from(2);
        }
    };
    let (lock, idle) = match mode {
        Mode::Forever => loop {
            std::thread::park();
        },
        Mode::WhileClaimed { lock, idle } => (lock, idle),
    };
    println!(
        "dlp-container-init: idle while {} is held, for {}s after",
        lock.display(),
        idle.as_secs()
    );
    let mut free_since: Option<Instant> = None;
    let mut last = None;
    loop {
        let now = look(&lock, free_since.map(|t| t.elapsed()), idle);
        if last.as_ref() != Some(&now) {
            println!("dlp-container-init: {now:?}");
        }
        match now {
            Look::Claimed => free_since = None,
            Look::Free => {
                free_since.get_or_insert_with(Instant::now);
            }
            Look::Gone | Look::Retired => {
                return ExitCode::SUCCESS;
            }
        }
        last = Some(now);
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(parse(&[]), Ok(Mode::Forever));
        assert_eq!(
            parse(&args(&["--lock", "/x", "--idle-secs", "3"])),
            Ok(Mode::WhileClaimed {
                lock: "/x".into(),
                idle: Duration::from_secs(3)
            })
        );
        assert!(parse(&args(&["--lock", "/x"])).is_err());
        assert!(parse(&args(&["--idle-secs", "x", "--lock", "/x"])).is_err());
        assert!(parse(&args(&["--bogus"])).is_err());
    }

    #[test]
    fn a_held_lock_is_claimed_a_free_one_retires_after_the_idle_time() {
        let dir = tempfile_dir();
        let path = dir.join("c.lock");
        std::fs::write(&path, b"").expect("test setup");
        let idle = Duration::from_secs(5);
        let holder = File::open(&path).expect("test setup");
        holder.lock().expect("test setup");
        assert_eq!(look(&path, Some(idle), idle), Look::Claimed);
        drop(holder);
        assert_eq!(look(&path, None, idle), Look::Free);
        assert_eq!(look(&path, Some(Duration::from_secs(1)), idle), Look::Free);
        assert!(path.exists(), "free, not yet retired");
        assert_eq!(look(&path, Some(idle), idle), Look::Retired);
        assert!(!path.exists(), "retiring removes the lock file");
        assert_eq!(look(&path, None, idle), Look::Gone);
        std::fs::remove_dir_all(&dir).expect("test setup");
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "dlp-container-init-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("test setup");
        dir
    }
}
