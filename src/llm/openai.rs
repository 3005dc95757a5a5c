//! The OpenAI-compatible chat-completions backend (OpenAI, vLLM, llama.cpp, Ollama, LM Studio) and its
//! Azure OpenAI variant: the wire format, both ways, including streamed (SSE) replies.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::config::{ApiType, DEFAULT_AZURE_API_VERSION, DEFAULT_OPENAI_BASE, Entry, Secret};
use super::http;
use super::retry::{Endpoint, Failure};
use super::{ChatRequest, ChatResponse, Message, Role, ToolCall, ToolChoice, Usage, sse, stream};

/// Which URL scheme and key header to use; the body is the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    OpenAi,
    Azure { api_version: String },
}

#[derive(Debug)]
pub struct OpenAiClient {
    http: reqwest::Client,
    model: String,
    base_url: String,
    flavor: Flavor,
    key: Option<Secret>,
    timeout: Duration,
}

impl OpenAiClient {
    pub fn new(http: reqwest::Client, entry: &Entry) -> Self {
        let flavor = match entry.api_type {
            ApiType::Azure => Flavor::Azure {
                api_version: entry.api_version.clone().unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.into()),
            },
            _ => Flavor::OpenAi,
        };
        OpenAiClient {
            http,
            model: entry.model.clone(),
            base_url: entry.base_url.clone().unwrap_or_else(|| DEFAULT_OPENAI_BASE.into()),
            flavor,
            key: entry.api_key.clone(),
            timeout: entry.timeout,
        }
    }

    fn url(&self) -> String {
        match &self.flavor {
            Flavor::OpenAi => format!("{}/chat/completions", self.base_url),
            // Azure names the deployment in the path; we use the entry's `model` as deployment name.
            Flavor::Azure { api_version } => format!(
                "{}/openai/deployments/{}/chat/completions?api-version={api_version}",
                self.base_url, self.model
            ),
        }
    }
}

#[async_trait::async_trait]
impl Endpoint for OpenAiClient {
    fn model(&self) -> &str {
        &self.model
    }

    async fn attempt(&self, request: &ChatRequest) -> Result<ChatResponse, Failure> {
        let sink = stream::current();
        let mut body = request_body(&self.model, request);
        if sink.is_some() {
            body["stream"] = true.into();
            // Without it a streamed reply carries no token counts.
            body["stream_options"] = json!({"include_usage": true});
        }
        let post = |body: &Value| {
            let builder = self.http.post(self.url()).json(body);
            match (&self.flavor, &self.key) {
                (Flavor::OpenAi, Some(key)) => builder.bearer_auth(key.expose()),
                (Flavor::Azure { .. }, Some(key)) => builder.header("api-key", http::secret_header(key)),
                (_, None) => builder,
            }
        };
        let key = self.key.as_ref();
        let reply = match &sink {
            None => http::send(post(&body), self.timeout, key).await?,
            Some(sink) => {
                match http::send_streamed(post(&body), self.timeout, key, sink, delta_text).await {
                    // A server that knows streaming but not its usage option: stream without it.
                    Err(Failure::Status { status: 400 | 422, body: error, .. })
                        if error.contains("stream_options") =>
                    {
                        body.as_object_mut().map(|b| b.remove("stream_options"));
                        http::send_streamed(post(&body), self.timeout, key, sink, delta_text).await?
                    }
                    reply => reply?,
                }
            }
        };
        let parsed =
            if reply.is_event_stream() { parse_stream(&reply.body) } else { parse_reply(&reply.body) };
        let mut response = parsed.map_err(Failure::Unparseable)?;
        response.model = self.model.clone();
        Ok(response)
    }
}

/// The request body. `None` fields are left out entirely: several local servers reject `null`.
pub fn request_body(model: &str, request: &ChatRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), request.messages.iter().map(wire_message).collect());
    if !request.tools.is_empty() {
        let tools = request.tools.iter().map(|t| {
            json!({"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}})
        });
        body.insert("tools".into(), tools.collect());
        // OpenAI refuses `tool_choice` without `tools`, so it only travels with them.
        if let Some(choice) = &request.tool_choice {
            body.insert("tool_choice".into(), wire_tool_choice(choice));
        }
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), http::float(t));
    }
    if let Some(n) = request.max_tokens {
        body.insert("max_tokens".into(), n.into());
    }
    if !request.stop.is_empty() {
        body.insert("stop".into(), json!(request.stop));
    }
    if let Some(seed) = request.seed {
        body.insert("seed".into(), seed.into());
    }
    if request.json_schema.is_some() {
        // JSON mode rather than a strict schema: far more servers (and models) support it.
        body.insert("response_format".into(), json!({"type": "json_object"}));
    }
    for (key, value) in &request.extra {
        body.insert(key.clone(), value.clone());
    }
    Value::Object(body)
}

