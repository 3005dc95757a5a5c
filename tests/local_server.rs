//! A real OpenAI-compatible server no one here wrote (llama-cpp-python's, on the default GGUF), started on
//! a free local port: plain completions return text and a forced `tool_choice` returns real `tool_calls`.
//! Needs `scripts/setup-test-server.sh` (run by scripts/test.sh).

use std::time::Duration;

use agentopt::bench::llama_server::{self, LlamaServer};
use serde_json::{Value, json};

async fn start() -> LlamaServer {
    let gguf = agentopt::llm::local::default_model_path().expect("default weights (scripts/setup.sh)");
    let python = agentopt::exec::find_python();
    let format = Some(llama_server::BASE_MODEL_CHAT_FORMAT);
    llama_server::start(&python, &gguf, 2048, format, Duration::from_secs(120)).await.unwrap()
}

/// The project's model stack (config list → `connect`), uncached, for the server; the config lives in `dir`.
fn connect_to(server: &LlamaServer, dir: &std::path::Path) -> std::sync::Arc<dyn agentopt::llm::ChatModel> {
    use agentopt::llm::{CacheMode, ModelOptions, connect};
    let config = dir.join("OAI_CONFIG_LIST");
    let list = json!([{"model": "gemma-3-270m", "base_url": server.base_url, "api_key": "not-needed"}]);
    std::fs::write(&config, list.to_string()).unwrap();
    let opts = ModelOptions {
        config: Some(config),
        model: None,
        cache: CacheMode::Off,
        cache_dir: dir.join("cache"),
        inline: None,
    };
    connect(&opts).expect("the config list connects")
}

/// A greedy request for a short reply to `question`, with no repeat penalty (the same every time).
fn greedy(question: &str) -> agentopt::llm::ChatRequest {
    let mut request = agentopt::llm::ChatRequest {
        messages: vec![agentopt::llm::Message::user(question)],
        temperature: Some(0.0),
        max_tokens: Some(32),
        ..Default::default()
    };
    request.extra.insert("repeat_penalty".into(), json!(1.0));
    request
}

async fn complete(server: &LlamaServer, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url))
        .json(&body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .expect("request reaches the server");
    assert!(response.status().is_success(), "HTTP {}", response.status());
    response.json().await.expect("a JSON reply")
}

