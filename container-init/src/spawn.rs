//! Commands started on request: the driver connects to the init's Unix socket, sends a command
//! line, and reads back what became of it, all on that one connection.
//!
//! Request: the program and its arguments, each ended by a NUL byte, then one more NUL (an empty
//! argument ends the list); at most [`MAX_ARGS`] arguments of [`MAX_REQUEST`] bytes in all.
//!
//! Answer: frames of a tag byte, a big-endian `u32` length and that many bytes:
//! - `P`: the child's PID, in decimal (as the container's PID namespace numbers it), first;
//! - `O`: output, stdout and stderr through one pipe, in the order the child wrote them;
//! - `X`: its exit, last: the exit code in decimal, or `signal <n>`;
//! - `E`: the command could not be started (why), the only frame then.
//!
//! The child's stdin is empty. If the driver goes away (its process died), the output is read
//! and dropped, so the child never blocks on a full pipe: what a dead run left running is the
//! next claimant's to kill.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Most arguments a request may carry.
pub const MAX_ARGS: usize = 256;
/// Most bytes a request may take.
pub const MAX_REQUEST: usize = 1 << 20;

/// Listen on `path` (a socket left there by an earlier init is replaced).
pub fn listen(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    UnixListener::bind(path)
}

/// Serve every connection, each on a thread of its own.
pub fn serve(listener: UnixListener) {
    for connection in listener.incoming() {
        match connection {
            Ok(stream) => {
                std::thread::spawn(move || run(stream));
            }
            Err(e) => eprintln!("dlp-container-init: accept: {e}"),
        }
    }
}

fn frame(out: &mut impl Write, tag: u8, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.write_all(&[tag])?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(&payload[..len as usize])
}

/// The command line of a request, or why it is not one.
pub fn read_request(input: &mut impl Read) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut current = Vec::new();
    let mut total = 0;
    let mut byte = [0u8; 1];
    loop {
        match input.read(&mut byte) {
            Ok(0) => return Err("the request ended before its terminating empty argument".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading the request: {e}")),
        }
        total += 1;
        if total > MAX_REQUEST {
            return Err(format!("a request is at most {MAX_REQUEST} bytes"));
        }
        if byte[0] != 0 {
            current.push(byte[0]);
            continue;
        }
        if current.is_empty() {
            if args.is_empty() {
                return Err("an empty command".into());
            }
            return Ok(args);
        }
        if args.len() == MAX_ARGS {
            return Err(format!("a request has at most {MAX_ARGS} arguments"));
        }
        let arg = String::from_utf8(std::mem::take(&mut current))
            .map_err(|_| "an argument is not UTF-8".to_string())?;
        args.push(arg);
    }
}

/// One connection: start its command, relay, report the exit.
fn run(mut stream: UnixStream) {
    let args = match read_request(&mut std::io::BufReader::new(&stream)) {
        Ok(args) => args,
        Err(e) => {
            let _ = frame(&mut stream, b'E', e.as_bytes());
            return;
        }
    };
    let started = std::io::pipe().and_then(|(reader, writer)| {
        let mut command = Command::new(&args[0]);
        command
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer);
        let child = command.spawn()?;
        // The command's copies of the pipe's writing end go with it: the reader sees the end
        // of the output when the child (and whatever inherited it) is done.
        drop(command);
        Ok((child, reader))
    });
    let (mut child, mut reader) = match started {
        Ok(started) => started,
        Err(e) => {
            let _ = frame(&mut stream, b'E', format!("{}: {e}", args[0]).as_bytes());
            return;
        }
    };
    let mut connected = frame(&mut stream, b'P', child.id().to_string().as_bytes()).is_ok();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if connected {
                    connected = frame(&mut stream, b'O', &buffer[..n]).is_ok();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let exit = match child.wait() {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => code.to_string(),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "unknown".to_string(),
        },
        Err(e) => format!("unknown ({e})"),
    };
    if connected {
        let _ = frame(&mut stream, b'X', exit.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_nul_separated_and_end_with_an_empty_argument() {
        let mut ok: &[u8] = b"/bin/echo\0a b\0\0";
        assert_eq!(
            read_request(&mut ok),
            Ok(vec!["/bin/echo".to_string(), "a b".to_string()])
        );
        let mut cut: &[u8] = b"/bin/echo\0a";
        assert!(read_request(&mut cut).is_err());
        let mut empty: &[u8] = b"\0";
        assert!(read_request(&mut empty).is_err());
        let many = "x\0".repeat(MAX_ARGS + 1) + "\0";
        assert!(read_request(&mut many.as_bytes()).is_err());
    }
}
