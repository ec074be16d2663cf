//! The pooled container's idle timer: look at the pool's lock file once a second, and return
//! when nobody has held it for the idle time (having removed it, while holding it), or when it
//! is gone.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the lock is looked at.
const POLL: Duration = Duration::from_secs(1);

/// What one look at the lock file found.
#[derive(Debug, PartialEq, Eq)]
pub enum Look {
    /// Someone holds it.
    Claimed,
    /// Nobody holds it (we held it for an instant, and let go).
    Free,
    /// The file is gone: the container is retired.
    Gone,
    /// Free for long enough: the file was removed while we held it.
    Retired,
}

pub fn look(lock: &Path, free_for: Option<Duration>, idle: Duration) -> Look {
    let file = match File::open(lock) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Look::Gone,
        // Anything else is no proof that nobody holds it: never end a container on a doubt.
        Err(_) => return Look::Claimed,
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
        Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => Look::Claimed,
    }
}

/// Wait until the lock has been free for `idle` (or is gone), printing each change.
pub fn until_unclaimed(lock: &Path, idle: Duration) {
    let mut free_since: Option<Instant> = None;
    let mut last = None;
    loop {
        let now = look(lock, free_since.map(|t| t.elapsed()), idle);
        if last.as_ref() != Some(&now) {
            println!("dlp-container-init: {now:?}");
        }
        match now {
            Look::Claimed => free_since = None,
            Look::Free => {
                free_since.get_or_insert_with(Instant::now);
            }
            Look::Gone | Look::Retired => return,
        }
        last = Some(now);
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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
