//! A minimal HTTP/1.1 client over a plain socket, for tests against a real bound server: it
//! sends exactly the bytes a test means, as a hostile or careless client would.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};

/// A server on a loopback port, run by a runtime of its own until dropped.
pub struct Served {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// Serves `app` on a loopback port with the default server limits (see [`Served`]).
pub fn serve(app: axum::Router) -> Served {
    serve_with(app, trustledger::api::server::ServerLimits::default())
}

/// Serves `app` on a loopback port through the service's own hardened server.
pub fn serve_with(app: axum::Router, limits: trustledger::api::server::ServerLimits) -> Served {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                trustledger::api::server::serve(listener, app, limits, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
    });
    Served {
        port: port_rx.recv().unwrap(),
        stop: Some(stop),
        thread: Some(thread),
    }
}

/// One request on a new connection; returns the status and the (de-chunked) body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let (status, _, body) = http_with_head(port, method, path, token, body);
    (status, body)
}

/// [`http`], also returning the response head (status line and headers) as text.
pub fn http_with_head(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
            let len =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            if len == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + len]);
            rest = &rest[line_end + 2 + len + 2..];
        }
        body = out;
    }
    (status, head, body)
}

/// The body as JSON, or a panic that shows it.
pub fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

/// A `POST /api/v1/evidence` body for `document` (JSON; `requires_admin` defaults to false),
/// signed by the producer it names with the key `key_from_label` derives from that name. The
/// producer must be registered (`policy::set_producer_by_label`).
pub fn signed_evidence_body(mut document: Value) -> Value {
    if document.get("requires_admin").is_none() {
        document["requires_admin"] = Value::Bool(false);
    }
    let parsed: events::payloads::EvidenceDocument =
        serde_json::from_value(document.clone()).unwrap();
    let key = projections::vote_statement::key_from_label(&parsed.generated_by);
    let signature = projections::evidence_signature::sign(&parsed, &key).unwrap();
    serde_json::json!({"document": document, "signature": signature})
}
