//! run.json: what a run is (its data, split, models, settings, task) and where it stands (`Status`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::agent::AgentConfig;
use crate::optimizer::OptimizerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    /// Interrupted (Ctrl-C or an error); resumable.
    Stopped,
    /// Stopped by --max-usd; resumable.
    Budget,
    Completed,
    Failed,
}

impl std::fmt::Display for Status {
    /// The word run.json uses.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Budget => "budget",
            Status::Completed => "completed",
            Status::Failed => "failed",
        })
    }
}

/// A dataset file and its hash (so `resume` can tell whether it changed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    pub path: PathBuf,
    pub sha256: String,
}

/// Where the problems came from and how they were chosen: enough to choose them again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// One dataset split into train and test (DATA, or the default sample).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<FileRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<FileRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<FileRef>,
    pub train_size: Option<usize>,
    pub test_size: Option<usize>,
    /// `--val FILE`: an explicit validation file (used in file order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val: Option<FileRef>,
    /// `--val-size N`: validation problems (drawn from DATA after the test set, or the first N of `val`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_size: Option<usize>,
    pub subjects: Vec<String>,
    pub seed: u64,
    /// The user let training and test problems overlap (`--allow-overlap`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_overlap: bool,
}

impl DataSpec {
    /// The dataset files the problems come from (DATA, or the explicit train and test files).
    pub fn files(&self) -> impl Iterator<Item = &FileRef> {
        [&self.data, &self.train, &self.test, &self.val].into_iter().flatten()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub train: Vec<String>,
    pub test: Vec<String>,
    /// The validation split's ids (empty without one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub val: Vec<String>,
}

/// Model selection without secrets: the config *path*, names, cache, and the backends' own
/// secret-free description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelsSpec {
    pub config: Option<PathBuf>,
    /// The list was given in memory (Python `config=[...]`) and is not saved: `resume` needs it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub config_inline: bool,
    pub model: Option<String>,
    pub optimizer_model: Option<String>,
    /// Cache namespace; `None` when the cache is off.
    pub cache_seed: Option<u64>,
    pub cache_dir: PathBuf,
    pub assistant: Value,
    pub optimizer: Value,
}

/// The training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub epochs: usize,
    pub patience: usize,
    pub concurrency: usize,
    pub max_usd: Option<f64>,
    pub no_eval: bool,
    pub export: Option<String>,
    pub exec_timeout: f64,
    pub unsafe_no_sandbox: bool,
    pub initial_functions: Option<String>,
    pub agent: AgentConfig,
    pub optimizer: OptimizerConfig,
    /// `--accept` (runs from before it: strict).
    #[serde(default)]
    pub accept: crate::trainer::rule::Accept,
    /// `--select`: which split's score decides each epoch (runs from before it: train).
    #[serde(default)]
    pub select: Select,
    /// `--proposals`: optimizer proposals per step (runs from before it: 1).
    #[serde(default = "one")]
    pub proposals: usize,
}

fn one() -> usize {
    1
}

/// `--select`: the split whose score makes the SPEC §7 decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    /// The training problems (the optimizer's own evidence; SPEC §7 as written).
    #[default]
    Train,
    /// The validation split: problems the optimizer never sees.
    Val,
}

/// run.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub version: u32,
    /// The run-directory format (`record::FORMAT_VERSION`); absent in runs from before it: 1.
    #[serde(default = "format_1")]
    pub format_version: u32,
    pub name: String,
    pub status: Status,
    pub created_at: String,
    pub updated_at: String,
    pub data: DataSpec,
    pub split: Split,
    pub models: ModelsSpec,
    pub training: TrainSettings,
    /// The task and metric (runs from before tasks have none: the math task).
    #[serde(default)]
    pub task: crate::task::TaskSpec,
}

fn format_1() -> u32 {
    1
}
