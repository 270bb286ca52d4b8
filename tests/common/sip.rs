//! SIP peers of the tests on loopback: a UDP responder answering OPTIONS with a chosen
//! status (or staying silent), and a port nothing listens on.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// A port nothing listens on (TCP connections to it are refused, UDP datagrams bounce).
pub async fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    listener.local_addr().expect("addr").port()
}

/// A UDP peer of this test: answers each request with `status` (copying the headers that
/// identify the transaction) after `delay`, or stays silent when `status` is none. Keeps
/// every datagram it received, with its source.
pub struct Responder {
    pub port: u16,
    pub received: Arc<Mutex<Vec<(SocketAddr, String)>>>,
    task: JoinHandle<()>,
}

impl Responder {
    pub async fn udp(status: Option<&'static str>, delay: Duration) -> Responder {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bound"));
        let port = socket.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = received.clone();
        let task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 65536];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buffer).await else {
                    return;
                };
                let request = String::from_utf8_lossy(&buffer[..n]).into_owned();
                kept.lock().unwrap().push((from, request.clone()));
                if let Some(status) = status {
                    let socket = socket.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = socket
                            .send_to(answer(&request, status).as_bytes(), from)
                            .await;
                    });
                }
            }
        });
        Responder {
            port,
            received,
            task,
        }
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response to `request`: its Via, From, To, Call-ID and CSeq, as RFC 3261 §8.2.6 says.
pub fn answer(request: &str, status: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in request.split("\r\n") {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if ["via", "from", "call-id", "cseq"].contains(&name.as_str()) {
            out.push_str(line);
            out.push_str("\r\n");
        } else if name == "to" {
            out.push_str(line);
            out.push_str(";tag=responder\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}
