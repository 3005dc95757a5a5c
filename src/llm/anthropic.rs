//! The Anthropic Messages backend: system prompt at top level, tool calls as `tool_use` blocks, tool
//! results as user-role `tool_result` blocks, and the translation of replies back to the neutral model.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::config::{DEFAULT_ANTHROPIC_BASE, Entry, Secret};
use super::http;
use super::retry::{Endpoint, Failure};
use super::{ChatRequest, ChatResponse, Message, Role, ToolCall, ToolChoice, Usage, sse, stream};

pub const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; this is used when the request leaves it open.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

#[derive(Debug)]
pub struct AnthropicClient {
    http: reqwest::Client,
    model: String,
    base_url: String,
    key: Option<Secret>,
    timeout: Duration,
}

impl AnthropicClient {
    pub fn new(http: reqwest::Client, entry: &Entry) -> Self {
        AnthropicClient {
            http,
            model: entry.model.clone(),
            base_url: entry.base_url.clone().unwrap_or_else(|| DEFAULT_ANTHROPIC_BASE.into()),
            key: entry.api_key.clone(),
            timeout: entry.timeout,
        }
    }
}

#[async_trait::async_trait]
impl Endpoint for AnthropicClient {
    fn model(&self) -> &str {
        &self.model
    }

    async fn attempt(&self, request: &ChatRequest) -> Result<ChatResponse, Failure> {
        let sink = stream::current();
        let mut body = request_body(&self.model, request);
        if sink.is_some() {
            body["stream"] = true.into();
        }
        let mut builder = self
            .http
            .post(format!("{}/v1/messages", self.base_url))
            .header("anthropic-version", API_VERSION)
            .json(&body);
        if let Some(key) = &self.key {
            builder = builder.header("x-api-key", http::secret_header(key));
        }
        let reply = match sink {
            None => http::send(builder, self.timeout, self.key.as_ref()).await?,
            Some(sink) => {
                http::send_streamed(builder, self.timeout, self.key.as_ref(), &sink, text_delta).await?
            }
        };
        let parsed =
            if reply.is_event_stream() { parse_stream(&reply.body) } else { parse_reply(&reply.body) };
        let mut response = parsed.map_err(Failure::Unparseable)?;
        response.model = self.model.clone();
        Ok(response)
    }
}

pub fn request_body(model: &str, request: &ChatRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    let system: Vec<&str> =
        request.messages.iter().filter(|m| m.role == Role::System).map(Message::text).collect();
    if !system.is_empty() {
        body.insert("system".into(), system.join("\n\n").into());
    }
    body.insert("messages".into(), wire_messages(&request.messages));
    body.insert("max_tokens".into(), request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).into());
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}));
        body.insert("tools".into(), tools.collect());
        if let Some(choice) = &request.tool_choice {
            body.insert("tool_choice".into(), wire_tool_choice(choice));
        }
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), http::float(t));
    }
    if !request.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(request.stop));
    }
    // `seed` and `json_schema` have no Anthropic counterpart and are dropped; `extra` passes through.
    for (key, value) in &request.extra {
        body.insert(key.clone(), value.clone());
    }
    Value::Object(body)
}

fn wire_tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Function(name) => json!({"type": "tool", "name": name}),
    }
}

/// Turns the conversation into alternating user/assistant messages of content blocks: tool results
/// become user-role `tool_result` blocks, and consecutive same-role turns are merged into one message.
fn wire_messages(messages: &[Message]) -> Value {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message.role {
            Role::System => continue,
            Role::User => ("user", text_block(message)),
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id.clone().unwrap_or_default(),
                    "content": message.text(),
                })],
            ),
            Role::Assistant => {
                let mut blocks = text_block(message);
                blocks.extend(message.tool_calls.iter().map(|call| {
                    json!({"type": "tool_use", "id": call.id, "name": call.name, "input": tool_input(call)})
                }));
                ("assistant", blocks)
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect()
}

