//! Building the model a command uses: config list → selected entries → one backend per entry, wrapped
//! as Cache(Fallback([Priced(Retry(backend)), ...])).

use std::sync::Arc;

use serde_json::{Value, json};

use super::anthropic::AnthropicClient;
use super::cache::{Cache, Store};
use super::config::{self, ApiType, CacheMode, Entry, ModelOptions};
use super::defaults::EntryDefaults;
use super::fallback::Fallback;
use super::openai::OpenAiClient;
use super::retry::{Retry, RetryPolicy};
use super::usage::Priced;
use super::{ChatModel, Error, local};

/// The model `opts` selects, with retries, fallback, pricing and the reply cache.
pub fn connect(opts: &ModelOptions) -> Result<Arc<dyn ChatModel>, Error> {
    connect_with(opts, RetryPolicy::default())
}

/// `connect` with a chosen retry policy (tests use a fast one).
pub fn connect_with(opts: &ModelOptions, policy: RetryPolicy) -> Result<Arc<dyn ChatModel>, Error> {
    build(&selected(opts)?.1, opts, policy)
}

/// Where the model list came from, and the entries of it `opts` selects.
pub fn selected(opts: &ModelOptions) -> Result<(config::Source, Vec<Entry>), Error> {
    let (source, entries) = config::load(opts)?;
    let entries = config::select(entries, opts.model.as_deref(), &source)?;
    Ok((source, entries))
}

/// The resolved, secret-free description of the selected entries, for `runs/<run>/run.json`.
pub fn describe(opts: &ModelOptions) -> Result<Value, Error> {
    let (source, entries) = selected(opts)?;
    let cache = match opts.cache {
        CacheMode::Off => json!({"mode": "off"}),
        CacheMode::Seed(seed) => {
            json!({"mode": "seed", "seed": seed, "dir": opts.cache_dir.display().to_string()})
        }
    };
    Ok(json!({
        "source": source.to_string(),
        "model": entries[0].model,
        "entries": entries.iter().map(config::describe_entry).collect::<Vec<_>>(),
        "cache": cache,
    }))
}

/// Wraps already selected `entries` (all with the same model name, at least one).
pub fn build(
    entries: &[Entry],
    opts: &ModelOptions,
    policy: RetryPolicy,
) -> Result<Arc<dyn ChatModel>, Error> {
    let http = reqwest::Client::builder()
        .user_agent(concat!("agentopt/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Config(format!("failed to set up the HTTP client: {e}")))?;
    let chain = entries
        .iter()
        .map(|entry| {
            let backend: Arc<dyn ChatModel> = match entry.api_type {
                ApiType::OpenAi | ApiType::Azure => {
                    Arc::new(Retry::new(Arc::new(OpenAiClient::new(http.clone(), entry)), policy))
                }
                ApiType::Anthropic => {
                    Arc::new(Retry::new(Arc::new(AnthropicClient::new(http.clone(), entry)), policy))
                }
                ApiType::Local => local::open(&entry.model, entry.model_path.as_deref())?,
            };
            let backend: Arc<dyn ChatModel> = match entry.max_tokens {
                Some(cap) => Arc::new(EntryDefaults::new(backend, Some(cap))),
                None => backend,
            };
            Ok(Arc::new(Priced::new(backend, entry.price)) as Arc<dyn ChatModel>)
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let model: Arc<dyn ChatModel> = Arc::new(Fallback::new(chain));
    match opts.cache {
        CacheMode::Off => Ok(model),
        CacheMode::Seed(seed) => {
            let store = Arc::new(Store::open(&opts.cache_dir)?);
            Ok(Arc::new(Cache::new(model, store, identity(entries), seed)))
        }
    }
}

/// What the cache key knows about the model: its name and endpoints, never a key. Another endpoint
/// list (say, an added fallback) is another namespace; an entry's `max_tokens` shapes its replies, so
/// it is part of the endpoint (left out when unset, so existing caches stay valid).
fn identity(entries: &[Entry]) -> Value {
    let endpoints: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut endpoint =
                json!({"api_type": e.api_type.as_str(), "base_url": e.base_url, "api_version": e.api_version});
            if let Some(n) = e.max_tokens {
                endpoint["max_tokens"] = n.into();
            }
            endpoint
        })
        .collect();
    json!({"model": entries[0].model, "endpoints": endpoints})
}