fn wire_tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => "auto".into(),
        ToolChoice::None => "none".into(),
        ToolChoice::Required => "required".into(),
        ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}),
    }
}

fn wire_message(message: &Message) -> Value {
    let role = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut out = Map::new();
    out.insert("role".into(), role.into());
    if message.role == Role::Assistant && !message.tool_calls.is_empty() {
        // The one place OpenAI wants an explicit null: a tool-calling turn without text.
        out.insert("content".into(), message.content.clone().map_or(Value::Null, Value::String));
        let calls = message.tool_calls.iter().map(|c| {
            json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})
        });
        out.insert("tool_calls".into(), calls.collect());
    } else {
        out.insert("content".into(), message.text().into());
    }
    if message.role == Role::Tool {
        out.insert("tool_call_id".into(), message.tool_call_id.clone().unwrap_or_default().into());
    }
    Value::Object(out)
}

/// Parses a non-streamed reply. `Err` holds why it is unusable (the caller retries it).
pub fn parse_reply(body: &str) -> Result<ChatResponse, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let Some(choice) = value.get("choices").and_then(Value::as_array).and_then(|c| c.first()) else {
        // Some proxies answer 200 with an `error` object instead of choices.
        return Err(match value.get("error") {
            Some(error) => format!("no choices; server error: {error}"),
            None => "the reply has no choices".into(),
        });
    };
    let message = choice.get("message").ok_or("choices[0] has no message")?;
    let content = text_of(message.get("content"));
    let mut tool_calls = Vec::new();
    for (i, call) in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let function = call.get("function").ok_or_else(|| format!("tool_calls[{i}] has no function"))?;
        tool_calls.push(ToolCall {
            id: call.get("id").and_then(Value::as_str).map_or_else(|| format!("call_{i}"), str::to_string),
            name: function.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
            arguments: arguments_of(function.get("arguments")),
        });
    }
    Ok(response(content, tool_calls, usage_of(&value), string_of(choice.get("finish_reason"))))
}

/// The text a streamed chunk adds to the reply.
fn delta_text(event: &Value) -> Option<&str> {
    event.pointer("/choices/0/delta/content")?.as_str()
}

/// Assembles a streamed reply: content deltas are concatenated, tool-call deltas merged by `index`.
pub fn parse_stream(body: &str) -> Result<ChatResponse, String> {
    let events = sse::data_events(body);
    if events.is_empty() {
        return Err("the event stream holds no data".into());
    }
    let mut content: Option<String> = None;
    let mut calls: BTreeMap<u64, ToolCall> = BTreeMap::new();
    let mut usage = Usage::default();
    let mut finish_reason = None;
    for event in &events {
        let chunk: Value = serde_json::from_str(event).map_err(|e| format!("invalid JSON in stream: {e}"))?;
        if let Some(error) = chunk.get("error") {
            return Err(format!("server error in stream: {error}"));
        }
        if chunk.get("usage").is_some_and(Value::is_object) {
            usage = usage_of(&chunk);
        }
        let Some(choice) = chunk.get("choices").and_then(Value::as_array).and_then(|c| c.first()) else {
            continue;
        };
        finish_reason = string_of(choice.get("finish_reason")).or(finish_reason);
        let Some(delta) = choice.get("delta") else { continue };
        if let Some(text) = text_of(delta.get("content")) {
            content.get_or_insert_with(String::new).push_str(&text);
        }
        for (position, part) in
            delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate()
        {
            let index = part.get("index").and_then(Value::as_u64).unwrap_or(position as u64);
            let call = calls.entry(index).or_insert_with(|| ToolCall {
                id: format!("call_{index}"),
                name: String::new(),
                arguments: String::new(),
            });
            if let Some(id) = part.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) {
                call.id = id.to_string();
            }
            let function = part.get("function");
            if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str) {
                call.name.push_str(name);
            }
            match function.and_then(|f| f.get("arguments")) {
                Some(Value::String(piece)) => call.arguments.push_str(piece),
                Some(other @ Value::Object(_)) => call.arguments.push_str(&other.to_string()),
                _ => {}
            }
        }
    }
    if content.is_none() && calls.is_empty() && finish_reason.is_none() {
        return Err("the event stream holds no choices".into());
    }
    Ok(response(content, calls.into_values().collect(), usage, finish_reason))
}

