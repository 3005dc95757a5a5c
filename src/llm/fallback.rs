//! Fallback across config entries that share a model name: the next entry is tried when one finally
//! fails (after its own retries).

use std::sync::Arc;

use super::{ChatModel, ChatRequest, ChatResponse, Error};

pub struct Fallback {
    models: Vec<Arc<dyn ChatModel>>,
}

impl Fallback {
    /// `models` is tried in order; it must not be empty.
    pub fn new(models: Vec<Arc<dyn ChatModel>>) -> Self {
        assert!(!models.is_empty(), "a fallback chain needs at least one model");
        Fallback { models }
    }
}

#[async_trait::async_trait]
impl ChatModel for Fallback {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        let mut last = None;
        for (i, model) in self.models.iter().enumerate() {
            match model.chat(request).await {
                Ok(response) => return Ok(response),
                // The budget is the run's, not the entry's: another entry would only spend more.
                Err(e @ Error::Budget { .. }) => return Err(e),
                Err(e) => {
                    if i + 1 < self.models.len() {
                        tracing::warn!("model entry {} failed, trying the next one: {e}", i + 1);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.expect("the chain is not empty"))
    }
}
