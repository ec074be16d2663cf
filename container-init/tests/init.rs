//! The init as the container driver uses it: it starts commands asked for on its socket and
//! reports their PID, output and exit; it stays while a harness process holds its pool lock,
//! and exits (removing the lock file and the socket) once the lock has been free for the idle
//! time.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("dlp-container-init-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("test dir");
    dir
}

fn init(args: &[&str]) -> (Child, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dlp-container-init"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the init");
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    (child, lines)
}

/// Read lines until one ends with `suffix` (all of them, for a failure message).
fn until(lines: &mut impl Iterator<Item = std::io::Result<String>>, suffix: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        let done = line.ends_with(suffix);
        seen.push(line);
        if done {
            return seen;
        }
    }
    panic!("no line ending with {suffix:?}: {seen:?}");
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "still running after {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Frames of one answer: (tag, payload), up to the end of the connection.
fn frames(mut stream: UnixStream) -> Vec<(u8, Vec<u8>)> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("read the answer");
    let mut out = Vec::new();
    let mut rest = &all[..];
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[1..5].try_into().expect("length")) as usize;
        out.push((rest[0], rest[5..5 + len].to_vec()));
        rest = &rest[5 + len..];
    }
    out
}

fn ask(socket: &Path, args: &[&str]) -> Vec<(u8, Vec<u8>)> {
    let mut stream = UnixStream::connect(socket).expect("connect");
    let mut request = Vec::new();
    for arg in args {
        request.extend_from_slice(arg.as_bytes());
        request.push(0);
    }
    request.push(0);
    stream.write_all(&request).expect("send");
    frames(stream)
}

#[test]
fn starts_commands_and_reports_pid_output_and_exit() {
    let dir = dir("spawn");
    let socket = dir.join("init.sock");
    let (mut child, mut lines) = init(&["--socket", socket.to_str().expect("utf8")]);
    until(&mut lines, socket.to_str().expect("utf8"));

    let answer = ask(
        &socket,
        &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(answer.first().map(|f| f.0), Some(b'P'), "{answer:?}");
    let output: Vec<u8> = answer
        .iter()
        .filter(|f| f.0 == b'O')
        .flat_map(|f| f.1.clone())
        .collect();
    assert_eq!(String::from_utf8_lossy(&output), "out\nerr\n");
    assert_eq!(answer.last(), Some(&(b'X', b"3".to_vec())), "{answer:?}");

    let killed = ask(&socket, &["/bin/sh", "-c", "kill -9 $$"]);
    assert_eq!(
        killed.last(),
        Some(&(b'X', b"signal 9".to_vec())),
        "{killed:?}"
    );

    let missing = ask(&socket, &["/nonexistent/program"]);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].0, b'E');
    assert!(String::from_utf8_lossy(&missing[0].1).contains("/nonexistent/program"));

    child.kill().expect("kill the init");
    child.wait().expect("reap");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn stays_while_the_lock_is_held_and_retires_once_it_is_free() {
    let dir = dir("idle");
    let lock = dir.join("pooled.lock");
    let socket = dir.join("pooled.sock");
    std::fs::write(&lock, b"").expect("lock file");
    let holder = File::open(&lock).expect("open the lock");
    holder.lock().expect("lock");

    let (mut child, mut lines) = init(&[
        "--socket",
        socket.to_str().expect("utf8"),
        "--lock",
        lock.to_str().expect("utf8"),
        "--idle-secs",
        "0",
    ]);
    until(&mut lines, "Claimed");
    assert!(lock.exists(), "a held lock is never removed");
    assert!(
        child.try_wait().expect("wait").is_none(),
        "it stays while the lock is held"
    );

    drop(holder);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let rest: Vec<String> = lines.map(|l| l.expect("line")).collect();
    assert!(status.success(), "{status:?} {rest:?}");
    assert!(rest.iter().any(|l| l.ends_with("Retired")), "{rest:?}");
    assert!(!lock.exists(), "retiring removes the lock file");
    assert!(!socket.exists(), "and the socket");
    std::fs::remove_dir_all(&dir).expect("cleanup");

    let refused = Command::new(env!("CARGO_BIN_EXE_dlp-container-init"))
        .args(["--socket", "/nowhere.sock", "--lock", "/nowhere"])
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("go together"));
}
