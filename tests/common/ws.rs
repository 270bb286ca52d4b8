//! A WebSocket client speaking GraphQL's two protocols to the test server.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestApp;

pub const WAIT: Duration = Duration::from_secs(10);

/// The dashboard's subscription: every event, every field.
pub const EVENTS: &str = include_str!("../documents/events.graphql");

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server sent: a JSON text message, or a close frame (code, reason).
#[derive(Debug)]
pub enum Received {
    Json(Value),
    Closed(u16, String),
}

impl Client {
    pub async fn connect(app: &TestApp, protocol: &str, authorization: Option<&str>) -> Client {
        Self::connect_to(&app.addr.to_string(), protocol, authorization).await
    }

    /// As [`Client::connect`], to the server at `addr` (host:port).
    pub async fn connect_to(addr: &str, protocol: &str, authorization: Option<&str>) -> Client {
        let mut request = format!("ws://{addr}/graphql/ws")
            .into_client_request()
            .expect("request");
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocol).unwrap(),
        );
        if let Some(value) = authorization {
            headers.insert("Authorization", HeaderValue::from_str(value).unwrap());
        }
        let (ws, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connected in time")
            .expect("connected");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            protocol,
            "the server speaks the protocol asked for"
        );
        Client { ws }
    }

    pub async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("sent");
    }

    pub async fn receive(&mut self) -> Received {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message in time")
                .expect("the connection is open")
                .expect("a valid message");
            match message {
                Message::Text(text) => {
                    return Received::Json(serde_json::from_str(&text).expect("JSON"));
                }
                Message::Close(frame) => {
                    return match frame {
                        Some(f) => Received::Closed(f.code.into(), f.reason.to_string()),
                        None => Received::Closed(1005, String::new()),
                    };
                }
                _ => continue,
            }
        }
    }

    pub async fn json(&mut self) -> Value {
        match self.receive().await {
            Received::Json(v) => v,
            other => panic!("a JSON message expected, got {other:?}"),
        }
    }

    /// connection_init with this payload; returns the answer.
    pub async fn init(&mut self, payload: Value) -> Received {
        self.send(json!({"type": "connection_init", "payload": payload}))
            .await;
        self.receive().await
    }

    /// The payload of the next `next` (graphql-transport-ws) or `data` (graphql-ws) message.
    pub async fn next_payload(&mut self, id: &str) -> Value {
        let message = self.json().await;
        assert!(
            message["type"] == "next" || message["type"] == "data",
            "a result expected: {message}"
        );
        assert_eq!(message["id"], id);
        message["payload"].clone()
    }

    /// The next event of subscription `id`, with no errors.
    pub async fn event(&mut self, id: &str) -> Value {
        let payload = self.next_payload(id).await;
        assert!(payload.get("errors").is_none(), "{payload}");
        payload["data"]["callRecordingEvents"].clone()
    }
}

/// A `graphql-transport-ws` connection accepted with `token`.
pub async fn accepted(app: &TestApp, token: &str) -> Client {
    accepted_at(&app.addr.to_string(), token).await
}

/// As [`accepted`], by the server at `addr` (host:port).
pub async fn accepted_at(addr: &str, token: &str) -> Client {
    let mut client = Client::connect_to(addr, "graphql-transport-ws", None).await;
    match client
        .init(json!({"Authorization": format!("Bearer {token}")}))
        .await
    {
        Received::Json(ack) => assert_eq!(ack["type"], "connection_ack", "{ack}"),
        other => panic!("connection_ack expected, got {other:?}"),
    }
    client
}

impl Client {
    /// Asks for every event as subscription `id` (`graphql-transport-ws`).
    pub async fn request_events(&mut self, id: &str) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": EVENTS}}))
            .await;
    }

    /// Subscription `id` answers with the GraphQL error `code` (and `sub_error_code`), then
    /// `complete`; the error.
    pub async fn fails(&mut self, id: &str, code: &str, sub_error_code: Option<u64>) -> Value {
        let payload = self.next_payload(id).await;
        let error = super::graphql::assert_error(&payload, code, sub_error_code);
        assert_eq!(self.json().await, json!({"type": "complete", "id": id}));
        error
    }

    /// Subscribes to every event as `id` and waits for the stream to be live.
    pub async fn subscribe_events(&mut self, id: &str) {
        self.request_events(id).await;
        assert_eq!(
            self.event(id).await["__typename"],
            "CallRecordingSubscriptionStarted"
        );
    }

    /// The close frame that ends the connection, skipping what comes before it.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            if let Received::Closed(code, reason) = self.receive().await {
                return (code, reason);
            }
        }
    }
}

pub async fn subscribed(app: &TestApp) -> Client {
    let mut client = accepted(app, &app.token).await;
    client.request_events("1").await;
    let started = client.event("1").await;
    assert_eq!(
        started,
        json!({"__typename": "CallRecordingSubscriptionStarted", "live": true})
    );
    client
}
