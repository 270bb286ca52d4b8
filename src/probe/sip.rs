//! The SIP side of a probe (RFC 3261 §11): the OPTIONS request, built with `rsip`, and the
//! reading of its answer.

use std::net::{IpAddr, SocketAddr};

use rand::Rng;
use rsip::headers::UntypedHeader;
use rsip::param::{Branch, Tag};
use rsip::prelude::HeadersExt;
use rsip::{Header, Headers, Host, HostWithPort, Method, Param, Scheme, Uri, Version};

/// The magic cookie that marks an RFC 3261 branch.
pub const BRANCH_COOKIE: &str = "z9hG4bK";
const USER_AGENT: &str = concat!("callrec-gateway/", env!("CARGO_PKG_VERSION"));

/// How the request travels; `Via` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// One OPTIONS request and what identifies its answer.
#[derive(Debug, Clone)]
pub struct Options {
    pub request: rsip::Request,
    pub call_id: String,
    pub branch: String,
}

/// What an answer said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A 1xx: the final answer is still to come.
    Provisional,
    /// A final status, e.g. `(503, "503 Service Unavailable")`.
    Final(u16, String),
    /// A response to another request (a late answer to an earlier probe, say).
    Unrelated,
}

/// A host as it is written in a SIP URI: IPv6 literals in brackets (rsip prints them bare).
fn host(address: &str) -> Host {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => Host::Domain(format!("[{v6}]").into()),
        Ok(ip) => Host::IpAddr(ip),
        Err(_) => Host::Domain(address.to_owned().into()),
    }
}

fn host_with_port(address: &str, port: u16) -> HostWithPort {
    HostWithPort {
        host: host(address),
        port: Some(port.into()),
    }
}

fn sip_uri(host_with_port: HostWithPort) -> Uri {
    Uri {
        scheme: Some(Scheme::Sip),
        host_with_port,
        ..Default::default()
    }
}

fn token(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
        .collect()
}

/// `OPTIONS sip:address:port` sent from `local` over `transport`, with CSeq `seq`, a fresh
/// branch, tag and Call-ID.
pub fn options(
    address: &str,
    port: u16,
    local: SocketAddr,
    transport: Transport,
    seq: u32,
) -> Options {
    let branch = format!("{BRANCH_COOKIE}{}", token(24));
    let call_id = format!("{}@{}", token(32), local.ip());
    let target = sip_uri(host_with_port(address, port));
    let me = host_with_port(&local.ip().to_string(), local.port());
    let via = rsip::typed::Via {
        version: Version::V2,
        transport: match transport {
            Transport::Udp => rsip::Transport::Udp,
            Transport::Tcp => rsip::Transport::Tcp,
        },
        uri: Uri {
            scheme: None,
            host_with_port: me.clone(),
            ..Default::default()
        },
        params: vec![Param::Branch(Branch::new(&branch))],
    };
    let from = rsip::typed::From {
        display_name: None,
        uri: Uri {
            auth: Some(rsip::Auth {
                user: "callrec-gateway".into(),
                password: None,
            }),
            ..sip_uri(me)
        },
        params: vec![Param::Tag(Tag::new(token(16)))],
    };
    let to = rsip::typed::To {
        display_name: None,
        uri: target.clone(),
        params: Vec::new(),
    };
    let mut headers = Headers::default();
    headers.push(via.into());
    headers.push(rsip::headers::MaxForwards::new("70").into());
    headers.push(from.into());
    headers.push(to.into());
    headers.push(rsip::headers::CallId::new(&call_id).into());
    headers.push(
        rsip::typed::CSeq {
            seq,
            method: Method::Options,
        }
        .into(),
    );
    headers.push(rsip::headers::Accept::new("application/sdp").into());
    headers.push(rsip::headers::UserAgent::new(USER_AGENT).into());
    headers.push(rsip::headers::ContentLength::new("0").into());
    Options {
        request: rsip::Request {
            method: Method::Options,
            uri: target,
            version: Version::V2,
            headers,
            body: Vec::new(),
        },
        call_id,
        branch,
    }
}

impl Options {
    pub fn bytes(&self) -> Vec<u8> {
        self.request.to_string().into_bytes()
    }

    /// Reads one response; `Err` with a short reason when it is not a SIP response.
    pub fn answer(&self, message: &[u8]) -> Result<Answer, String> {
        let response =
            rsip::Response::try_from(message).map_err(|_| "malformed response".to_owned())?;
        let call_id = response
            .call_id_header()
            .map_err(|_| "malformed response".to_owned())?;
        let same_branch = response
            .headers
            .iter()
            .find_map(|h| match h {
                Header::Via(via) => Some(via.value().contains(&self.branch)),
                _ => None,
            })
            .unwrap_or(false);
        if call_id.value() != self.call_id || !same_branch {
            return Ok(Answer::Unrelated);
        }
        let status = response.status_code();
        let code = status.code();
        if code < 200 {
            return Ok(Answer::Provisional);
        }
        Ok(Answer::Final(code, status_text(status)))
    }
}

/// `503 Service Unavailable`: rsip names well-known statuses in one word
/// (`ServiceUnavailable`), which is spaced out here.
fn status_text(status: &rsip::StatusCode) -> String {
    let text = status.to_string();
    let mut out = String::with_capacity(text.len() + 4);
    let mut previous: Option<char> = None;
    for c in text.chars() {
        if c.is_ascii_uppercase() && previous.is_some_and(|p| p.is_ascii_lowercase()) {
            out.push(' ');
        }
        out.push(c);
        previous = Some(c);
    }
    out
}

