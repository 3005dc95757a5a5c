//! Integration tests of the model client layer: HTTP backends against a local mock server (asserting
//! the outgoing requests), retries, fallback, the reply cache and config-list handling.

mod anthropic;
mod cache;
mod config;
mod fallback;
mod openai;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentopt::llm::retry::RetryPolicy;
use agentopt::llm::{CacheMode, ChatModel, ChatRequest, Message, ModelOptions};
use serde_json::{Value, json};

pub const KEY: &str = "sk-test-SECRET-0123456789";

/// Retries fast enough for tests: 3 attempts (429s included), a few milliseconds apart.
pub fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
        retry_after_cap: Duration::from_secs(2),
        rate_limit_patience: Duration::ZERO,
    }
}

/// Writes `entries` as a config list file in `dir` and returns options using it (cache off).
pub fn options(dir: &Path, entries: Value) -> ModelOptions {
    let path = dir.join("cfg.json");
    std::fs::write(&path, serde_json::to_string_pretty(&entries).unwrap()).unwrap();
    ModelOptions {
        config: Some(path),
        model: None,
        cache: CacheMode::Off,
        cache_dir: dir.join("cache"),
        inline: None,
    }
}

pub fn connect(opts: &ModelOptions) -> Arc<dyn ChatModel> {
    agentopt::llm::connect::connect_with(opts, fast_policy()).expect("connect")
}

pub fn question() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::system("You are a math assistant."), Message::user("What is 1+1?")],
        ..Default::default()
    }
}

pub fn openai_text_reply(text: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
}

/// Paths of every `null` in `value` (for "optional fields are omitted, not null").
pub fn nulls(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Null => out.push(at.to_string()),
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, v)| nulls(v, &format!("{at}/{i}"), out))
        }
        Value::Object(map) => map.iter().for_each(|(k, v)| nulls(v, &format!("{at}/{k}"), out)),
        _ => {}
    }
}

pub fn body_of(request: &wiremock::Request) -> Value {
    serde_json::from_slice(&request.body).expect("the request body is JSON")
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn read_all_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// A stream sink that keeps every text piece it is given, and the pieces so far.
pub fn collecting_sink() -> (agentopt::llm::stream::Sink, Arc<std::sync::Mutex<Vec<String>>>) {
    let pieces = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let into = pieces.clone();
    let sink: agentopt::llm::stream::Sink = Arc::new(move |p| {
        if let agentopt::llm::stream::Piece::Text(t) = p {
            into.lock().unwrap().push(t.to_string());
        }
    });
    (sink, pieces)
}
