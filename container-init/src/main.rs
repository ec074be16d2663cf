//! `dlp-container-init`: the first process (PID 1) of every container the harness's container
//! driver starts, and the one that starts every other process in it.
//!
//! The driver runs the nodes, the chain and offline restores in long-lived containers: a node
//! restart is a new process in the same container (same address, same network namespace, same
//! drop rules), not a new container. `docker exec` would start those processes at ~0.1 s of the
//! daemon's and runc's CPU each, the largest cost left in a container run; so the driver asks
//! this init instead, over a Unix socket on a directory mounted into the container
//! (`--socket`): the init forks the command as its own child (so it is in the container's
//! namespaces and cgroup, which `docker pause` freezes), relays its output on the connection,
//! and reports its PID and its exit (`spawn.rs`).
//!
//! Containers of the driver's pool outlive the harness process that made them, so the next test
//! process reuses them. Who uses one is told by a lock file on the host, mounted into the
//! container at the same path (`--lock`): a harness process holds an exclusive `flock` on it
//! while the container is its own (the kernel lets go when that process dies, however it dies).
//! This init looks at the lock once a second; when nobody has held it for `--idle-secs`, it
//! removes the lock file (while holding the lock itself, so nobody can claim the container in
//! between) and its socket, and exits, which ends the container (the driver creates pooled
//! containers with auto-remove). A container without `--lock` (a run's private one) lives until
//! the driver removes it.
//!
//! Usage: `dlp-container-init --socket <path> [--lock <file> --idle-secs <n>]`.

mod idle;
mod spawn;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    socket: PathBuf,
    /// The pool's lock and the idle time, for a pooled container.
    lock: Option<(PathBuf, Duration)>,
}

const USAGE: &str = "usage: dlp-container-init --socket <path> [--lock <file> --idle-secs <n>]";

fn parse(args: &[String]) -> Result<Options, String> {
    let (mut socket, mut lock, mut idle) = (None, None, None);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value ({USAGE})"))
        };
        match arg.as_str() {
            "--socket" => socket = Some(PathBuf::from(value("--socket")?)),
            "--lock" => lock = Some(PathBuf::from(value("--lock")?)),
            "--idle-secs" => {
                let text = value("--idle-secs")?;
                let secs: u64 = text
                    .parse()
                    .map_err(|_| format!("--idle-secs {text}: not a number of seconds"))?;
                idle = Some(Duration::from_secs(secs));
            }
            other => return Err(format!("unknown argument {other} ({USAGE})")),
        }
    }
    let socket = socket.ok_or_else(|| format!("--socket is required ({USAGE})"))?;
    let lock = match (lock, idle) {
        (None, None) => None,
        (Some(lock), Some(idle)) => Some((lock, idle)),
        _ => return Err(format!("--lock and --idle-secs go together ({USAGE})")),
    };
    Ok(Options { socket, lock })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("dlp-container-init: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match spawn::listen(&options.socket) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!(
                "dlp-container-init: cannot listen on {}: {e}",
                options.socket.display()
            );
            return ExitCode::from(1);
        }
    };
    std::thread::spawn(move || spawn::serve(listener));
    println!(
        "dlp-container-init: starting commands on {}",
        options.socket.display()
    );
    match options.lock {
        None => loop {
            std::thread::park();
        },
        Some((lock, idle)) => {
            idle::until_unclaimed(&lock, idle);
            let _ = std::fs::remove_file(&options.socket);
            ExitCode::SUCCESS
        }
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
        assert_eq!(
            parse(&args(&["--socket", "/s"])),
            Ok(Options {
                socket: "/s".into(),
                lock: None
            })
        );
        assert_eq!(
            parse(&args(&[
                "--socket",
                "/s",
                "--lock",
                "/x",
                "--idle-secs",
                "3"
            ])),
            Ok(Options {
                socket: "/s".into(),
                lock: Some(("/x".into(), Duration::from_secs(3)))
            })
        );
        assert!(parse(&[]).is_err());
        assert!(parse(&args(&["--socket", "/s", "--lock", "/x"])).is_err());
        assert!(
            parse(&args(&[
                "--socket",
                "/s",
                "--idle-secs",
                "x",
                "--lock",
                "/x"
            ]))
            .is_err()
        );
        assert!(parse(&args(&["--bogus"])).is_err());
    }
}