/// The length of the first whole message head in `buffer` (through the blank line) and of
/// the body its Content-Length announces, once both are in.
pub fn message_len(buffer: &[u8]) -> Option<usize> {
    let head = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let body = rsip::Response::try_from(&buffer[..head])
        .ok()
        .and_then(|r| {
            r.headers.iter().find_map(|h| match h {
                Header::ContentLength(l) => l.length().ok(),
                _ => None,
            })
        })
        .unwrap_or(0) as usize;
    (buffer.len() >= head + body).then_some(head + body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(options: &Options) -> Vec<String> {
        String::from_utf8(options.bytes())
            .unwrap()
            .split("\r\n")
            .map(str::to_owned)
            .collect()
    }

    fn header<'a>(lines: &'a [String], name: &str) -> &'a str {
        let prefix = format!("{name}: ");
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
    }

    #[test]
    fn the_request_has_every_field_rfc_3261_asks_for() {
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let o = options("10.0.32.55", 5070, local, Transport::Udp, 7);
        let lines = lines(&o);
        assert_eq!(lines[0], "OPTIONS sip:10.0.32.55:5070 SIP/2.0");
        let via = header(&lines, "Via");
        assert!(
            via.starts_with("SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK"),
            "{via}"
        );
        assert!(via.ends_with(&o.branch), "{via}");
        assert_eq!(header(&lines, "Max-Forwards"), "70");
        let from = header(&lines, "From");
        assert!(
            from.contains("sip:callrec-gateway@127.0.0.1:40000"),
            "{from}"
        );
        assert!(from.contains(";tag="), "{from}");
        let to = header(&lines, "To");
        assert!(to.contains("sip:10.0.32.55:5070"), "{to}");
        assert!(!to.contains("tag="), "{to}");
        assert_eq!(header(&lines, "Call-ID"), o.call_id);
        assert_eq!(header(&lines, "CSeq"), "7 OPTIONS");
        assert_eq!(header(&lines, "Content-Length"), "0");
        assert!(o.bytes().ends_with(b"\r\n\r\n"), "ends with the blank line");
        // The request parses back as one.
        let parsed = rsip::Request::try_from(o.bytes().as_slice()).expect("parses");
        assert_eq!(parsed.method, Method::Options);
    }

    #[test]
    fn each_request_has_a_new_branch_call_id_and_tag_and_names_its_transport() {
        let local: SocketAddr = "[::1]:5555".parse().unwrap();
        let a = options("::1", 5060, local, Transport::Tcp, 1);
        let b = options("::1", 5060, local, Transport::Tcp, 2);
        assert_ne!(a.branch, b.branch);
        assert_ne!(a.call_id, b.call_id);
        assert_ne!(header(&lines(&a), "From"), header(&lines(&b), "From"));
        let lines = lines(&a);
        assert_eq!(lines[0], "OPTIONS sip:[::1]:5060 SIP/2.0");
        assert!(header(&lines, "Via").starts_with("SIP/2.0/TCP [::1]:5555;branch=z9hG4bK"));
        let host_name = options("rec.example.com", 5060, local, Transport::Udp, 1);
        assert!(
            host_name
                .bytes()
                .starts_with(b"OPTIONS sip:rec.example.com:5060 SIP/2.0\r\n")
        );
    }

    fn response(o: &Options, status: &str, call_id: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 {status}\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch={}\r\nFrom: <sip:callrec-gateway@127.0.0.1>;tag=1\r\nTo: <sip:10.0.32.55:5070>;tag=2\r\nCall-ID: {call_id}\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            o.branch
        )
        .into_bytes()
    }

    #[test]
    fn answers_are_read_by_status_and_matched_by_call_id_and_branch() {
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let o = options("10.0.32.55", 5070, local, Transport::Udp, 7);
        assert_eq!(
            o.answer(&response(&o, "200 OK", &o.call_id)),
            Ok(Answer::Final(200, "200 OK".into()))
        );
        assert_eq!(
            o.answer(&response(&o, "503 Service Unavailable", &o.call_id)),
            Ok(Answer::Final(503, "503 Service Unavailable".into()))
        );
        assert_eq!(
            o.answer(&response(&o, "404 Not Found", &o.call_id)),
            Ok(Answer::Final(404, "404 Not Found".into()))
        );
        assert_eq!(
            o.answer(&response(&o, "100 Trying", &o.call_id)),
            Ok(Answer::Provisional)
        );
        assert_eq!(
            o.answer(&response(&o, "200 OK", "another@call")),
            Ok(Answer::Unrelated)
        );
        assert_eq!(
            o.answer(b"HTTP/1.1 200 OK\r\n\r\n"),
            Err("malformed response".into())
        );
    }

    #[test]
    fn a_message_is_whole_once_its_head_and_body_are_in() {
        let head = b"SIP/2.0 100 Trying\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(message_len(&head[..20]), None);
        assert_eq!(message_len(head), None);
        let mut whole = head.to_vec();
        whole.extend_from_slice(b"abcSIP/2.0 200 OK");
        assert_eq!(message_len(&whole), Some(head.len() + 3));
    }
}
