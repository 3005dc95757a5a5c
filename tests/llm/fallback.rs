//! Fallback through entries that share a model name, and the budget guard.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use agentopt::llm::fallback::Fallback;
use agentopt::llm::{ChatModel, ChatRequest, ChatResponse, Error, Message, Usage};
use agentopt::trainer::meter::{Meter, Metered};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

#[tokio::test]
async fn second_entry_answers_when_the_first_keeps_failing() {
    let broken = MockServer::start().await;
    let healthy = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).expect(3).mount(&broken).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_text_reply("from the second")))
        .expect(1)
        .mount(&healthy)
        .await;
    let dir = tempdir();
    let mut opts = options(
        dir.path(),
        json!([
            {"model": "other", "base_url": "http://127.0.0.1:9/v1"},
            {"model": "shared", "base_url": broken.uri() + "/v1"},
            {"model": "shared", "base_url": healthy.uri() + "/v1", "price": [1.0, 1.0]}
        ]),
    );
    opts.model = Some("shared".into());
    let response = connect(&opts).chat(&question()).await.unwrap();
    assert_eq!(response.message.content.as_deref(), Some("from the second"));
    assert!((response.usage.usd - 0.015).abs() < 1e-12, "priced by the entry that answered");
}

/// A scripted model: fails with `error()` and counts its calls.
struct Scripted {
    calls: AtomicU32,
    error: fn() -> Error,
}

#[async_trait::async_trait]
impl ChatModel for Scripted {
    async fn chat(&self, _: &ChatRequest) -> Result<ChatResponse, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err((self.error)())
    }
}

struct Fixed;

#[async_trait::async_trait]
impl ChatModel for Fixed {
    async fn chat(&self, _: &ChatRequest) -> Result<ChatResponse, Error> {
        Ok(ChatResponse {
            message: Message::assistant("ok"),
            usage: Usage { calls: 1, input_tokens: 1, output_tokens: 1, usd: 0.6 },
            model: "fixed".into(),
            cached: false,
            finish_reason: None,
        })
    }
}

#[tokio::test]
async fn budget_errors_do_not_fall_back() {
    let first = Arc::new(Scripted { calls: AtomicU32::new(0), error: || Error::Budget { limit: 1.0 } });
    let second = Arc::new(Scripted { calls: AtomicU32::new(0), error: || Error::Local("x".into()) });
    let chain = Fallback::new(vec![first.clone(), second.clone()]);
    assert!(matches!(chain.chat(&question()).await, Err(Error::Budget { .. })));
    assert_eq!((first.calls.load(Ordering::SeqCst), second.calls.load(Ordering::SeqCst)), (1, 0));
}

#[tokio::test]
async fn the_last_error_is_reported_when_every_entry_fails() {
    let auth = Arc::new(Scripted {
        calls: AtomicU32::new(0),
        error: || Error::Auth { model: "a".into(), status: 401 },
    });
    let down = Arc::new(Scripted {
        calls: AtomicU32::new(0),
        error: || Error::RetriesExhausted { model: "a".into(), attempts: 5, last: "HTTP 503".into() },
    });
    let chain = Fallback::new(vec![auth.clone(), down.clone()]);
    assert!(matches!(chain.chat(&question()).await, Err(Error::RetriesExhausted { .. })));
    assert_eq!(down.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_metered_model_charges_and_refuses_a_call_that_could_pass_the_limit() {
    let meter = Arc::new(Meter::new(Some(1.0), Usage::default()));
    let metered = Metered { inner: Arc::new(Fixed), meter: meter.clone() };
    metered.chat(&question()).await.unwrap();
    // A second call as dear as the first ($0.60) could reach $1.20: refused before it is made.
    assert!(matches!(metered.chat(&question()).await, Err(Error::Budget { .. })));
    assert_eq!(meter.usage().calls, 1);
    assert!((meter.usage().usd - 0.6).abs() < 1e-12);
}
