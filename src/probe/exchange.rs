//! One probe over the wire: resolve, send OPTIONS, wait for the final answer.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::sip::{self, Answer, Transport};
use crate::model::{Platform, ProbeOutcome, TransportProtocol};

/// The port SIP uses when the platform names none.
pub const DEFAULT_PORT: u16 = 5060;
/// The largest answer read; SIP over UDP fits a datagram, and an OPTIONS answer is small.
const LARGEST_ANSWER: usize = 64 * 1024;

fn failed(reason: impl Into<String>) -> ProbeOutcome {
    ProbeOutcome::Failed {
        reason: reason.into(),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::ConnectionReset => "connection reset".into(),
        ErrorKind::UnexpectedEof => "connection closed".into(),
        _ => e.to_string(),
    }
}

/// Probes `platform` once, within `wait` (resolution included).
pub async fn probe(platform: &Platform, seq: u32, wait: Duration) -> ProbeOutcome {
    let started = Instant::now();
    let port = platform.port.unwrap_or(DEFAULT_PORT);
    let transport = match platform.transport_protocol {
        TransportProtocol::Tcp => Transport::Tcp,
        TransportProtocol::Udp | TransportProtocol::Unspecified => Transport::Udp,
    };
    let exchange = async {
        let target = resolve(&platform.net_address, port).await?;
        match transport {
            Transport::Udp => over_udp(&platform.net_address, port, target, seq).await,
            Transport::Tcp => over_tcp(&platform.net_address, port, target, seq).await,
        }
    };
    match tokio::time::timeout(wait, exchange).await {
        Err(_) => failed("timeout"),
        Ok(Err(reason)) => failed(reason),
        Ok(Ok((code, _))) if (200..500).contains(&code) => ProbeOutcome::Answered {
            latency: started.elapsed(),
        },
        Ok(Ok((_, text))) => failed(text),
    }
}

/// Resolved at each probe, so that a moved host name is followed.
async fn resolve(address: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut found = tokio::net::lookup_host((address, port))
        .await
        .map_err(|_| "unresolvable host name".to_owned())?;
    found
        .next()
        .ok_or_else(|| "unresolvable host name".to_owned())
}

fn unspecified(target: SocketAddr) -> SocketAddr {
    match target {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// Sends from a socket of its own and reads the answer on that same socket (the Via's
/// sent-by). Connected, so that an ICMP "port unreachable" ends the probe at once.
async fn over_udp(
    address: &str,
    port: u16,
    target: SocketAddr,
    seq: u32,
) -> Result<(u16, String), String> {
    let socket = UdpSocket::bind(unspecified(target))
        .await
        .map_err(|e| io_reason(&e))?;
    socket.connect(target).await.map_err(|e| io_reason(&e))?;
    let local = socket.local_addr().map_err(|e| io_reason(&e))?;
    let options = sip::options(address, port, local, Transport::Udp, seq);
    socket
        .send(&options.bytes())
        .await
        .map_err(|e| io_reason(&e))?;
    let mut buffer = vec![0u8; LARGEST_ANSWER];
    loop {
        let n = socket.recv(&mut buffer).await.map_err(|e| io_reason(&e))?;
        match options.answer(&buffer[..n]) {
            Ok(Answer::Final(code, text)) => return Ok((code, text)),
            // Stray datagrams and provisional answers: keep waiting for the final one.
            Ok(Answer::Provisional | Answer::Unrelated) | Err(_) => continue,
        }
    }
}

async fn over_tcp(
    address: &str,
    port: u16,
    target: SocketAddr,
    seq: u32,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(target)
        .await
        .map_err(|e| io_reason(&e))?;
    let local = stream.local_addr().map_err(|e| io_reason(&e))?;
    let options = sip::options(address, port, local, Transport::Tcp, seq);
    stream
        .write_all(&options.bytes())
        .await
        .map_err(|e| io_reason(&e))?;
    let mut buffer: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(len) = sip::message_len(&buffer) {
            let message: Vec<u8> = buffer.drain(..len).collect();
            match options.answer(&message)? {
                Answer::Final(code, text) => return Ok((code, text)),
                Answer::Provisional | Answer::Unrelated => {}
            }
        }
        if buffer.len() > LARGEST_ANSWER {
            return Err("answer too large".into());
        }
        let n = stream.read(&mut chunk).await.map_err(|e| io_reason(&e))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}
