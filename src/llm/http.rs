//! The one HTTP exchange every remote backend makes: send a JSON body, classify what went wrong as a
//! retry `Failure`, and hand back the reply body with its content type.

use std::time::Duration;

use serde_json::Value;

use super::config::Secret;
use super::retry::Failure;
use super::stream::{EventSplitter, Piece, Sink};

/// A successful (2xx) reply.
pub struct Reply {
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn is_event_stream(&self) -> bool {
        self.content_type.starts_with("text/event-stream")
    }
}

/// Sends `request` with a per-request `timeout` covering connect, headers and the whole body.
/// `key` is scrubbed from any error body the server echoes back.
pub async fn send(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    key: Option<&Secret>,
) -> Result<Reply, Failure> {
    let response = request.timeout(timeout).send().await.map_err(classify)?;
    finish(response, key).await
}

/// Reads a reply whole: its body, or the failure its status means.
async fn finish(response: reqwest::Response, key: Option<&Secret>) -> Result<Reply, Failure> {
    let status = response.status();
    let content_type = content_type(&response);
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = response.bytes().await.map_err(classify)?;
    let body = String::from_utf8_lossy(&bytes).into_owned();
    if !status.is_success() {
        let body = match key {
            Some(key) if !key.expose().is_empty() => body.replace(key.expose(), "***"),
            _ => body,
        };
        return Err(Failure::Status { status: status.as_u16(), retry_after, body });
    }
    Ok(Reply { content_type, body })
}

/// `send` for a streamed reply: each chunk of a 2xx body goes to `on_chunk` as it arrives (an
/// error body is read whole, as `send` does), and the whole body comes back at the end.
async fn send_streaming(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    key: Option<&Secret>,
    mut on_chunk: impl FnMut(&str) + Send,
) -> Result<Reply, Failure> {
    use futures::StreamExt;

    let response = request.timeout(timeout).send().await.map_err(classify)?;
    if !response.status().is_success() {
        return finish(response, key).await;
    }
    let content_type = content_type(&response);
    let mut bytes = Vec::new();
    let mut shown = 0;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.map_err(classify)?);
        // Only whole UTF-8 characters are handed on: a split one waits for its next chunk, and a
        // byte that can never start one is passed on replaced, so the stream does not stall on it.
        let ready = match std::str::from_utf8(&bytes[shown..]) {
            Ok(text) => text.len(),
            Err(e) => e.valid_up_to() + e.error_len().unwrap_or(0),
        };
        if ready > 0 {
            on_chunk(&String::from_utf8_lossy(&bytes[shown..shown + ready]));
            shown += ready;
        }
    }
    Ok(Reply { content_type, body: String::from_utf8_lossy(&bytes).into_owned() })
}

/// Sends `request` for an event stream, handing `sink` the text `text_of` finds in each event as it
/// arrives; the whole body comes back for the backend to assemble the reply from.
pub async fn send_streamed(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    key: Option<&Secret>,
    sink: &Sink,
    text_of: fn(&Value) -> Option<&str>,
) -> Result<Reply, Failure> {
    sink(Piece::Start);
    let mut events = EventSplitter::default();
    let on_chunk = |chunk: &str| {
        for event in events.push(chunk) {
            let value: Value = serde_json::from_str(&event).unwrap_or(Value::Null);
            if let Some(text) = text_of(&value).filter(|t| !t.is_empty()) {
                sink(Piece::Text(text));
            }
        }
    };
    send_streaming(request, timeout, key, on_chunk).await
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn classify(error: reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout;
    }
    // The URL never holds a key, but leaving it out keeps messages short and safe by construction.
    let error = error.without_url();
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    Failure::Connection(detail)
}

/// A header value holding a key, marked sensitive so HTTP-layer debug output never shows it.
pub fn secret_header(key: &Secret) -> reqwest::header::HeaderValue {
    // The config check guarantees visible ASCII; an invalid key degrades to an empty header (a 401).
    let mut value = reqwest::header::HeaderValue::from_str(key.expose())
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

/// An `f32` sampling parameter as JSON: `0.7` goes out as `0.7`, not the `0.699999988079071` a plain
/// widening to f64 would send.
pub fn float(value: f32) -> Value {
    value.to_string().parse::<f64>().map_or(Value::Null, Value::from)
}
