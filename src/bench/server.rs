//! The benchmark's scripted OpenAI-compatible server on 127.0.0.1: a small HTTP/1.1 loop on a tokio
//! `TcpListener` (keep-alive, `Content-Length` bodies only), answering `POST …/chat/completions` after
//! a fixed latency with a reply chosen from the conversation so far. Bounded: it answers at most
//! `max_requests` and stops when dropped.
//!
//! Problems are written `[bench] A * B = ?`; the answer is the product. Each conversation takes three
//! model calls: with `Script::Code` two Python blocks (the second reads the first's variable) and then
//! the boxed answer; with `Script::Plain` two replies with neither code nor answer, then the answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const PROBLEM_MARK: &str = "[bench] ";
/// A request larger than this is not ours.
const MAX_BODY: usize = 16 << 20;
/// An idle keep-alive connection is closed after this.
const IDLE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Code,
    Plain,
}

/// The text of problem `i` and its reference answer.
pub fn problem(i: usize) -> (String, String) {
    let (a, b) = (i as u64 % 89 + 11, i as u64 / 89 + 3);
    (format!("{PROBLEM_MARK}{a} * {b} = ?"), (a * b).to_string())
}

pub struct LatencyServer {
    addr: SocketAddr,
    calls: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

struct Shared {
    delay: Duration,
    script: Script,
    calls: Arc<AtomicU64>,
    max_requests: u64,
}

impl LatencyServer {
    pub async fn start(delay: Duration, script: Script, max_requests: u64) -> std::io::Result<LatencyServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let calls = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared { delay, script, calls: calls.clone(), max_requests });
        let task = tokio::spawn(async move {
            // Connection tasks live in this set, so aborting the accept task ends them all.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            connections.spawn(serve(stream, shared.clone()));
                        }
                        Err(e) => tracing::warn!("bench server: accept failed: {e}"),
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(LatencyServer { addr, calls, task })
    }

    /// The `base_url` of a config entry pointing here.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Chat requests answered so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Drop for LatencyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers requests on one connection until it closes, idles, or sends something unexpected.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let body = match tokio::time::timeout(IDLE, read_request(&mut read)).await {
            Ok(Ok(Some(body))) => body,
            _ => return,
        };
        let n = shared.calls.fetch_add(1, Ordering::Relaxed);
        let (status, payload) = if n >= shared.max_requests {
            ("503 Service Unavailable", json!({"error": {"message": "benchmark request bound reached"}}))
        } else {
            tokio::time::sleep(shared.delay).await;
            ("200 OK", reply(shared.script, &body))
        };
        let payload = payload.to_string();
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            payload.len()
        );
        if write.write_all(head.as_bytes()).await.is_err()
            || write.write_all(payload.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

/// One request's body; `None` when the peer closed between requests.
async fn read_request(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut length = 0usize;
    let mut first = true;
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if first {
            first = false;
            if !line.starts_with("POST ") || !line.contains("/chat/completions") {
                return Err(std::io::Error::other(format!("unexpected request: {}", line.trim())));
            }
            continue;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().map_err(std::io::Error::other)?;
        }
    }
    if length > MAX_BODY {
        return Err(std::io::Error::other("request body too large"));
    }
    let mut body = vec![0; length];
    read.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// The scripted assistant's next message, as a chat completion.
fn reply(script: Script, body: &[u8]) -> Value {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let turn = messages.iter().filter(|m| m["role"] == "assistant").count();
    let (a, b) = operands(&messages).unwrap_or((0, 0));
    let content = match (script, turn) {
        (Script::Code, 0) => format!("Let me compute it.\n```python\nx = {a} * {b}\nprint(x)\n```"),
        (Script::Code, 1) => "Checking the result.\n```python\nprint(x == x + 0, x)\n```".to_string(),
        (Script::Plain, 0) => "Let me think about the factors first.".to_string(),
        (Script::Plain, 1) => "Multiplying them now.".to_string(),
        _ => format!("The product is \\boxed{{{}}}.", a * b),
    };
    let prompt_tokens: usize = messages.iter().map(|m| m["content"].as_str().map_or(0, str::len) / 4).sum();
    json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": content.len() / 4,
                  "total_tokens": prompt_tokens + content.len() / 4},
    })
}

/// `A` and `B` from the `[bench] A * B = ?` problem in the opening message.
fn operands(messages: &[Value]) -> Option<(u64, u64)> {
    let text = messages.iter().filter_map(|m| m["content"].as_str()).find(|t| t.contains(PROBLEM_MARK))?;
    let rest = &text[text.find(PROBLEM_MARK)? + PROBLEM_MARK.len()..];
    let (a, rest) = rest.split_once(" * ")?;
    let (b, _) = rest.split_once(" = ")?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_solves_the_problem_in_three_calls() {
        let (text, answer) = problem(100);
        let mut messages =
            vec![json!({"role": "system", "content": "s"}), json!({"role": "user", "content": text})];
        let mut replies = Vec::new();
        for _ in 0..3 {
            let body = json!({"messages": messages}).to_string();
            let content = reply(Script::Code, body.as_bytes())["choices"][0]["message"]["content"].clone();
            replies.push(content.as_str().unwrap().to_string());
            messages.push(json!({"role": "assistant", "content": content}));
        }
        assert!(replies[0].contains("x = 22 * 4") && replies[1].contains("```python"));
        assert!(replies[2].ends_with(&format!("\\boxed{{{answer}}}.")), "{replies:?}");
    }
}