/// Anthropic rejects empty text blocks, so empty content yields none.
fn text_block(message: &Message) -> Vec<Value> {
    match message.text() {
        "" => Vec::new(),
        text => vec![json!({"type": "text", "text": text})],
    }
}

/// `input` must be an object. Arguments that are not a JSON object (another model may have written
/// them) are passed as `{"arguments": raw}` rather than lost.
fn tool_input(call: &ToolCall) -> Value {
    match serde_json::from_str::<Value>(&call.arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ if call.arguments.trim().is_empty() => json!({}),
        _ => json!({"arguments": call.arguments}),
    }
}

/// The text a streamed event adds to the reply.
fn text_delta(event: &Value) -> Option<&str> {
    event.pointer("/delta/text")?.as_str()
}

/// Assembles a streamed reply (message_start, content_block_start/delta, message_delta events) into
/// the message a non-streamed reply would hold, and parses that.
pub fn parse_stream(body: &str) -> Result<ChatResponse, String> {
    let mut blocks: Vec<Value> = Vec::new();
    let mut partial_json: Vec<String> = Vec::new();
    let mut usage = json!({"input_tokens": 0, "output_tokens": 0});
    let mut stop_reason = Value::Null;
    let events = sse::data_events(body);
    if events.is_empty() {
        return Err("the event stream holds no data".into());
    }
    for event in events {
        let value: Value =
            serde_json::from_str(&event).map_err(|e| format!("invalid JSON in stream: {e}"))?;
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        match value.get("type").and_then(Value::as_str) {
            Some("error") => return Err(format!("server error in stream: {}", value["error"])),
            Some("message_start") => {
                if let Some(n) = value.pointer("/message/usage/input_tokens") {
                    usage["input_tokens"] = n.clone();
                }
            }
            Some("content_block_start") => {
                while blocks.len() <= index {
                    blocks.push(Value::Null);
                    partial_json.push(String::new());
                }
                blocks[index] = value.get("content_block").cloned().unwrap_or(Value::Null);
            }
            Some("content_block_delta") if index < blocks.len() => {
                let delta = &value["delta"];
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    let so_far = blocks[index]["text"].as_str().unwrap_or_default().to_string();
                    blocks[index]["text"] = format!("{so_far}{text}").into();
                }
                if let Some(json) = delta.get("partial_json").and_then(Value::as_str) {
                    partial_json[index].push_str(json);
                }
            }
            Some("message_delta") => {
                if let Some(reason) = value.pointer("/delta/stop_reason") {
                    stop_reason = reason.clone();
                }
                if let Some(n) = value.pointer("/usage/output_tokens") {
                    usage["output_tokens"] = n.clone();
                }
            }
            _ => {}
        }
    }
    for (block, json) in blocks.iter_mut().zip(&partial_json) {
        if block["type"] == "tool_use" && !json.trim().is_empty() {
            block["input"] = serde_json::from_str(json).map_err(|e| format!("tool input in stream: {e}"))?;
        }
    }
    let message = json!({"content": blocks, "usage": usage, "stop_reason": stop_reason});
    parse_reply(&message.to_string())
}

