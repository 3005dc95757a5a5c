//! The engine of the AG2 drop-in (`agentopt.AgentOptimizer`): one optimizer step over conversations
//! recorded in AG2's message format. The Python half keeps AG2's bookkeeping (trial, best, rejected);
//! this turns AG2's histories into agentopt's records and runs agentopt's optimizer on them, with
//! every proposal validated in the sandbox and its error fed back to the optimizer model.

use std::path::PathBuf;

use pyo3::prelude::*;
use serde_json::{Value, json};

use agentopt::agent::ConversationRecord;
use agentopt::agent::ag2::record;
use agentopt::functions::Registry;
use agentopt::llm::config::InlineList;
use agentopt::llm::{CacheMode, ModelOptions};
use agentopt::optimizer::{Optimizer, OptimizerConfig, Rejected, StepInput};

use crate::errors;
use crate::job::Job;

fn field<T: serde::de::DeserializeOwned>(py: Python<'_>, request: &Value, name: &str) -> PyResult<T> {
    serde_json::from_value(request[name].clone())
        .map_err(|e| errors::input(py, format!("optimizer step: field `{name}`: {e}")))
}

/// One step: `request_json` holds the best registry and its score, the rejected ones, the best's
/// AG2 histories and the model settings; the reply holds the new registry, the events and usage.
#[pyfunction]
#[pyo3(signature = (request_json, config_json = None))]
pub fn optimizer_step(py: Python<'_>, request_json: &str, config_json: Option<String>) -> PyResult<String> {
    let request: Value =
        serde_json::from_str(request_json).map_err(|e| errors::input(py, format!("optimizer step: {e}")))?;
    let best: Registry = field(py, &request, "best")?;
    let best_score: f64 = field(py, &request, "best_score")?;
    let best_epoch: usize = field(py, &request, "best_epoch")?;
    let rejected: Vec<Rejected> = field(py, &request, "rejected")?;
    let histories: Vec<(Vec<Value>, bool)> = field(py, &request, "histories")?;
    let actions_per_step: usize = field(py, &request, "actions_per_step")?;
    let exec_timeout: f64 = field(py, &request, "exec_timeout")?;
    let cache_seed: Option<u64> = field(py, &request, "cache_seed")?;
    let cache_dir: PathBuf = field(py, &request, "cache_dir")?;
    let hidden: Vec<PathBuf> = field(py, &request, "hidden")?;
    let options = ModelOptions {
        config: None,
        model: field(py, &request, "optimizer_model")?,
        cache: cache_seed.map_or(CacheMode::Off, CacheMode::Seed),
        cache_dir: std::path::absolute(&cache_dir).unwrap_or(cache_dir),
        inline: config_json.map(InlineList),
    };
    let conversations: Vec<ConversationRecord> =
        histories.iter().enumerate().map(|(i, (h, ok))| record(i, h, *ok)).collect();
    let config =
        OptimizerConfig { actions_per_step, seed: field(py, &request, "seed")?, ..Default::default() };
    let ran = Job::quick().run(py, async move {
        let model = agentopt::commands::train::connect(&options)?;
        let runner = crate::sandbox::runner(exec_timeout, hidden).await?;
        let optimizer = Optimizer { model, runner, config, brief: Default::default(), candidate: None };
        let input = StepInput {
            // The step after the best epoch and the ones rolled back since.
            epoch: best_epoch + rejected.len() + 1,
            best: &best,
            best_epoch,
            best_score,
            rejected: &rejected,
            conversations: &conversations,
        };
        let outcome = optimizer.step(&input).await?;
        anyhow::Ok(json!({
            "registry": outcome.registry,
            "applied": outcome.applied,
            "events": outcome.events,
            "usage": outcome.usage,
        }))
    })?;
    Ok(ran.value.map_err(|e| errors::from_anyhow(py, e))?.to_string())
}
