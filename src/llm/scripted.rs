//! A scripted `ChatModel` for tests of the layers above (agent, optimizer, trainer): it answers from a
//! closure or a fixed list and records every request it was sent, with no HTTP involved.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::{ChatModel, ChatRequest, ChatResponse, Error, Message, ToolCall, Usage};

type Script = dyn Fn(&ChatRequest, usize) -> Result<ChatResponse, Error> + Send + Sync;

pub struct Scripted {
    script: Box<Script>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl Scripted {
    /// Answers call number `n` (from 0) with `script(request, n)`.
    pub fn new(
        script: impl Fn(&ChatRequest, usize) -> Result<ChatResponse, Error> + Send + Sync + 'static,
    ) -> Self {
        Scripted { script: Box::new(script), requests: Mutex::new(Vec::new()) }
    }

    /// Replies with these messages in order, then fails with `BadReply` ("script exhausted").
    pub fn replies(messages: Vec<Message>) -> Self {
        let queue = Mutex::new(VecDeque::from(messages));
        Scripted::new(move |_, _| {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
            next.map(reply).ok_or_else(|| Error::BadReply {
                model: "scripted".into(),
                detail: "script exhausted".into(),
            })
        })
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A response carrying `message`, counted as one call with no tokens.
pub fn reply(message: Message) -> ChatResponse {
    ChatResponse {
        message,
        usage: Usage { calls: 1, ..Usage::default() },
        model: "scripted".into(),
        cached: false,
        finish_reason: None,
    }
}

/// An assistant message that calls `name` with raw `arguments`.
pub fn tool_call(id: &str, name: &str, arguments: &str) -> Message {
    let mut message = Message::assistant("");
    message.content = None;
    message.tool_calls = vec![ToolCall { id: id.into(), name: name.into(), arguments: arguments.into() }];
    message
}

#[async_trait::async_trait]
impl ChatModel for Scripted {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        let n = {
            let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            requests.push(request.clone());
            requests.len() - 1
        };
        (self.script)(request, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replays_in_order_and_records() {
        let model = Scripted::replies(vec![tool_call("c", "f", "{}"), Message::assistant("\\boxed{2}")]);
        let request = ChatRequest { messages: vec![Message::user("q")], ..Default::default() };
        assert_eq!(model.chat(&request).await.unwrap().message.tool_calls[0].name, "f");
        assert_eq!(model.chat(&request).await.unwrap().message.text(), "\\boxed{2}");
        assert!(matches!(model.chat(&request).await, Err(Error::BadReply { .. })));
        assert_eq!(model.requests().len(), 3);
    }
}
