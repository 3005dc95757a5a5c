//! The Anthropic Messages backend against a mock server: headers, block format and reply parsing.

use agentopt::llm::{ChatRequest, Message, ToolCall, ToolChoice, ToolSpec};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

#[tokio::test]
async fn messages_request_and_tool_use_reply() {
    let server = MockServer::start().await;
    let reply = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_2", "name": "add", "input": {"a": 1, "b": 1}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 2000, "output_tokens": 100}
    });
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(reply))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempdir();
    let opts = options(
        dir.path(),
        json!([{"model": "claude-test", "api_type": "anthropic", "api_key": KEY, "base_url": server.uri(),
                "price": [0.003, 0.015]}]),
    );
    let model = connect(&opts);

    let first = ToolCall { id: "toolu_1".into(), name: "add".into(), arguments: "{\"a\":2,\"b\":2}".into() };
    let second =
        ToolCall { id: "toolu_1b".into(), name: "add".into(), arguments: "{\"a\":3,\"b\":3}".into() };
    let mut asked = Message::assistant("");
    asked.content = None;
    asked.tool_calls = vec![first.clone(), second.clone()];
    let request = ChatRequest {
        messages: vec![
            Message::system("You add."),
            Message::user("2+2 and 3+3?"),
            asked,
            Message::tool(&first, "4"),
            Message::tool(&second, "6"),
        ],
        tools: vec![ToolSpec {
            name: "add".into(),
            description: "Adds.".into(),
            parameters: json!({"type": "object"}),
        }],
        tool_choice: Some(ToolChoice::Function("add".into())),
        temperature: Some(0.5),
        ..Default::default()
    };
    let response = model.chat(&request).await.unwrap();

    assert_eq!(response.message.content.as_deref(), Some("Checking."));
    assert_eq!(
        response.message.tool_calls,
        vec![ToolCall { id: "toolu_2".into(), name: "add".into(), arguments: "{\"a\":1,\"b\":1}".into() }]
    );
    assert_eq!((response.usage.input_tokens, response.usage.output_tokens), (2000, 100));
    assert!((response.usage.usd - (0.006 + 0.0015)).abs() < 1e-12);

    let sent = &server.received_requests().await.unwrap()[0];
    assert!(sent.headers.get("authorization").is_none());
    assert_eq!(
        body_of(sent),
        json!({
            "model": "claude-test",
            "system": "You add.",
            "max_tokens": 4096,
            "temperature": 0.5,
            "tools": [{"name": "add", "description": "Adds.", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "add"},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "2+2 and 3+3?"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2, "b": 2}},
                    {"type": "tool_use", "id": "toolu_1b", "name": "add", "input": {"a": 3, "b": 3}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "4"},
                    {"type": "tool_result", "tool_use_id": "toolu_1b", "content": "6"}]}
            ]
        })
    );
}

#[tokio::test]
async fn overloaded_anthropic_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(529)
                .set_body_json(json!({"type": "error", "error": {"type": "overloaded_error"}})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "content": [{"type": "text", "text": "2"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 1, "output_tokens": 1}})))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempdir();
    let opts = options(
        dir.path(),
        json!([{"model": "c", "api_type": "anthropic", "api_key": KEY, "base_url": server.uri()}]),
    );
    let response = connect(&opts).chat(&question()).await.unwrap();
    assert_eq!(response.message.content.as_deref(), Some("2"));
    assert_eq!(response.finish_reason.as_deref(), Some("end_turn"));
}

/// Asked to stream, the backend sends `stream: true`, feeds the text deltas to the caller's sink as
/// they come, and assembles the same reply (text, tool call, usage and cost) a whole one would give.
#[tokio::test]
async fn a_streamed_reply_reaches_the_sink_and_assembles_whole() {
    let server = MockServer::start().await;
    let events = [
        json!({"type": "message_start", "message": {"usage": {"input_tokens": 1000, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Four, "}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "I think."}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 100}}),
        json!({"type": "message_stop"}),
    ];
    let body: String = events.iter().map(|e| format!("event: e\ndata: {e}\n\n")).collect();
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(wiremock::matchers::body_partial_json(json!({"stream": true})))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempdir();
    let opts = options(
        dir.path(),
        json!([{"model": "claude-test", "api_type": "anthropic", "api_key": KEY, "base_url": server.uri(),
                "price": [0.003, 0.015]}]),
    );
    let model = connect(&opts);
    let (sink, pieces) = collecting_sink();
    let reply = agentopt::llm::stream::scope(sink, model.chat(&question())).await.unwrap();
    assert_eq!(*pieces.lock().unwrap(), ["Four, ", "I think."]);
    assert_eq!(reply.message.text(), "Four, I think.");
    assert_eq!((reply.usage.input_tokens, reply.usage.output_tokens), (1000, 100));
    assert!((reply.usage.usd - (0.003 + 0.0015)).abs() < 1e-12, "{}", reply.usage.usd);
}
