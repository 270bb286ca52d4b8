//! One accepted connection: its slot under `--max-connections`, when it counts as idle, and
//! how it closes.
//!
//! hyper times out a request's headers only once their first bytes arrive and keeps an idle
//! keep-alive or HTTP/2 connection forever, so each connection carries an [`Activity`]: the
//! socket ([`Watched`]) notes the first bytes read, the service ([`Tracked`]) counts requests
//! in flight until their response body is finished, and [`Activity::idle`] resolves when the
//! connection has had nothing to do for too long.
//!
//! A request refused before its body was read (413, 401 on a large POST, ...) leaves the
//! client still sending; closing at once would make the kernel answer the rest with a reset,
//! which destroys the refusal before the client reads it. Such a connection lingers instead:
//! its write side is shut, and what the client still sends is read and discarded for a
//! bounded time and amount before the socket closes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response, header};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tower::Service;

use super::metrics;

/// The most a lingering connection reads and discards.
pub const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// A place under the connection cap, held for as long as the socket is open: by the
/// connection, then by its WebSocket after an upgrade, then while it lingers.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    pub fn new(permit: OwnedSemaphorePermit) -> Slot {
        metrics::connection_opened();
        Slot { _permit: permit }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::connection_closed();
    }
}

/// What the idle watchdog of one connection needs to know.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    /// When the last request began or ended, in milliseconds since `opened`.
    changed_ms: AtomicU64,
    in_flight: AtomicUsize,
    read_any: AtomicBool,
    /// A response refused a request that came with a body: close by lingering.
    linger: AtomicBool,
    /// Wakes the watchdog when its deadline may have come closer: the first bytes, the last
    /// request in flight ended.
    changed: Notify,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            opened: Instant::now(),
            changed_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            read_any: AtomicBool::new(false),
            linger: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.changed_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// When the connection becomes idle if nothing happens meanwhile; `None` while a request
    /// is in flight (`--request-timeout` bounds those). Before any byte arrived the limit is
    /// `first_bytes`, afterwards `idle`.
    fn deadline(&self, first_bytes: Duration, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let since = self.opened + Duration::from_millis(self.changed_ms.load(Ordering::Relaxed));
        let limit = if self.read_any.load(Ordering::Relaxed) {
            idle
        } else {
            first_bytes
        };
        Some(since + limit)
    }

    /// Resolves once the connection has been idle past its limit.
    pub async fn idle(&self, first_bytes: Duration, idle: Duration) {
        loop {
            match self.deadline(first_bytes, idle) {
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => tokio::select! {
                    _ = tokio::time::sleep_until(deadline.into()) => {}
                    _ = self.changed.notified() => {}
                },
                // A request is in flight: look again an idle period later rather than be
                // woken by every request's end, which would cost a wake-up per request on a
                // busy keep-alive connection. The deadline only ever moves later, so looking
                // late never closes a connection early.
                None => tokio::select! {
                    _ = tokio::time::sleep(idle) => {}
                    _ = self.changed.notified() => {}
                },
            }
        }
    }
}

impl Activity {
    /// Resolves once no request has been in flight for `quiet`, counted from now.
    pub async fn quiet_for(&self, quiet: Duration) {
        self.touch();
        self.idle(quiet, quiet).await
    }
}

/// One request from its head until its response body is finished or dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// The socket of one connection: notes the first bytes read, holds the connection's slot,
/// and lingers on close when a refusal asked for it.
pub struct Watched {
    stream: Option<TcpStream>,
    activity: Arc<Activity>,
    slot: Option<Slot>,
    linger: Duration,
}

impl Watched {
    pub fn new(stream: TcpStream, activity: Arc<Activity>, slot: Slot, linger: Duration) -> Self {
        Watched {
            stream: Some(stream),
            activity,
            slot: Some(slot),
            linger,
        }
    }

    fn stream(&mut self) -> Pin<&mut TcpStream> {
        // Only `drop` takes the stream.
        Pin::new(self.stream.as_mut().expect("stream present until drop"))
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = this.stream().poll_read(cx, buf);
        if buf.filled().len() > before && !this.activity.read_any.load(Ordering::Relaxed) {
            this.activity.read_any.store(true, Ordering::Relaxed);
            this.activity.changed.notify_one();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream().poll_shutdown(cx)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if !self.activity.linger.load(Ordering::Relaxed) {
            return;
        }
        let (Some(stream), Ok(runtime)) =
            (self.stream.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(linger(stream, self.slot.take(), self.linger));
    }
}

/// Shuts the write side (the answer is complete), then reads and discards what the client
/// still sends until it closes, `LINGER_BYTES` were read or `limit` passed.
async fn linger(mut stream: TcpStream, slot: Option<Slot>, limit: Duration) {
    let _ = stream.shutdown().await;
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(limit, async {
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
    drop(slot);
}

/// The application as one connection's service: counts its requests in flight and marks the
/// connection for lingering when a request that came with a body is refused.
#[derive(Clone)]
pub struct Tracked {
    app: Router,
    activity: Arc<Activity>,
}

impl Tracked {
    pub fn new(app: Router, activity: Arc<Activity>) -> Tracked {
        Tracked { app, activity }
    }
}

fn has_body<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

impl Service<Request<hyper::body::Incoming>> for Tracked {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request<hyper::body::Incoming>>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        let with_body = has_body(&request);
        let activity = self.activity.clone();
        let response = self.app.call(request);
        Box::pin(async move {
            let response = response.await?;
            if with_body
                && (response.status().is_client_error() || response.status().is_server_error())
            {
                activity.linger.store(true, Ordering::Relaxed);
            }
            Ok(response.map(|body| {
                Body::new(Finishing {
                    body,
                    _in_flight: in_flight,
                })
            }))
        })
    }
}

/// A response body that keeps its request in flight until it is finished or dropped.
struct Finishing {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Finishing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    #[test]
    fn a_silent_connection_gets_the_first_bytes_limit_then_the_idle_one() {
        let activity = Arc::new(Activity::default());
        assert_eq!(
            activity.deadline(FIRST, IDLE),
            Some(activity.opened + FIRST)
        );
        activity.read_any.store(true, Ordering::Relaxed);
        assert_eq!(activity.deadline(FIRST, IDLE), Some(activity.opened + IDLE));
    }

    #[tokio::test]
    async fn the_watchdog_sees_a_request_end_before_its_earlier_deadline() {
        let activity = Arc::new(Activity::default());
        let watchdog = {
            let activity = activity.clone();
            tokio::spawn(async move { activity.idle(FIRST, Duration::from_millis(100)).await })
        };
        // The watchdog sleeps towards the first-bytes deadline; then bytes and a request come.
        tokio::task::yield_now().await;
        activity.read_any.store(true, Ordering::Relaxed);
        let request = activity.begin();
        activity.changed.notify_one();
        tokio::task::yield_now().await;
        drop(request);
        let closed = tokio::time::timeout(Duration::from_secs(3), watchdog).await;
        assert!(closed.is_ok(), "still waiting for the first-bytes deadline");
    }

    #[test]
    fn a_request_in_flight_is_never_idle_and_its_end_restarts_the_clock() {
        let activity = Arc::new(Activity::default());
        activity.read_any.store(true, Ordering::Relaxed);
        let request = activity.begin();
        assert_eq!(activity.deadline(FIRST, IDLE), None);
        std::thread::sleep(Duration::from_millis(5));
        drop(request);
        let deadline = activity.deadline(FIRST, IDLE).expect("idle again");
        assert!(deadline > activity.opened + IDLE, "{deadline:?}");
    }
}
