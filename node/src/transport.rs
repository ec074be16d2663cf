//! Peer transport: TCP on loopback, encrypted and authenticated with Noise.
//!
//! Handshake: `Noise_XX_25519_ChaChaPoly_SHA256`, the static key derived from the node key
//! ([`crate::crypto::noise_static_key`]). Noise alone proves possession of an X25519 key, not of
//! a node key, so the first transport message of each side is a `Hello` carrying its node public
//! key and a secp256k1 signature of the handshake hash (which both sides share and which covers
//! both static keys). A dialer refuses a peer whose Hello does not prove the public key it
//! dialled; a listener learns the peer's identity from the Hello.
//!
//! Framing: every Noise message travels as `u16` big-endian length + ciphertext. An application
//! frame ([`crate::wire`]) is split into chunks of at most [`CHUNK`] bytes, each prefixed by one
//! byte: 1 = more chunks follow, 0 = last. A connection is two tasks (reader and writer) sharing a
//! stateless transport with one nonce counter per direction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dlp_chain::{Hash32, Pubkey, Sig, sign_digest, verify_digest};
use secp256k1::SecretKey;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::wire::{self, PeerMessage};

const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
/// Largest plaintext chunk inside one Noise message (65535 minus tag and flag, rounded down).
pub(crate) const CHUNK: usize = 60_000;
/// Largest application frame accepted (protects against a peer announcing gigabytes).
pub(crate) const MAX_FRAME: usize = 16 * 1024 * 1024;
/// A handshake that takes longer than this is abandoned.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("peer {addr}: I/O: {0}", addr = .1)]
    Io(#[source] std::io::Error, SocketAddr),
    #[error("peer {addr}: noise handshake: {detail}")]
    Noise { addr: SocketAddr, detail: String },
    #[error("peer {addr}: handshake timed out after {HANDSHAKE_TIMEOUT:?}")]
    Timeout { addr: SocketAddr },
    #[error("peer {addr}: identity proof invalid: {detail}")]
    Identity { addr: SocketAddr, detail: String },
    #[error("peer {addr} proved key {got}, but {expected} was dialled")]
    WrongPeer {
        addr: SocketAddr,
        expected: Pubkey,
        got: Pubkey,
    },
}

/// What the transport reports to the node.
#[derive(Debug)]
pub(crate) enum TransportEvent {
    /// An authenticated connection is up.
    Connected(Box<Connection>),
    /// A decoded message from a peer.
    Message {
        conn_id: u64,
        pubkey: Pubkey,
        message: Box<PeerMessage>,
    },
    /// The connection ended (EOF, error, or a bad frame).
    Disconnected {
        conn_id: u64,
        pubkey: Pubkey,
        reason: String,
        /// The wire version the peer spoke, when it ended because it is not ours.
        other_wire_version: Option<u8>,
    },
}

