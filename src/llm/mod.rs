//! The model client layer: one `ChatModel` trait over a neutral message model, backends chosen at run
//! time, and wrappers (retry, fallback, pricing, budget, cache) that also implement the trait.
//!
//! - `message`   — the neutral, OpenAI-shaped request/response types
//! - `config`    — the OAI_CONFIG_LIST model list, `ModelOptions`, `Secret`
//! - `connect`   — builds Cache(Fallback([Priced(Retry(backend)), ...])) from the options
//! - `openai`, `anthropic`, `local` — backends (`http`, `sse` are their shared plumbing)
//! - `retry`, `fallback`, `usage`, `cache` — the wrappers
//! - `stream`  — text streamed as generated, to a sink the caller scopes around a call
//! - `scripted` — a recording, scripted model for tests of the layers above

pub mod anthropic;
pub mod cache;
pub mod config;
pub mod connect;
pub mod defaults;
pub mod fallback;
mod http;
pub mod local;
pub mod message;
pub mod openai;
pub mod retry;
pub mod scripted;
pub mod sse;
pub mod stream;
pub mod usage;

pub use config::{CacheMode, ModelOptions, Secret};
pub use connect::{connect, describe};
pub use message::{ChatRequest, ChatResponse, Message, Role, ToolCall, ToolChoice, ToolSpec, Usage};
pub use usage::Price;

/// Something that answers chat requests: a backend, a wrapper around one, or a scripted test model.
#[async_trait::async_trait]
pub trait ChatModel: Send + Sync {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error>;
}

/// Why a model call failed. Every variant is an *infrastructure* failure: a problem whose call fails
/// is recorded as errored, never scored as a wrong answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable (names the file and field).
    #[error("bad model configuration: {0}")]
    Config(String),
    /// The server refused the credentials (401/403).
    #[error("authentication failed for model `{model}` (HTTP {status})")]
    Auth { model: String, status: u16 },
    /// A non-retryable HTTP error (4xx other than 429).
    #[error("model `{model}` rejected the request (HTTP {status}): {body}")]
    Rejected { model: String, status: u16, body: String },
    /// Retryable failures that did not go away.
    #[error("model `{model}` failed after {attempts} attempts: {last}")]
    RetriesExhausted { model: String, attempts: u32, last: String },
    /// The reply could not be understood.
    #[error("model `{model}` sent an unusable reply: {detail}")]
    BadReply { model: String, detail: String },
    /// The run's spending limit would be exceeded.
    #[error("budget of ${limit:.4} reached")]
    Budget { limit: f64 },
    /// The local model backend failed or is not compiled in.
    #[error("local model: {0}")]
    Local(String),
    #[error("cache: {0}")]
    Cache(String),
}

impl Error {
    /// Whether every other request to the same model would fail the same way (bad credentials, a
    /// model or endpoint that does not exist, an unusable configuration): then a run stops at once
    /// instead of recording each problem as errored.
    pub fn fails_every_request(&self) -> bool {
        matches!(self, Error::Auth { .. } | Error::Config(_) | Error::Rejected { status: 404, .. })
    }
}