pub fn parse_reply(body: &str) -> Result<ChatResponse, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let blocks = value.get("content").and_then(Value::as_array).ok_or_else(|| match value.get("error") {
        Some(error) => format!("no content; server error: {error}"),
        None => "the reply has no content list".to_string(),
    })?;
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let piece = block.get("text").and_then(Value::as_str).unwrap_or_default();
                text.get_or_insert_with(String::new).push_str(piece);
            }
            Some("tool_use") => tool_calls.push(ToolCall {
                id: block.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                name: block.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                arguments: block.get("input").map_or_else(|| "{}".to_string(), Value::to_string),
            }),
            // Thinking and other block types carry nothing the neutral model holds.
            _ => {}
        }
    }
    let count = |field: &str| value.pointer(&format!("/usage/{field}")).and_then(Value::as_u64).unwrap_or(0);
    Ok(ChatResponse {
        message: Message { role: Role::Assistant, content: text, tool_calls, tool_call_id: None, name: None },
        usage: Usage {
            calls: 1,
            input_tokens: count("input_tokens"),
            output_tokens: count("output_tokens"),
            usd: 0.0,
        },
        model: String::new(),
        cached: false,
        finish_reason: value.get("stop_reason").and_then(Value::as_str).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolSpec;

    #[test]
    fn a_streamed_reply_assembles_like_a_whole_one() {
        let events = [
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 12, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "add."}}),
            json!({"type": "content_block_start", "index": 1,
                   "content_block": {"type": "tool_use", "id": "t1", "name": "add", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\": "}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}}),
            json!({"type": "message_stop"}),
        ];
        let body: String = events.iter().map(|e| format!("event: x\ndata: {e}\n\n")).collect();
        let r = parse_stream(&body).unwrap();
        assert_eq!(r.message.text(), "Let me add.");
        assert_eq!(
            (r.message.tool_calls[0].name.as_str(), r.message.tool_calls[0].arguments.as_str()),
            ("add", "{\"a\":1}")
        );
        assert_eq!(
            (r.usage.input_tokens, r.usage.output_tokens, r.finish_reason.as_deref()),
            (12, 30, Some("tool_use"))
        );
        let error = json!({"type": "error", "error": {"type": "overloaded_error"}});
        assert!(parse_stream(&format!("data: {error}\n\n")).unwrap_err().contains("overloaded"));
    }

    #[test]
    fn conversation_maps_to_blocks() {
        let call = ToolCall { id: "t1".into(), name: "f".into(), arguments: "{\"x\":1}".into() };
        let call2 = ToolCall { id: "t2".into(), name: "f".into(), arguments: "not json".into() };
        let mut assistant = Message::assistant("let me compute");
        assistant.tool_calls = vec![call.clone(), call2.clone()];
        let request = ChatRequest {
            messages: vec![
                Message::system("be brief"),
                Message::user("q"),
                assistant,
                Message::tool(&call, "1"),
                Message::tool(&call2, "2"),
                Message::user("go on"),
            ],
            tools: vec![ToolSpec {
                name: "f".into(),
                description: "d".into(),
                parameters: json!({"type": "object"}),
            }],
            tool_choice: Some(ToolChoice::Required),
            stop: vec!["END".into()],
            seed: Some(3),
            ..Default::default()
        };
        let body = request_body("claude", &request);
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["max_tokens"], 4096);
        assert_eq!(body["tool_choice"], json!({"type": "any"}));
        assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object"}));
        assert_eq!(body["stop_sequences"], json!(["END"]));
        assert!(body.get("seed").is_none() && body.get("temperature").is_none());
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[1]["content"][1]["input"], json!({"x": 1}));
        assert_eq!(messages[1]["content"][2]["input"], json!({"arguments": "not json"}));
        let results = &messages[2]["content"];
        assert_eq!(results[0], json!({"type": "tool_result", "tool_use_id": "t1", "content": "1"}));
        assert_eq!(results[1]["tool_use_id"], "t2");
        assert_eq!(results[2], json!({"type": "text", "text": "go on"}));
    }

    #[test]
    fn reply_blocks_map_back() {
        let body = r#"{"content":[{"type":"text","text":"ok"},{"type":"tool_use","id":"tu","name":"f","input":{"a":[1]}}],
            "stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":6}}"#;
        let reply = parse_reply(body).unwrap();
        assert_eq!(reply.message.content.as_deref(), Some("ok"));
        assert_eq!(reply.message.tool_calls[0].arguments, "{\"a\":[1]}");
        assert_eq!((reply.usage.input_tokens, reply.usage.output_tokens), (5, 6));
        assert_eq!(reply.finish_reason.as_deref(), Some("tool_use"));
        assert!(parse_reply(r#"{"type":"error","error":{"type":"overloaded_error"}}"#).is_err());
    }
}