/// One live, authenticated connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) conn_id: u64,
    pub(crate) pubkey: Pubkey,
    pub(crate) addr: SocketAddr,
    pub(crate) inbound: bool,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    start_reading: Option<tokio::sync::oneshot::Sender<()>>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Connection {
    /// Let the reader deliver messages. The node calls this once it has registered the
    /// connection, so no message can arrive before the node knows the connection exists.
    pub(crate) fn start_reading(&mut self) {
        if let Some(start) = self.start_reading.take() {
            let _ = start.send(());
        }
    }

    /// Queue a message. Returns false when the connection is already gone.
    pub(crate) fn send(&self, message: &PeerMessage) -> bool {
        self.outgoing.send(wire::encode(message)).is_ok()
    }

    /// Close the connection now; the peer sees EOF.
    pub(crate) fn close(&self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}

/// The node identity used for handshakes.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) secret: SecretKey,
    pub(crate) pubkey: Pubkey,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Hello {
    pubkey: Pubkey,
    signature: Sig,
}

fn binding_digest(handshake_hash: &[u8]) -> Hash32 {
    let mut data = b"dlp/noise-binding/v1".to_vec();
    data.extend_from_slice(handshake_hash);
    Hash32::digest(&data)
}

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

async fn read_noise_frame(reader: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Vec<u8>> {
    let len = reader.read_u16().await? as usize;
    let mut buf = vec![0u8; len];
    reader.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_noise_frame(
    writer: &mut (impl AsyncWriteExt + Unpin),
    data: &[u8],
) -> std::io::Result<()> {
    let len = u16::try_from(data.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "noise frame too large")
    })?;
    let mut frame = Vec::with_capacity(2 + data.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(data);
    writer.write_all(&frame).await
}

/// Run the XX handshake and the Hello exchange. Returns the transport and the peer's key.
async fn handshake(
    stream: &mut TcpStream,
    addr: SocketAddr,
    identity: &Identity,
    initiator: bool,
) -> Result<(snow::StatelessTransportState, Pubkey), TransportError> {
    let noise_err = |e: snow::Error| TransportError::Noise {
        addr,
        detail: e.to_string(),
    };
    let io_err = |e: std::io::Error| TransportError::Io(e, addr);
    let params: snow::params::NoiseParams = NOISE_PARAMS.parse().map_err(noise_err)?;
    let static_key = crate::crypto::noise_static_key(&identity.secret);
    let builder = snow::Builder::new(params)
        .local_private_key(&static_key)
        .map_err(noise_err)?;
    let mut state = if initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    }
    .map_err(noise_err)?;
    let mut buf = vec![0u8; 65535];
    let mut scratch = vec![0u8; 65535];
    // XX: -> e; <- e, ee, s, es; -> s, se.
    let mut my_turn = initiator;
    while !state.is_handshake_finished() {
        if my_turn {
            let n = state.write_message(&[], &mut buf).map_err(noise_err)?;
            write_noise_frame(stream, &buf[..n]).await.map_err(io_err)?;
        } else {
            let frame = read_noise_frame(stream).await.map_err(io_err)?;
            state
                .read_message(&frame, &mut scratch)
                .map_err(noise_err)?;
        }
        my_turn = !my_turn;
    }
    let digest = binding_digest(state.get_handshake_hash());
    let transport = state.into_stateless_transport_mode().map_err(noise_err)?;
    // Hello, each side with its own nonce 0.
    let hello = Hello {
        pubkey: identity.pubkey,
        signature: sign_digest(&identity.secret, &digest),
    };
    let plain = serde_json::to_vec(&hello).unwrap_or_default();
    let n = transport
        .write_message(0, &plain, &mut buf)
        .map_err(noise_err)?;
    write_noise_frame(stream, &buf[..n]).await.map_err(io_err)?;
    let frame = read_noise_frame(stream).await.map_err(io_err)?;
    let n = transport
        .read_message(0, &frame, &mut scratch)
        .map_err(noise_err)?;
    let theirs: Hello =
        serde_json::from_slice(&scratch[..n]).map_err(|e| TransportError::Identity {
            addr,
            detail: format!("malformed hello: {e}"),
        })?;
    if !verify_digest(&theirs.pubkey, &digest, &theirs.signature) {
        return Err(TransportError::Identity {
            addr,
            detail: format!(
                "signature does not prove key {} for this session",
                theirs.pubkey
            ),
        });
    }
    Ok((transport, theirs.pubkey))
}

fn spawn_connection(
    stream: TcpStream,
    addr: SocketAddr,
    transport: snow::StatelessTransportState,
    pubkey: Pubkey,
    inbound: bool,
    events: mpsc::UnboundedSender<TransportEvent>,
) -> Connection {
    let conn_id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    let transport = Arc::new(transport);
    let transport_for_reader = transport.clone();
    let (read_half, write_half) = stream.into_split();
    let (outgoing, rx) = mpsc::unbounded_channel();
    let (start_reading, start) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(tracing::Instrument::in_current_span(async move {
        if start.await.is_ok() {
            read_loop(read_half, transport_for_reader, conn_id, pubkey, events).await;
        }
    }));
    let writer = tokio::spawn(tracing::Instrument::in_current_span(write_loop(
        write_half, transport, rx,
    )));
    Connection {
        conn_id,
        pubkey,
        addr,
        inbound,
        outgoing,
        start_reading: Some(start_reading),
        reader,
        writer,
    }
}

async fn read_loop(
    mut half: OwnedReadHalf,
    transport: Arc<snow::StatelessTransportState>,
    conn_id: u64,
    pubkey: Pubkey,
    events: mpsc::UnboundedSender<TransportEvent>,
) {
    let mut nonce = 1u64; // nonce 0 carried the Hello
    let mut plain = vec![0u8; 65535];
    let mut message = Vec::new();
    let mut other_wire_version = None;
    let reason = loop {
        let frame = match read_noise_frame(&mut half).await {
            Ok(frame) => frame,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break "closed by peer".into();
            }
            Err(e) => break format!("read error: {e}"),
        };
        let n = match transport.read_message(nonce, &frame, &mut plain) {
            Ok(n) => n,
            Err(e) => break format!("decryption failed: {e}"),
        };
        nonce += 1;
        let Some((&more, data)) = plain[..n].split_first() else {
            break "empty chunk".into();
        };
        message.extend_from_slice(data);
        if message.len() > MAX_FRAME {
            break format!("frame larger than {MAX_FRAME} bytes");
        }
        if more == 1 {
            continue;
        }
        match wire::decode(&message) {
            Ok(decoded) => {
                let _ = events.send(TransportEvent::Message {
                    conn_id,
                    pubkey,
                    message: Box::new(decoded),
                });
            }
            Err(e) => {
                if let wire::DecodeError::Version(theirs) = e {
                    other_wire_version = Some(theirs);
                }
                break format!("bad message: {e}");
            }
        }
        message.clear();
    };
    let _ = events.send(TransportEvent::Disconnected {
        conn_id,
        pubkey,
        reason,
        other_wire_version,
    });
}

