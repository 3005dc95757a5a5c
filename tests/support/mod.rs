//! A scripted OpenAI-compatible server for end-to-end tests of the real binary: each reply is decided
//! by a closure over the request body (the problem text, the tools offered, whether it is the
//! optimizer talking), on 127.0.0.1, with every request recorded for assertions.

#![allow(dead_code)]

pub mod fixtures;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// What the scripted model answers.
pub enum Reply {
    Text(String),
    /// (function name, raw JSON arguments)
    Calls(Vec<(String, String)>),
    /// An HTTP error status with a body.
    Status(u16, String),
}

pub fn text(s: impl Into<String>) -> Reply {
    Reply::Text(s.into())
}

pub fn call(name: &str, args: Value) -> Reply {
    Reply::Calls(vec![(name.into(), args.to_string())])
}

type Handler = dyn Fn(&Value) -> Reply + Send + Sync;

struct Script {
    handler: Arc<Handler>,
    delay: Duration,
    /// Vary each reply's delay (0..delay) and token counts with the request, so completion order
    /// differs from problem order and the dollars summed differ per call.
    varied: bool,
}

impl Respond for Script {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let (delay, prompt_tokens) = if self.varied {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            request.body.hash(&mut hasher);
            (self.delay.mul_f64((hasher.finish() % 16) as f64 / 16.0), request.body.len() as u64 / 3)
        } else {
            (self.delay, 100)
        };
        let template = match (self.handler)(&body) {
            Reply::Status(status, text) => return ResponseTemplate::new(status).set_body_string(text),
            Reply::Text(content) if body["stream"] == true => streamed_completion(&content, prompt_tokens),
            Reply::Text(content) => {
                completion(json!({"role": "assistant", "content": content}), prompt_tokens)
            }
            Reply::Calls(calls) => {
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, (name, args))| {
                        json!({"id": format!("call_{i}"), "type": "function",
                               "function": {"name": name, "arguments": args}})
                    })
                    .collect();
                completion(json!({"role": "assistant", "content": null, "tool_calls": calls}), prompt_tokens)
            }
        };
        template.set_delay(delay)
    }
}

fn completion(message: Value, prompt_tokens: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 20, "total_tokens": prompt_tokens + 20}
    }))
}

/// `content` as an OpenAI event stream: the text in pieces of up to 7 characters, then the usage.
fn streamed_completion(content: &str, prompt_tokens: u64) -> ResponseTemplate {
    let chars: Vec<char> = content.chars().collect();
    let mut events: Vec<Value> =
        vec![json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})];
    for piece in chars.chunks(7) {
        let piece: String = piece.iter().collect();
        events.push(json!({"choices": [{"index": 0, "delta": {"content": piece}}]}));
    }
    events.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
    events.push(json!({"choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 20,
                                                "total_tokens": prompt_tokens + 20}}));
    let mut body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

/// A running scripted server and a config list pointing at it.
pub struct Server {
    pub mock: MockServer,
    pub config: PathBuf,
}

/// The API key written into test configs; it must never appear in anything agentopt writes.
pub const SECRET: &str = "sk-test-SECRET-d34db33f";

impl Server {
    /// Every reply after `delay`, each call 100 input + 20 output tokens.
    pub async fn start(
        dir: &Path,
        delay: Duration,
        handler: impl Fn(&Value) -> Reply + Send + Sync + 'static,
    ) -> Server {
        Server::serve(dir, Script { handler: Arc::new(handler), delay, varied: false }).await
    }

    /// Replies after up to `max_delay` and with token counts that vary per request (both fixed for a
    /// given request body).
    pub async fn start_varied(
        dir: &Path,
        max_delay: Duration,
        handler: impl Fn(&Value) -> Reply + Send + Sync + 'static,
    ) -> Server {
        Server::serve(dir, Script { handler: Arc::new(handler), delay: max_delay, varied: true }).await
    }

    async fn serve(dir: &Path, script: Script) -> Server {
        let mock = MockServer::start().await;
        Mock::given(method("POST")).and(path("/v1/chat/completions")).respond_with(script).mount(&mock).await;
        let config = dir.join("OAI_CONFIG_LIST.json");
        let list = json!([{"model": "test-model", "api_key": SECRET, "api_type": "openai",
                           "base_url": format!("{}/v1", mock.uri()), "price": [0.001, 0.002]}]);
        std::fs::write(&config, list.to_string()).unwrap();
        Server { mock, config }
    }

