//! A scripted `ChatModel` for tests: replies are decided by a closure over the request (or popped from
//! a queue), and every request is recorded so tests can assert what the model was shown.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::{ChatModel, ChatRequest, ChatResponse, Error, Message, ToolCall, Usage};

type Responder = Box<dyn Fn(&ChatRequest) -> Result<Message, Error> + Send + Sync>;

/// Answers from a responder closure; records every request in arrival order.
pub struct ScriptedModel {
    responder: Responder,
    requests: Mutex<Vec<ChatRequest>>,
    /// Usage reported per call (so budget and accounting paths can be tested).
    per_call: Usage,
}

impl ScriptedModel {
    /// Replies decided from the request content (e.g. keyed on the problem text or the tools offered).
    pub fn new(responder: impl Fn(&ChatRequest) -> Result<Message, Error> + Send + Sync + 'static) -> Self {
        ScriptedModel {
            responder: Box::new(responder),
            requests: Mutex::new(Vec::new()),
            per_call: Usage { calls: 1, input_tokens: 10, output_tokens: 5, usd: 0.0 },
        }
    }

    /// Replies popped in order; an exhausted queue is a `BadReply` error.
    pub fn queue(replies: Vec<Message>) -> Self {
        let queue = Mutex::new(VecDeque::from(replies));
        Self::new(move |_| {
            queue.lock().expect("queue lock").pop_front().ok_or_else(|| Error::BadReply {
                model: "scripted".into(),
                detail: "the script ran out of replies".into(),
            })
        })
    }

    /// Sets the usage each call reports.
    pub fn with_usage(mut self, per_call: Usage) -> Self {
        self.per_call = per_call;
        self
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().expect("requests lock").clone()
    }
}

#[async_trait::async_trait]
impl ChatModel for ScriptedModel {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        self.requests.lock().expect("requests lock").push(request.clone());
        let message = (self.responder)(request)?;
        Ok(ChatResponse {
            message,
            usage: self.per_call,
            model: "scripted".into(),
            cached: false,
            finish_reason: Some("stop".into()),
        })
    }
}

/// An assistant message holding tool calls (ids `call_0`, `call_1`, …).
pub fn tool_calls(calls: &[(&str, &str)]) -> Message {
    let mut m = Message::assistant("");
    m.content = None;
    m.tool_calls = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| ToolCall {
            id: format!("call_{i}"),
            name: name.to_string(),
            arguments: args.to_string(),
        })
        .collect();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_requests_and_pops_replies() {
        let model = ScriptedModel::queue(vec![Message::assistant("a"), Message::assistant("b")]);
        let req = ChatRequest { messages: vec![Message::user("hi")], ..Default::default() };
        assert_eq!(model.chat(&req).await.unwrap().message.text(), "a");
        assert_eq!(model.chat(&req).await.unwrap().message.text(), "b");
        assert!(model.chat(&req).await.is_err());
        assert_eq!(model.requests().len(), 3);
    }
}