fn response(
    content: Option<String>,
    tool_calls: Vec<ToolCall>,
    usage: Usage,
    finish_reason: Option<String>,
) -> ChatResponse {
    ChatResponse {
        message: Message { role: Role::Assistant, content, tool_calls, tool_call_id: None, name: None },
        usage,
        model: String::new(),
        cached: false,
        finish_reason,
    }
}

/// `content` is a string, null, or (some servers) a list of `{type: "text", text}` parts.
fn text_of(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let text: String = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
            Some(text)
        }
        _ => None,
    }
}

/// `arguments` should be a JSON string; Ollama-style servers send the object itself.
fn arguments_of(arguments: Option<&Value>) -> String {
    match arguments {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

fn string_of(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_string)
}

fn usage_of(value: &Value) -> Usage {
    let count = |field: &str| value.pointer(&format!("/usage/{field}")).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        calls: 1,
        input_tokens: count("prompt_tokens"),
        output_tokens: count("completion_tokens"),
        usd: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolSpec;

    #[test]
    fn none_fields_are_omitted_and_extra_is_merged() {
        let mut request = ChatRequest { messages: vec![Message::user("hi")], ..Default::default() };
        let body = request_body("m", &request);
        assert_eq!(body, json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        request.tool_choice = Some(ToolChoice::Required);
        request.extra.insert("repeat_penalty".into(), json!(1.1));
        let body = request_body("m", &request);
        assert!(body.get("tool_choice").is_none(), "tool_choice without tools must not be sent");
        assert_eq!(body["repeat_penalty"], json!(1.1));
        request.temperature = Some(0.7);
        assert_eq!(request_body("m", &request)["temperature"].to_string(), "0.7");
    }

    #[test]
    fn tool_turns_serialize_as_openai_expects() {
        let call = ToolCall { id: "c1".into(), name: "f".into(), arguments: "{\"x\":1}".into() };
        let mut assistant = Message::assistant("");
        assistant.content = None;
        assistant.tool_calls = vec![call.clone()];
        let request = ChatRequest {
            messages: vec![assistant, Message::tool(&call, "2")],
            tools: vec![ToolSpec { name: "f".into(), description: "d".into(), parameters: json!({}) }],
            tool_choice: Some(ToolChoice::Function("f".into())),
            ..Default::default()
        };
        let body = request_body("m", &request);
        assert_eq!(body["messages"][0]["content"], Value::Null);
        assert_eq!(body["messages"][0]["tool_calls"][0]["function"]["arguments"], "{\"x\":1}");
        assert_eq!(body["messages"][1], json!({"role": "tool", "content": "2", "tool_call_id": "c1"}));
        assert_eq!(body["tool_choice"], json!({"type": "function", "function": {"name": "f"}}));
        assert_eq!(body["tools"][0]["type"], "function");
    }

    #[test]
    fn object_arguments_and_content_parts_are_accepted() {
        let body = r#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],
            "tool_calls":[{"function":{"name":"f","arguments":{"x":1}}}]},"finish_reason":"tool_calls"}]}"#;
        let reply = parse_reply(body).unwrap();
        assert_eq!(reply.message.content.as_deref(), Some("ab"));
        assert_eq!(reply.message.tool_calls[0].arguments, "{\"x\":1}");
        assert_eq!(reply.message.tool_calls[0].id, "call_0");
        assert_eq!(reply.usage.input_tokens, 0);
    }

    #[test]
    fn stream_tool_call_deltas_merge_by_index() {
        let body = [
            r#"data: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":""}}]}}]}"#,
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{}"}}]}}]}"#,
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"x\":"}}]}}]}"#,
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":"tool_calls"}]}"#,
            r#"data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
            "data: [DONE]",
        ]
        .join("\n\n");
        let reply = parse_stream(&body).unwrap();
        let calls = &reply.message.tool_calls;
        assert_eq!(
            (calls[0].id.as_str(), calls[0].name.as_str(), calls[0].arguments.as_str()),
            ("a", "f", "{\"x\":1}")
        );
        assert_eq!((calls[1].id.as_str(), calls[1].arguments.as_str()), ("b", "{}"));
        assert_eq!(reply.message.content, None);
        assert_eq!((reply.usage.input_tokens, reply.usage.output_tokens), (3, 4));
        assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
    }

    #[test]
    fn broken_bodies_are_errors() {
        assert!(parse_reply(r#"{"choices":[{"message":{"content":"x"#).is_err());
        assert!(parse_reply(r#"{"choices":[]}"#).unwrap_err().contains("no choices"));
        assert!(parse_reply(r#"{"error":{"message":"overloaded"}}"#).unwrap_err().contains("overloaded"));
        assert!(parse_stream("data: [DONE]\n\n").is_err());
    }
}
