//! The benchmark's scripted OpenAI-compatible server on 127.0.0.1: a small HTTP/1.1 loop on a tokio
//! `TcpListener` (keep-alive, `Content-Length` bodies only), answering `POST …/chat/completions` after
//! a fixed latency with a reply chosen from the conversation so far. Bounded: it answers at most
//! `max_requests` and stops when dropped. With a `Throttle` it plays a provider that is over capacity
//! for a while (429 with `Retry-After` beyond `capacity` requests in flight), and logs how many
//! conversations were under way at each arrival, so a client's adaptation can be read off.
//!
//! Problems are written `[bench] A * B = ?`; the answer is the product. Each conversation takes three
//! model calls: with `Script::Code` two Python blocks (the second reads the first's variable) and then
//! the boxed answer; with `Script::Plain` two replies with neither code nor answer, then the answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const PROBLEM_MARK: &str = "[bench] ";
/// Model calls per conversation, with either script.
pub const CALLS_PER_CONVERSATION: usize = 3;
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

/// A provider over capacity until it has answered `until_answered` requests: a request arriving while
/// `capacity` others are in flight gets 429 with `Retry-After: retry_after`.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    pub capacity: usize,
    pub until_answered: u64,
    pub retry_after: Duration,
}

/// One request as the server saw it arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Requests answered (200) before this one arrived: which stage of the throttle it fell in.
    pub answered_before: u64,
    /// Conversations under way at its arrival, its own included (begun, final answer not yet sent):
    /// the client's concurrency.
    pub conversations: usize,
    pub rejected: bool,
}

/// The most conversations under way at any arrival whose `answered_before` lies in `stage`, and how
/// many of those arrivals were refused.
pub fn stage_figures(arrivals: &[Arrival], stage: impl std::ops::RangeBounds<u64>) -> (usize, usize) {
    let within: Vec<&Arrival> = arrivals.iter().filter(|a| stage.contains(&a.answered_before)).collect();
    let peak = within.iter().map(|a| a.conversations).max().unwrap_or(0);
    (peak, within.iter().filter(|a| a.rejected).count())
}

pub struct LatencyServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    delay: Duration,
    script: Script,
    max_requests: u64,
    throttle: Option<Throttle>,
    /// Requests received, 429s and 503s included.
    calls: AtomicU64,
    answered: AtomicU64,
    in_flight: AtomicUsize,
    /// Kept only when throttling.
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    arrivals: Vec<Arrival>,
    /// Conversations under way, by their problem's operands.
    open: std::collections::HashSet<(u64, u64)>,
}

impl LatencyServer {
    pub async fn start(delay: Duration, script: Script, max_requests: u64) -> std::io::Result<LatencyServer> {
        LatencyServer::start_throttled(delay, script, max_requests, None).await
    }

    pub async fn start_throttled(
        delay: Duration,
        script: Script,
        max_requests: u64,
        throttle: Option<Throttle>,
    ) -> std::io::Result<LatencyServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            delay,
            script,
            max_requests,
            throttle,
            calls: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            log: Mutex::new(Log::default()),
        });
        let accept_shared = shared.clone();
        let task = tokio::spawn(async move {
            // Connection tasks live in this set, so aborting the accept task ends them all.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            connections.spawn(serve(stream, accept_shared.clone()));
                        }
                        Err(e) => tracing::warn!("bench server: accept failed: {e}"),
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(LatencyServer { addr, shared, task })
    }

    /// The `base_url` of a config entry pointing here.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Chat requests received so far (rejected ones included).
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// Every request's arrival, in order (recorded only with a `Throttle`).
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.shared.log().arrivals.clone()
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
        let turn = Turn::of(&body);
        let mut extra_header = String::new();
        let (status, payload) = if n >= shared.max_requests {
            ("503 Service Unavailable", json!({"error": {"message": "benchmark request bound reached"}}))
        } else if let Some(retry_after) = shared.admit(&turn) {
            extra_header = format!("retry-after: {}\r\n", retry_after.as_secs_f64());
            ("429 Too Many Requests", json!({"error": {"message": "over capacity", "type": "rate_limit"}}))
        } else {
            tokio::time::sleep(shared.delay).await;
            shared.answered(&turn);
            ("200 OK", reply(shared.script, &turn))
        };
        let payload = payload.to_string();
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra_header}content-length: {}\r\n\r\n",
            payload.len()
        );
        if write.write_all(head.as_bytes()).await.is_err()
            || write.write_all(payload.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

impl Shared {
    /// Counts a request in flight, or refuses it (`Some(retry_after)`) while throttling and full.
    fn admit(&self, turn: &Turn) -> Option<Duration> {
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let throttle = self.throttle?;
        let answered_before = self.answered.load(Ordering::SeqCst);
        let rejected = answered_before < throttle.until_answered && in_flight > throttle.capacity;
        let mut log = self.log();
        log.open.insert(turn.operands);
        let conversations = log.open.len();
        log.arrivals.push(Arrival { answered_before, conversations, rejected });
        drop(log);
        if rejected {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Some(throttle.retry_after);
        }
        None
    }

    fn answered(&self, turn: &Turn) {
        if self.throttle.is_some() && turn.is_last() {
            self.log().open.remove(&turn.operands);
        }
        self.answered.fetch_add(1, Ordering::SeqCst);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a request stands: its problem's operands and how many replies the conversation already has.
struct Turn {
    operands: (u64, u64),
    replies: usize,
    /// The conversation's length in tokens, roughly (4 characters each).
    prompt_tokens: usize,
}

impl Turn {
    fn of(body: &[u8]) -> Turn {
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let messages = request["messages"].as_array().cloned().unwrap_or_default();
        Turn {
            operands: operands(&messages).unwrap_or((0, 0)),
            replies: messages.iter().filter(|m| m["role"] == "assistant").count(),
            prompt_tokens: messages.iter().map(|m| m["content"].as_str().map_or(0, str::len) / 4).sum(),
        }
    }

    /// Whether this request gets the final answer (both scripts answer on their third reply).
    fn is_last(&self) -> bool {
        self.replies + 1 >= CALLS_PER_CONVERSATION
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
fn reply(script: Script, turn: &Turn) -> Value {
    let (a, b) = turn.operands;
    let content = match (script, turn.replies) {
        (Script::Code, 0) => format!("Let me compute it.\n```python\nx = {a} * {b}\nprint(x)\n```"),
        (Script::Code, 1) => "Checking the result.\n```python\nprint(x == x + 0, x)\n```".to_string(),
        (Script::Plain, 0) => "Let me think about the factors first.".to_string(),
        (Script::Plain, 1) => "Multiplying them now.".to_string(),
        _ => format!("The product is \\boxed{{{}}}.", a * b),
    };
    let prompt_tokens = turn.prompt_tokens;
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
            let content =
                reply(Script::Code, &Turn::of(body.as_bytes()))["choices"][0]["message"]["content"].clone();
            replies.push(content.as_str().unwrap().to_string());
            messages.push(json!({"role": "assistant", "content": content}));
        }
        assert!(replies[0].contains("x = 22 * 4") && replies[1].contains("```python"));
        assert!(replies[2].ends_with(&format!("\\boxed{{{answer}}}.")), "{replies:?}");
    }
}
