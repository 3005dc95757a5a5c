//! `LocalModel`: the `ChatModel` over the llama.cpp worker — renders the request, waits for the worker
//! off the async runtime, and turns the generation into an OpenAI-shaped reply.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use super::runtime::{self, Job, Sampling, Schemas, Shape, Timing, Worker};
use super::{grammar, template};
use crate::llm::{ChatModel, ChatRequest, ChatResponse, Error, Message, ToolSpec, Usage, stream};

/// Reply budget when the request sets none. Forced calls (the optimizer writing a whole function) get more.
const DEFAULT_MAX_TOKENS: u32 = 512;
const DEFAULT_MAX_CALL_TOKENS: u32 = 1024;
/// Sampling temperature when the request sets none.
const DEFAULT_TEMPERATURE: f32 = 0.7;
/// A tiny base model loops easily; this is also llama-cpp-python's default. `extra.repeat_penalty`
/// overrides it (1.0 turns it off).
const DEFAULT_REPEAT_PENALTY: f32 = 1.1;

pub struct LocalModel {
    name: String,
    worker: Arc<Worker>,
}

impl LocalModel {
    pub fn new(name: &str, path: &Path) -> Self {
        LocalModel { name: name.to_string(), worker: runtime::worker(path) }
    }

    /// A model on `path` that keeps `sequences` conversations cached at once (see `runtime::SEQUENCES`).
    pub fn with_sequences(name: &str, path: &Path, sequences: usize) -> Self {
        LocalModel { name: name.to_string(), worker: runtime::worker_with(path, sequences) }
    }
}

#[async_trait::async_trait]
impl ChatModel for LocalModel {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        self.chat_timed(request).await.map(|(response, _)| response)
    }
}

impl LocalModel {
    /// `chat`, also telling where the time went (for the benchmark).
    pub async fn chat_timed(&self, request: &ChatRequest) -> Result<(ChatResponse, Timing), Error> {
        let mode = template::mode(request);
        // A reply that must be a JSON object is sampled under its schema's grammar, as a call is.
        let json_reply = request.json_schema.as_ref().filter(|_| matches!(mode, template::Mode::Text));
        let shape = match &mode {
            template::Mode::Text if json_reply.is_some() => Shape::Call(Schemas {
                exact: json_reply.map(|s| s.to_string()).unwrap_or_default(),
                fallback: r#"{"type": "object"}"#.to_string(),
            }),
            template::Mode::Text => Shape::Text,
            template::Mode::TextOrCall => {
                Shape::TextOrCall { open: template::CALL_OPEN.to_string(), schemas: schemas(&request.tools) }
            }
            template::Mode::Call(tools) => Shape::Call(schemas(tools)),
        };
        let tools: Vec<ToolSpec> = match &mode {
            template::Mode::Call(tools) => tools.clone(),
            _ => request.tools.clone(),
        };
        let (reply, mut generation) = oneshot::channel();
        let sink = stream::current();
        let (pieces, mut streamed) = match sink {
            Some(_) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let job = Job {
            prompt: template::render(request, &mode),
            stops: template::stops(request, &mode),
            sampling: sampling(request, matches!(shape, Shape::Call(_))),
            shape,
            reply,
            pieces,
        };
        self.worker.submit(job).map_err(Error::Local)?;
        // Dropping this future drops `generation`, which the worker notices between tokens.
        let finished = match (&sink, &mut streamed) {
            (Some(sink), Some(pieces)) => {
                sink(stream::Piece::Start);
                loop {
                    tokio::select! {
                        Some(piece) = pieces.recv() => sink(stream::Piece::Text(&piece)),
                        g = &mut generation => {
                            // Pieces sent before the end are all queued by now.
                            while let Ok(piece) = pieces.try_recv() {
                                sink(stream::Piece::Text(&piece));
                            }
                            break g;
                        }
                    }
                }
            }
            _ => (&mut generation).await,
        };
        let g = finished
            .map_err(|_| Error::Local("the local model worker stopped".into()))?
            .map_err(Error::Local)?;

        let mut message = Message::assistant(g.text.trim());
        if json_reply.is_some() {
            message = Message::assistant(g.call.as_deref().unwrap_or_default().trim());
        } else if let Some(call) = &g.call {
            message.tool_calls.push(grammar::parse_call(call, &tools, next_call_id()));
        }
        if message.text().is_empty() && !message.tool_calls.is_empty() {
            message.content = None;
        }
        let finish = match (g.truncated, message.tool_calls.is_empty()) {
            (true, _) => "length",
            (false, false) => "tool_calls",
            (false, true) => "stop",
        };
        let response = ChatResponse {
            message,
            usage: Usage {
                calls: 1,
                input_tokens: g.prompt_tokens,
                output_tokens: g.generated_tokens,
                usd: 0.0,
            },
            model: self.name.clone(),
            cached: false,
            finish_reason: Some(finish.to_string()),
        };
        Ok((response, g.timing))
    }
}

fn schemas(tools: &[ToolSpec]) -> Schemas {
    Schemas { exact: grammar::call_schema(tools), fallback: grammar::fallback_schema(tools) }
}

fn sampling(request: &ChatRequest, call: bool) -> Sampling {
    let default_max = if call { DEFAULT_MAX_CALL_TOKENS } else { DEFAULT_MAX_TOKENS };
    let repeat_penalty = request.extra.get("repeat_penalty").and_then(|v| v.as_f64());
    Sampling {
        temperature: request.temperature.unwrap_or(DEFAULT_TEMPERATURE),
        // A fixed default seed keeps runs reproducible; requests that want variety set one.
        seed: request.seed.unwrap_or(0) as u32,
        repeat_penalty: repeat_penalty.map_or(DEFAULT_REPEAT_PENALTY, |p| p as f32),
        max_tokens: request.max_tokens.unwrap_or(default_max) as usize,
    }
}

/// Call ids unique within the process, in the OpenAI style.
fn next_call_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("call_local_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
