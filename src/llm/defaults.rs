//! Per-entry request defaults from the config list (`max_tokens`): a wrapper that fills what the
//! request leaves open, so a cap set for one server (say, a small local model that would otherwise
//! ramble until its request timeout) never leaks into another entry's calls.

use std::sync::Arc;

use super::{ChatModel, ChatRequest, ChatResponse, Error};

pub struct EntryDefaults {
    inner: Arc<dyn ChatModel>,
    max_tokens: Option<u32>,
}

impl EntryDefaults {
    pub fn new(inner: Arc<dyn ChatModel>, max_tokens: Option<u32>) -> Self {
        EntryDefaults { inner, max_tokens }
    }
}

#[async_trait::async_trait]
impl ChatModel for EntryDefaults {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        match (request.max_tokens, self.max_tokens) {
            (None, Some(cap)) => {
                self.inner.chat(&ChatRequest { max_tokens: Some(cap), ..request.clone() }).await
            }
            _ => self.inner.chat(request).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Message;
    use crate::llm::scripted::Scripted;

    #[tokio::test]
    async fn fills_max_tokens_only_when_the_request_leaves_it_open() {
        let scripted = Arc::new(Scripted::replies(vec![Message::assistant("a"), Message::assistant("b")]));
        let model = EntryDefaults::new(scripted.clone(), Some(256));
        let open = ChatRequest { messages: vec![Message::user("hi")], ..Default::default() };
        model.chat(&open).await.unwrap();
        model.chat(&ChatRequest { max_tokens: Some(8), ..open.clone() }).await.unwrap();
        let seen: Vec<Option<u32>> = scripted.requests().iter().map(|r| r.max_tokens).collect();
        assert_eq!(seen, [Some(256), Some(8)]);
    }
}
