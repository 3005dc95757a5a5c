//! The OpenAI-compatible and Azure backends against a mock server: request shape, headers, parsing,
//! retries, timeouts and streamed replies.

use std::time::{Duration, Instant};

use agentopt::llm::{ChatRequest, Error, Message, ToolCall, ToolChoice, ToolSpec};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

fn entry(server: &MockServer) -> Value {
    json!({"model": "gpt-test", "api_key": KEY, "base_url": format!("{}/v1", server.uri()),
           "price": [1.0, 2.0], "timeout": 5})
}

async fn one_entry(server: &MockServer) -> (tempfile::TempDir, std::sync::Arc<dyn agentopt::llm::ChatModel>) {
    let dir = tempdir();
    let model = connect(&options(dir.path(), json!([entry(server)])));
    (dir, model)
}

#[tokio::test]
async fn request_body_headers_and_tool_call_reply() {
    let server = MockServer::start().await;
    let reply = json!({
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_9", "type": "function",
                            "function": {"name": "add", "arguments": "{\"a\": 1, \"b\": 1}"}}]}}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500}
    });
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(reply))
        .expect(1)
        .mount(&server)
        .await;
    let (_dir, model) = one_entry(&server).await;

    let earlier = ToolCall { id: "call_1".into(), name: "add".into(), arguments: "{\"a\":2,\"b\":2}".into() };
    let mut asked = Message::assistant("");
    asked.content = None;
    asked.tool_calls = vec![earlier.clone()];
    let request = ChatRequest {
        messages: vec![
            Message::system("sys"),
            Message::user("2+2, then 1+1?"),
            asked,
            Message::tool(&earlier, "4"),
        ],
        tools: vec![ToolSpec {
            name: "add".into(),
            description: "Adds two integers.".into(),
            parameters: json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}),
        }],
        tool_choice: Some(ToolChoice::Auto),
        temperature: Some(0.0),
        ..Default::default()
    };
    let response = model.chat(&request).await.unwrap();

    assert_eq!(
        response.message.tool_calls,
        vec![ToolCall { id: "call_9".into(), name: "add".into(), arguments: "{\"a\": 1, \"b\": 1}".into() }]
    );
    assert_eq!(response.message.content, None);
    assert_eq!(response.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        (response.usage.calls, response.usage.input_tokens, response.usage.output_tokens),
        (1, 1000, 500)
    );
    assert!((response.usage.usd - 2.0).abs() < 1e-9, "1k in at $1 + 0.5k out at $2");
    assert_eq!(response.model, "gpt-test");
    assert!(!response.cached);

    let sent = &server.received_requests().await.unwrap()[0];
    assert_eq!(sent.headers.get("content-type").unwrap(), "application/json");
    let body = body_of(sent);
    assert_eq!(
        body,
        json!({
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "2+2, then 1+1?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":2,\"b\":2}"}}]},
                {"role": "tool", "content": "4", "tool_call_id": "call_1"}
            ],
            "tools": [{"type": "function", "function": {"name": "add", "description": "Adds two integers.",
                "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}],
            "tool_choice": "auto",
            "temperature": 0.0
        })
    );
    let mut found = Vec::new();
    nulls(&body, "", &mut found);
    assert_eq!(found, vec!["/messages/2/content"], "only a tool-calling assistant turn may carry null");
}

#[tokio::test]
async fn optional_fields_are_absent_and_extra_is_passed_through() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_text_reply("2")))
        .mount(&server)
        .await;
    let (_dir, model) = one_entry(&server).await;
    let mut request = question();
    request.extra.insert("repeat_penalty".into(), json!(1.1));
    request.stop = vec!["```output".into()];
    request.seed = Some(7);
    request.max_tokens = Some(64);
    let response = model.chat(&request).await.unwrap();
    assert_eq!(response.message.content.as_deref(), Some("2"));

    let body = body_of(&server.received_requests().await.unwrap()[0]);
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    let mut keys = keys.clone();
    keys.sort();
    assert_eq!(keys, ["max_tokens", "messages", "model", "repeat_penalty", "seed", "stop"]);
    assert_eq!(body["stop"], json!(["```output"]));
    let mut found = Vec::new();
    nulls(&body, "", &mut found);
    assert!(found.is_empty(), "nulls sent: {found:?}");
}

#[tokio::test]
async fn azure_uses_deployment_url_api_version_and_api_key_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/deployments/gpt4o-deploy/chat/completions"))
        .and(query_param("api-version", "2024-02-01"))
        .and(header("api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_text_reply("hi")))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempdir();
    let opts = options(
        dir.path(),
        json!([{"model": "gpt4o-deploy", "api_type": "azure", "api_key": KEY,
                "base_url": server.uri() + "/", "api_version": "2024-02-01"}]),
    );
    let response = connect(&opts).chat(&question()).await.unwrap();
    assert_eq!(response.message.content.as_deref(), Some("hi"));
    let sent = &server.received_requests().await.unwrap()[0];
    assert!(sent.headers.get("authorization").is_none(), "Azure takes the key in api-key only");
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429).insert_header("retry-after", "1").set_body_string("slow down"),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_text_reply("ok")))
        .expect(1)
        .mount(&server)
        .await;
    let (_dir, model) = one_entry(&server).await;
    let started = Instant::now();
    let throttled = agentopt::llm::retry::rate_limited_count();
    let response = model.chat(&question()).await.unwrap();
    assert_eq!(response.message.content.as_deref(), Some("ok"));
    assert!(agentopt::llm::retry::rate_limited_count() > throttled, "the 429 was counted");
    assert!(started.elapsed() >= Duration::from_millis(900), "Retry-After: 1 was honoured");
}