async fn write_loop(
    mut half: OwnedWriteHalf,
    transport: Arc<snow::StatelessTransportState>,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut nonce = 1u64;
    let mut cipher = vec![0u8; 65535];
    while let Some(frame) = rx.recv().await {
        let chunks: Vec<&[u8]> = frame.chunks(CHUNK).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut plain = Vec::with_capacity(chunk.len() + 1);
            plain.push(u8::from(i + 1 < chunks.len()));
            plain.extend_from_slice(chunk);
            let Ok(n) = transport.write_message(nonce, &plain, &mut cipher) else {
                return;
            };
            nonce += 1;
            if write_noise_frame(&mut half, &cipher[..n]).await.is_err() {
                return;
            }
        }
    }
    let _ = half.shutdown().await;
}

/// Dial `addr`, expecting the peer to prove `expected`.
pub(crate) async fn dial(
    addr: SocketAddr,
    expected: Pubkey,
    identity: &Identity,
    events: mpsc::UnboundedSender<TransportEvent>,
) -> Result<Connection, TransportError> {
    let mut stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| TransportError::Timeout { addr })?
        .map_err(|source| TransportError::Connect { addr, source })?;
    let _ = stream.set_nodelay(true);
    let (transport, got) = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        handshake(&mut stream, addr, identity, true),
    )
    .await
    .map_err(|_| TransportError::Timeout { addr })??;
    if got != expected {
        return Err(TransportError::WrongPeer {
            addr,
            expected,
            got,
        });
    }
    Ok(spawn_connection(
        stream, addr, transport, got, false, events,
    ))
}

/// Accept connections on `listener` until the task is aborted; every authenticated connection
/// is reported as [`TransportEvent::Connected`]. Failed handshakes are logged and dropped.
pub(crate) fn spawn_listener(
    listener: tokio::net::TcpListener,
    identity: Identity,
    events: mpsc::UnboundedSender<TransportEvent>,
) -> JoinHandle<()> {
    tokio::spawn(tracing::Instrument::in_current_span(async move {
        loop {
            let Ok((mut stream, addr)) = listener.accept().await else {
                continue;
            };
            let identity = identity.clone();
            let events = events.clone();
            tokio::spawn(tracing::Instrument::in_current_span(async move {
                let _ = stream.set_nodelay(true);
                let result = tokio::time::timeout(
                    HANDSHAKE_TIMEOUT,
                    handshake(&mut stream, addr, &identity, false),
                )
                .await
                .map_err(|_| TransportError::Timeout { addr })
                .and_then(|r| r);
                match result {
                    Ok((transport, pubkey)) => {
                        let conn =
                            spawn_connection(stream, addr, transport, pubkey, true, events.clone());
                        let _ = events.send(TransportEvent::Connected(Box::new(conn)));
                    }
                    Err(e) => tracing::warn!(error = %e, "inbound handshake failed"),
                }
            }));
        }
    }))
}