#[tokio::test]
async fn real_server_answers_and_calls_forced_functions() {
    let server = start().await;

    let plain = complete(
        &server,
        json!({
            "model": "gemma-3-270m",
            "messages": [{"role": "user", "content": "What is 2 + 3?"}],
            "temperature": 0, "repeat_penalty": 1.0, "max_tokens": 32
        }),
    )
    .await;
    let text = plain["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    assert!(!text.trim().is_empty(), "{plain}");
    assert!(plain["usage"]["prompt_tokens"].as_u64().unwrap_or(0) > 0, "{plain}");

    let forced = complete(
        &server,
        json!({
            "model": "gemma-3-270m",
            "messages": [{"role": "user", "content": "Add 2 and 3 with the add function."}],
            "tools": [{"type": "function", "function": {
                "name": "add", "description": "Adds two integers.",
                "parameters": {"type": "object",
                    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                    "required": ["a", "b"]}}}],
            "tool_choice": {"type": "function", "function": {"name": "add"}},
            "temperature": 0, "repeat_penalty": 1.0, "max_tokens": 64
        }),
    )
    .await;
    let call = &forced["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "add", "{forced}");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).expect("JSON arguments");
    assert!(args.is_object(), "{args}");
}

/// The project's own OpenAI-compatible path (config list → `connect` → retry → HTTP client) against the
/// real server: a plain reply with text and usage, and a forced function as real `tool_calls`.
#[tokio::test]
async fn project_client_gets_text_and_forced_tool_calls() {
    use agentopt::llm::{Message, ToolChoice, ToolSpec};

    let server = start().await;
    let dir = tempfile::tempdir().unwrap();
    let model = connect_to(&server, dir.path());

    let mut request = greedy("What is 2 + 3?");
    let reply = model.chat(&request).await.expect("a plain reply");
    assert!(!reply.message.text().trim().is_empty(), "{reply:?}");
    assert!(reply.usage.input_tokens > 0 && reply.usage.output_tokens > 0, "{reply:?}");

    request.messages = vec![Message::user("Add 2 and 3 with the add function.")];
    request.max_tokens = Some(64);
    request.tools = vec![ToolSpec {
        name: "add".into(),
        description: "Adds two integers.".into(),
        parameters: json!({"type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}),
    }];
    request.tool_choice = Some(ToolChoice::Function("add".into()));
    let reply = model.chat(&request).await.expect("a tool-call reply");
    let call = reply.message.tool_calls.first().unwrap_or_else(|| panic!("no tool_calls: {reply:?}"));
    assert_eq!(call.name, "add");
    let args: Value = serde_json::from_str(&call.arguments).expect("JSON arguments");
    assert!(args["a"].is_i64() && args["b"].is_i64(), "{args}");
}

/// `chat --stream`'s path through the project's client: the real server streams the reply in pieces,
/// and the reply assembled from its events is exactly those pieces.
#[tokio::test]
async fn project_client_streams_what_it_gets_whole() {
    use agentopt::llm::stream::{self, Piece, Sink};

    let server = start().await;
    let dir = tempfile::tempdir().unwrap();
    let model = connect_to(&server, dir.path());
    let request = greedy("Name three colours.");
    let whole = model.chat(&request).await.expect("a plain reply");
    let pieces = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let into = pieces.clone();
    let sink: Sink = std::sync::Arc::new(move |p| {
        if let Piece::Text(t) = p {
            into.lock().unwrap().push(t.to_string());
        }
    });
    let streamed = stream::scope(sink, model.chat(&request)).await.expect("a streamed reply");
    let pieces = pieces.lock().unwrap();
    assert!(pieces.len() > 1, "{pieces:?}");
    assert_eq!(pieces.concat(), streamed.message.text());
    // The server's own greedy replies differ between its streamed and whole paths, so only the
    // shape is compared: text both ways.
    assert!(!streamed.message.text().trim().is_empty() && !whole.message.text().trim().is_empty());
    assert_eq!(streamed.usage.calls, 1);
}

/// Forces the optimizer's first call onto `add_function`: llama-cpp-python's server only returns
/// `tool_calls` for a forced function (with `tool_choice: "auto"` this base model answers in text).
struct ForceAddFunction(std::sync::Arc<dyn agentopt::llm::ChatModel>);

#[async_trait::async_trait]
impl agentopt::llm::ChatModel for ForceAddFunction {
    async fn chat(
        &self,
        request: &agentopt::llm::ChatRequest,
    ) -> Result<agentopt::llm::ChatResponse, agentopt::llm::Error> {
        let mut forced = request.clone();
        forced.tool_choice = Some(agentopt::llm::ToolChoice::Function("add_function".into()));
        forced.max_tokens = Some(256);
        forced.extra.insert("repeat_penalty".into(), json!(1.0));
        self.0.chat(&forced).await
    }
}

/// The optimizer step (its prompt, its AG2 tool schemas, action parsing and sandbox validation) fed by
/// a real `tool_calls` reply from the real server through the project's OpenAI-compatible client.
#[tokio::test]
async fn optimizer_step_takes_a_real_tool_call_from_the_server() {
    use agentopt::functions::Registry;
    use agentopt::optimizer::{Optimizer, OptimizerConfig, StepInput};
    use agentopt::record::Event;
    use std::sync::Arc;

    let server = start().await;
    let dir = tempfile::tempdir().unwrap();
    let model = Arc::new(ForceAddFunction(connect_to(&server, dir.path())));
    let sandbox = agentopt::exec::Sandbox::new(agentopt::exec::SandboxConfig::default()).expect("bwrap");
    let optimizer = Optimizer {
        model,
        runner: Arc::new(sandbox),
        config: OptimizerConfig { actions_per_step: 1, max_retries: 0, ..OptimizerConfig::default() },
        brief: Default::default(),
        candidate: None,
    };
    let best = Registry::default();
    let input = StepInput {
        epoch: 1,
        best: &best,
        best_epoch: 0,
        best_score: 0.0,
        rejected: &[],
        conversations: &[],
    };
    let outcome = optimizer.step(&input).await.expect("the step reaches the server and the sandbox");

    let proposed: Vec<_> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Event::ActionProposed { call, .. } => Some(call),
            _ => None,
        })
        .collect();
    let call =
        proposed.first().unwrap_or_else(|| panic!("no tool call reached the step: {:?}", outcome.events));
    assert_eq!(call.name, "add_function", "{call:?}");
    assert!(!call.id.is_empty() && !call.arguments.trim().is_empty(), "{call:?}");
    // Whatever the tiny model wrote was judged: applied, or rejected with a reason and skipped.
    let judged = outcome.events.iter().any(|e| match e {
        Event::ActionApplied { action, .. } => action.name() == outcome.registry.functions[0].name,
        Event::ActionSkipped { tool, error, .. } => tool == "add_function" && !error.is_empty(),
        _ => false,
    });
    assert!(judged, "{:?}", outcome.events);
    assert_eq!(outcome.applied, outcome.registry.functions.len());
    assert!(outcome.usage.input_tokens > 0, "usage from the server: {:?}", outcome.usage);
    eprintln!("optimizer step through llama_cpp.server: {:?}", outcome.events);
}