#[tokio::test]
async fn server_errors_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_text_reply("ok")))
        .expect(1)
        .mount(&server)
        .await;
    let (_dir, model) = one_entry(&server).await;
    assert_eq!(model.chat(&question()).await.unwrap().message.content.as_deref(), Some("ok"));
}

#[tokio::test]
async fn persistent_server_errors_exhaust_the_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("unavailable"))
        .expect(3)
        .mount(&server)
        .await;
    let (_dir, model) = one_entry(&server).await;
    match model.chat(&question()).await {
        Err(Error::RetriesExhausted { model, attempts: 3, last }) => {
            assert_eq!(model, "gpt-test");
            assert!(last.contains("503"), "{last}");
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
}

#[tokio::test]
async fn truncated_body_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(r#"{"choices":[{"message":{"content":"#, "application/json"),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_text_reply("whole")))
        .expect(1)
        .mount(&server)
        .await;
    let (_dir, model) = one_entry(&server).await;
    assert_eq!(model.chat(&question()).await.unwrap().message.content.as_deref(), Some("whole"));
}

#[tokio::test]
async fn empty_choices_end_as_a_bad_reply() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"choices": [], "usage": {}})))
        .expect(3)
        .mount(&server)
        .await;
    let (_dir, model) = one_entry(&server).await;
    match model.chat(&question()).await {
        Err(Error::BadReply { detail, .. }) => assert!(detail.contains("no choices"), "{detail}"),
        other => panic!("expected BadReply, got {other:?}"),
    }
}

#[tokio::test]
async fn hung_request_hits_the_per_request_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(openai_text_reply("late"))
                .set_delay(Duration::from_secs(10)),
        )
        .mount(&server)
        .await;
    let dir = tempdir();
    let mut slow = entry(&server);
    slow["timeout"] = json!(0.2);
    let model = connect(&options(dir.path(), json!([slow])));
    let started = Instant::now();
    match model.chat(&question()).await {
        Err(Error::RetriesExhausted { attempts: 3, last, .. }) => {
            assert!(last.contains("timed out"), "{last}")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5), "3 attempts of 0.2 s, not the 10 s delay");
}

#[tokio::test]
async fn client_errors_are_not_retried_and_never_echo_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(format!("bad request from key {KEY}")))
        .expect(1)
        .mount(&server)
        .await;
    let (_dir, model) = one_entry(&server).await;
    let error = model.chat(&question()).await.unwrap_err();
    assert!(matches!(error, Error::Rejected { status: 400, .. }), "{error:?}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("bad request from key ***"), "{shown}");
}

#[tokio::test]
async fn unauthorized_is_an_auth_error_without_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(401)).expect(1).mount(&server).await;
    let (_dir, model) = one_entry(&server).await;
    let error = model.chat(&question()).await.unwrap_err();
    assert!(matches!(error, Error::Auth { status: 401, .. }), "{error:?}");
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    // Bind and drop a listener to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempdir();
    let opts =
        options(dir.path(), json!([{"model": "m", "base_url": format!("http://127.0.0.1:{port}/v1")}]));
    match connect(&opts).chat(&question()).await {
        Err(Error::RetriesExhausted { attempts: 3, last, .. }) => {
            assert!(last.contains("connection"), "{last}")
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
}

#[tokio::test]
async fn streamed_reply_is_assembled() {
    let (server, body) = streamed_server().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(&server)
        .await;
    let (_dir, model) = one_entry(&server).await;
    let response = model.chat(&question()).await.unwrap();
    assert_eq!(response.message.content.as_deref(), Some("The answer is \\boxed{2}."));
    assert_eq!(
        response.message.tool_calls,
        vec![ToolCall { id: "c1".into(), name: "check".into(), arguments: "{\"x\": 2}".into() }]
    );
    assert_eq!((response.usage.input_tokens, response.usage.output_tokens), (12, 7));
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
}

/// Asked to stream (`chat --stream`), the client sends `stream` with `include_usage`, hands the text
/// deltas to the caller's sink, and asks again without the usage option when a server refuses it.
#[tokio::test]
async fn a_streamed_request_feeds_the_sink_and_survives_a_server_without_stream_options() {
    let (server, body) = streamed_server().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_partial_json(json!({"stream_options": {"include_usage": true}})))
        .respond_with(ResponseTemplate::new(400).set_body_string("unknown field: stream_options"))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_partial_json(json!({"stream": true})))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(&server)
        .await;
    let (_dir, model) = one_entry(&server).await;
    let (sink, pieces) = collecting_sink();
    let response = agentopt::llm::stream::scope(sink, model.chat(&question())).await.unwrap();
    assert_eq!(*pieces.lock().unwrap(), ["The answer ", "is \\boxed{2}."]);
    assert_eq!(response.message.text(), pieces.lock().unwrap().concat());
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert!(second.get("stream_options").is_none() && second["stream"] == true, "{second}");
}

/// A mock server and an event-stream body: text in two deltas, a tool call in two, then usage.
async fn streamed_server() -> (MockServer, String) {
    let server = MockServer::start().await;
    let chunks = [
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": "The answer "}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": "is \\boxed{2}."}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "function",
            "function": {"name": "check", "arguments": "{\"x\""}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 2}"}}]},
            "finish_reason": "stop"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 7}}),
    ];
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    (server, body)
}
