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
    use agentopt::llm::{CacheMode, ChatRequest, Message, ModelOptions, ToolChoice, ToolSpec, connect};

    let server = start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("OAI_CONFIG_LIST");
    let list = json!([{"model": "gemma-3-270m", "base_url": server.base_url, "api_key": "not-needed"}]);
    std::fs::write(&config, list.to_string()).unwrap();
    let opts = ModelOptions {
        config: Some(config),
        model: None,
        cache: CacheMode::Off,
        cache_dir: dir.path().join("cache"),
    };
    let model = connect(&opts).expect("the config list connects");

    let mut request = ChatRequest {
        messages: vec![Message::user("What is 2 + 3?")],
        temperature: Some(0.0),
        max_tokens: Some(32),
        ..Default::default()
    };
    request.extra.insert("repeat_penalty".into(), json!(1.0));
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