    /// Every request body received so far, in arrival order.
    pub async fn bodies(&self) -> Vec<Value> {
        let requests = self.mock.received_requests().await.unwrap_or_default();
        requests.iter().map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null)).collect()
    }
}

/// Whether the request comes from the optimizer (its system prompt) rather than the assistant.
pub fn is_optimizer(body: &Value) -> bool {
    body["messages"][0]["content"].as_str().is_some_and(|s| s.starts_with("You are a function optimizer"))
}

/// The problem text of an assistant request (what follows "Problem:" in the opening).
pub fn problem(body: &Value) -> String {
    let opening = body["messages"][1]["content"].as_str().unwrap_or("");
    opening.rsplit("Problem:\n").next().unwrap_or("").to_string()
}

/// Names of the tools offered.
pub fn tools(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["function"]["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

pub fn messages(body: &Value) -> Vec<Value> {
    body["messages"].as_array().cloned().unwrap_or_default()
}

pub fn last(body: &Value) -> Value {
    messages(body).last().cloned().unwrap_or(Value::Null)
}

/// Writes problems as JSON lines: (id, problem, answer).
pub fn dataset(path: &Path, problems: &[(&str, &str, &str)]) {
    let lines: Vec<String> =
        problems.iter().map(|(id, p, a)| json!({"id": id, "problem": p, "answer": a}).to_string()).collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(files(&p)) } else { out.push(p) }
        }
    }
    out.sort();
    out
}

/// A file's JSON (or JSON lines) with what legitimately differs between two runs removed: timings,
/// timestamps and the run's own name/paths.
pub fn normalized(path: &Path) -> String {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for key in ["duration_ms", "timing", "time", "created_at", "updated_at"] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let values: Vec<Value> = if path.extension().is_some_and(|e| e == "jsonl") {
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    } else {
        vec![serde_json::from_str(&text).unwrap()]
    };
    values
        .into_iter()
        .map(|mut v| {
            strip(&mut v);
            // summary.json names its run.
            if let Some(map) = v.as_object_mut() {
                map.remove("run");
            }
            v.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `cmd` on the blocking pool, so the scripted server on this runtime keeps answering it.
pub async fn output_off_runtime(mut cmd: assert_cmd::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

/// Asserts the command succeeded and returns its last line of stdout (the `--json` summary).
pub fn json_summary(out: &std::process::Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_else(|| panic!("no output; stderr: {stderr}"));
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"))
}

/// uid and gid of `nobody` on Debian.
pub const NOBODY: &str = "65534";

/// An interpreter `nobody` can run: the project's `.venv` lives on a root-only pyenv Python, so this is a
/// venv on the system's Python 3.11 that reaches the project's packages through a `.pth` file.
pub fn python_for_nobody(dir: &Path) -> PathBuf {
    let site = |python: &Path| {
        let out = std::process::Command::new(python)
            .args(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    };
    let project = site(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let venv = dir.join("venv");
    let made = std::process::Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .expect("the system's /usr/bin/python3 (Debian's python3) is needed to run code as nobody");
    assert!(made.success());
    let python = venv.join("bin/python");
    std::fs::write(site(&python).join("agentopt-project.pth"), format!("{}\n", project.display())).unwrap();
    python
}

/// Writes problems as JSON lines to `dir/name` (see `dataset`) and returns the path.
pub fn dataset_in(dir: &Path, name: &str, problems: &[(&str, &str, &str)]) -> PathBuf {
    let path = dir.join(name);
    dataset(&path, problems);
    path
}

/// Starts the real binary in `dir` with `args` (stdout and stderr discarded), waits until the text
/// of `events` satisfies `reached`, and kills it with SIGKILL there. Fails when the run ends first or
/// takes over a minute to get there (`what` says where it was to get).
pub async fn kill_when(
    dir: &Path,
    args: &[String],
    events: &Path,
    what: &str,
    reached: impl Fn(&str) -> bool,
) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("agentopt"))
        .current_dir(dir)
        .env_remove("OAI_CONFIG_LIST")
        .env("AGENTOPT_PYTHON", Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if reached(&std::fs::read_to_string(events).unwrap_or_default()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the run never reached {what}");
        assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be killed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Asserts that no conversation completed twice (by phase and index) in a run's events.jsonl.
pub fn assert_each_conversation_once(events: &Path) {
    let done: Vec<String> = std::fs::read_to_string(events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "conversation_done")
        .map(|e| format!("{}#{}", e["phase"], e["index"]))
        .collect();
    let mut unique = done.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(done.len(), unique.len(), "a completed conversation ran twice");
}
