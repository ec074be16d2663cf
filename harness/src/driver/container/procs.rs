//! The processes of a container, seen from the host: which they are (its PID namespace, read
//! through `/proc`), and signals that reach only them. The driver kills what a dead run left in
//! a pooled container, and stops or crashes a node, by host PID; a PID that is not one of the
//! container's (a stale number, or 0, which the daemon reported for a process it had not
//! recorded yet, and which kill(1) takes for the whole process group) is never signalled.
//! Needs root, as the driver does.

/// A line of `/proc/<pid>/status`, after its `<key>:`.
fn status_field(pid: impl std::fmt::Display, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .map(|rest| rest.trim().to_string())
}

/// Whether `pid` is a container's first process now: PID 1 of a PID namespace nested in ours
/// (not a number the host gave to another process after the container's init ended).
pub(super) fn is_container_init(pid: i64) -> bool {
    let nested = status_field(pid, "NSpid").is_some_and(|ids| {
        let ids: Vec<&str> = ids.split_whitespace().collect();
        ids.len() >= 2 && ids.last() == Some(&"1")
    });
    let own = std::fs::read_link("/proc/self/ns/pid").ok();
    let its = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    nested && its.is_some() && its != own
}

/// The PID namespace of the container whose init is `init`, if that is still its init.
fn namespace_of(init: i64) -> Option<std::path::PathBuf> {
    if !is_container_init(init) {
        return None;
    }
    std::fs::read_link(format!("/proc/{init}/ns/pid")).ok()
}

/// Whether `pid` has exited and waits to be reaped (its namespace links still resolve).
fn zombie(pid: u32) -> bool {
    status_field(pid, "State").is_some_and(|state| state.starts_with('Z'))
}

/// The host PIDs of every live process in the PID namespace of `init`, but `init` itself (none
/// when `init` is no longer a container's init). Zombies are not counted: the init reaps only
/// its own children, and a process orphaned in the container (a restore whose strace was killed
/// first) stays a zombie that no signal removes.
pub(super) fn processes_in(init: i64) -> Vec<u32> {
    let Some(namespace) = namespace_of(init) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| i64::from(*pid) != init)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|ns| ns == namespace)
        })
        .filter(|pid| !zombie(*pid))
        .collect()
}

/// The host PID of the process the container (init `init`) numbers `inside`.
pub(super) fn host_pid(init: i64, inside: u32) -> Option<u32> {
    processes_in(init).into_iter().find(|pid| {
        status_field(pid, "NSpid")
            .and_then(|ids| ids.split_whitespace().last()?.parse::<u32>().ok())
            == Some(inside)
    })
}

/// Send `signal` to each of `pids` that is a process of the container whose init is `init`
/// (kill(1); one that is gone already is no error). A PID of another namespace (the harness's
/// own, say, or a number the daemon reported as 0), nor anything when `init` is no longer a
/// container's init (its number may be another process's now).
pub(super) async fn signal_in(init: i64, pids: &[u32], signal: &str) {
    let Some(namespace) = namespace_of(init) else {
        tracing::warn!(
            init,
            "not signalling: {init} is no longer a container's init"
        );
        return;
    };
    let ours: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|pid| *pid > 1 && i64::from(*pid) != init)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|ns| ns == namespace)
        })
        .collect();
    if ours.len() != pids.len() {
        tracing::warn!(
            ?pids,
            ?ours,
            "not signalling processes outside the container"
        );
    }
    if ours.is_empty() {
        return;
    }
    let _ = tokio::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .args(ours.iter().map(u32::to_string))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
}
