//! TEMPORARY stand-in (trainer branch) for the llm branch's config module: the promised API only.
//! Replaced by the real module when the llm branch merges into main.

use std::path::PathBuf;
use std::sync::Arc;

use super::{ChatModel, Error};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CacheMode {
    Off,
    Seed(u64),
}

#[derive(Debug, Clone)]
pub struct ModelOptions {
    pub config: Option<PathBuf>,
    pub model: Option<String>,
    pub cache: CacheMode,
    pub cache_dir: PathBuf,
}

pub fn connect(_options: &ModelOptions) -> Result<Arc<dyn ChatModel>, Error> {
    Err(Error::Config("model backends are not merged yet (stand-in)".into()))
}

pub fn describe(options: &ModelOptions) -> Result<serde_json::Value, Error> {
    Ok(serde_json::json!({"model": options.model}))
}
