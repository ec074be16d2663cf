//! The processes of a container, seen from the host: which they are (its PID namespace, read
//! through `/proc`), and signals that reach only them. The driver kills what a dead run left in
//! a pooled container, and stops or crashes a node, by host PID; a PID that is not one of the
//! container's (a stale number, or 0, which the daemon reported for a process it had not
//! recorded yet, and which kill(1) takes for the whole process group) is never signalled.
//! Needs root, as the driver does.

/// The host PIDs of every process in the PID namespace of `init`, but `init` itself (zombies,
/// whose namespaces are gone, are not counted).
pub(super) fn processes_in(init: i64) -> Vec<u32> {
    let Ok(namespace) = std::fs::read_link(format!("/proc/{init}/ns/pid")) else {
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
        .collect()
}

/// The host PID of the process the container (init `init`) numbers `inside`.
pub(super) fn host_pid(init: i64, inside: u32) -> Option<u32> {
    processes_in(init).into_iter().find(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("NSpid:"))
                .and_then(|ids| ids.split_whitespace().last())
                .and_then(|id| id.parse::<u32>().ok())
                == Some(inside)
        })
    })
}

/// Send `signal` to each of `pids` that is a process of the container whose init is `init`
/// (kill(1); one that is gone already is no error). A PID of another namespace (the harness's
/// own, say, or a number the daemon reported as 0) is never signalled.
pub(super) async fn signal_in(init: i64, pids: &[u32], signal: &str) {
    let Ok(namespace) = std::fs::read_link(format!("/proc/{init}/ns/pid")) else {
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
