//! The RPC server's resource limits, and the HTTP middleware that makes an oversize body a 413.
//!
//! Why each limit exists:
//! - **Batch size** ([`MAX_BATCH_CALLS`]): a batch runs its calls one after the other, each
//!   taking a turn of the node core, so an unbounded batch (20,000 calls) kept the core busy
//!   long enough to hold a payment for 37 s. Over the limit the whole batch is refused with
//!   one JSON-RPC error and nothing in it runs.
//! - **Request body** ([`MAX_REQUEST_BODY_BYTES`]): enough for a full batch of the largest calls
//!   (100 `send_payment`s with 16 KiB invoices); the body is buffered before parsing.
//! - **Response body** ([`MAX_RESPONSE_BODY_BYTES`]): jsonrpsee's default, kept explicit. Inputs
//!   of the methods that change state are bounded (see `rpc.rs`), so their answers stay far
//!   below it: an answer that is refused as too big must never be one whose change persisted.
//! - **Field lengths** ([`MAX_PEER_ADDRESS_LEN`], [`MAX_STEP_LEN`], and the invoice limits in
//!   `core::payments::invoice`): free text is stored, echoed in errors and carried by every backup.
//!
//! jsonrpsee answers 413 when `Content-Length` is over the limit, but a chunked body has no
//! length: it counts the bytes while reading and reports the overflow as a stream error, which
//! it answers with 500. [`BodyLimitLayer`] counts the same bytes one layer further in and, when
//! the limit was passed, replaces that answer with jsonrpsee's own 413.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use jsonrpsee::RpcModule;
use jsonrpsee::server::{
    BatchRequestConfig, HttpRequest, HttpResponse, Server, ServerConfig, ServerHandle,
};

use super::RpcContext;

/// Most calls in one JSON-RPC batch.
pub(crate) const MAX_BATCH_CALLS: u32 = 100;
/// Largest request body, in bytes (2 MiB), chunked or not; over it the answer is HTTP 413.
pub(crate) const MAX_REQUEST_BODY_BYTES: u32 = 2 * 1024 * 1024;
/// Largest response body, in bytes (10 MiB).
pub(crate) const MAX_RESPONSE_BODY_BYTES: u32 = 10 * 1024 * 1024;
/// Longest `connect_peer` address, in bytes (a real one is at most about 130).
pub(crate) const MAX_PEER_ADDRESS_LEN: usize = 256;
/// Most inputs one `dev_pin_order` pins.
pub(crate) use dlp_node_api::limits::MAX_PINNED_INPUTS;
/// Longest `dev_hold` step name, in bytes (`received:ReestablishChannel` is 27).
pub(crate) use dlp_node_api::limits::MAX_STEP_LEN;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serve `module` on `addr` with the limits above; returns the bound address and the handle.
pub(crate) async fn start_server(
    addr: SocketAddr,
    module: RpcModule<RpcContext>,
) -> Result<(SocketAddr, ServerHandle), std::io::Error> {
    let config = ServerConfig::builder()
        .max_request_body_size(MAX_REQUEST_BODY_BYTES)
        .max_response_body_size(MAX_RESPONSE_BODY_BYTES)
        .set_batch_request_config(BatchRequestConfig::Limit(MAX_BATCH_CALLS))
        .build();
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(BodyLimitLayer {
            limit: MAX_REQUEST_BODY_BYTES,
        }))
        .build(addr)
        .await?;
    let bound = server.local_addr()?;
    Ok((bound, server.start(module)))
}

/// Turns "body over the limit" into HTTP 413 for bodies without a `Content-Length`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimitLayer {
    /// Bytes; must equal the server's `max_request_body_size`.
    pub(crate) limit: u32,
}

impl<S> tower::Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// The service of [`BodyLimitLayer`].
#[derive(Debug, Clone)]
pub(crate) struct BodyLimit<S> {
    inner: S,
    limit: u32,
}

impl<S, B> tower::Service<HttpRequest<B>> for BodyLimit<S>
where
    S: tower::Service<HttpRequest<CountedBody<B>>, Response = HttpResponse, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        let limit = self.limit;
        let over = Arc::new(AtomicBool::new(false));
        let flag = over.clone();
        let request = request.map(|body| CountedBody {
            inner: Box::pin(body),
            seen: 0,
            limit: u64::from(limit),
            over: flag,
        });
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if over.load(Ordering::Acquire) {
                tracing::warn!(limit, "RPC request body over the limit; answered 413");
                return Ok(jsonrpsee::server::http::response::too_large(limit));
            }
            Ok(response)
        })
    }
}

/// A request body that fails once more than `limit` bytes arrived, and says so in `over`.
#[derive(Debug)]
pub(crate) struct CountedBody<B> {
    inner: Pin<Box<B>>,
    seen: u64,
    limit: u64,
    over: Arc<AtomicBool>,
}

/// The error a [`CountedBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("request body is over the limit of {0} bytes")]
pub(crate) struct BodyTooLarge(u64);

impl<B> Body for CountedBody<B>
where
    B: Body,
    B::Data: AsRef<[u8]>,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let this = &mut *self;
        if this.seen > this.limit {
            return Poll::Ready(Some(Err(BodyTooLarge(this.limit).into())));
        }
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = u64::try_from(data.as_ref().len()).unwrap_or(u64::MAX);
                    this.seen = this.seen.saturating_add(len);
                    if this.seen > this.limit {
                        this.over.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(BodyTooLarge(this.limit).into())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
