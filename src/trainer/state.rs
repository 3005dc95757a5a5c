//! What a run records about itself: run.json (`RunInfo`), the events of events.jsonl, summary.json,
//! and the replay of events that tells `resume` where the run stopped.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::phase::Score;
use super::rule::{Decision, Paired, RuleState, Stop};
use crate::agent::AgentConfig;
use crate::llm::Usage;
use crate::optimizer::OptimizerConfig;
use crate::run_dir::Phase;

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
    pub accept: super::rule::Accept,
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

/// The candidates of every step that had several (`--proposals`), by epoch, read from the run.
pub fn read_candidates(run: &crate::run_dir::RunDir, epochs: usize) -> Vec<(usize, Vec<Candidate>)> {
    (0..epochs)
        .filter_map(|e| {
            let list: Vec<Candidate> = crate::run_dir::read_json(&run.candidates(e)).ok()?;
            Some((e, list))
        })
        .collect()
}

/// `#0 0.000 [add], #1 1.000 [add] (chosen)`.
pub fn candidates_text(list: &[Candidate]) -> String {
    let one = |c: &Candidate| {
        let chosen = if c.chosen { " (chosen)" } else { "" };
        format!("#{} {:.3} [{}]{chosen}", c.candidate, c.score.rate, c.functions.join(", "))
    };
    list.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// One candidate of a step, as `epochs/NNN/candidates.json` lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub candidate: usize,
    pub score: Score,
    pub functions: Vec<String>,
    pub chosen: bool,
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

/// One line of events.jsonl (the optimizer's own events are logged beside these, tagged the same way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        resumed: bool,
    },
    ConversationDone {
        phase: Phase,
        index: usize,
        id: String,
        correct: bool,
        errored: Option<String>,
        turns: usize,
    },
    /// A candidate registry of a step with `--proposals` K > 1, scored on the training split.
    CandidateScored {
        epoch: usize,
        candidate: usize,
        score: Score,
        functions: Vec<String>,
    },
    /// The candidate that became the epoch's trial; the others are rejected candidates.
    CandidateChosen {
        epoch: usize,
        candidate: usize,
    },
    EvalDone {
        phase: Phase,
        score: Score,
    },
    Decision {
        epoch: usize,
        score: Score,
        /// The comparison that decided it (absent for the first epoch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        versus_best: Option<Paired>,
        decision: Decision,
        state: RuleState,
        functions: Vec<String>,
        /// Under `--accept significant`: the sign test's p-value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p_value: Option<f64>,
        /// The validation score, when the run has a validation split.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        val: Option<Score>,
    },
    StepStarted {
        epoch: usize,
    },
    StepDone {
        epoch: usize,
        applied: usize,
        functions: Vec<String>,
        usage: Usage,
    },
    TrainingStopped {
        reason: Stop,
        best_epoch: usize,
    },
    Interrupted {
        reason: String,
    },
    Error {
        message: String,
    },
    RunFinished {
        status: Status,
    },
}

/// One epoch in summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochEntry {
    pub epoch: usize,
    pub score: f64,
    pub correct: usize,
    pub total: usize,
    pub errored: usize,
    /// Trial and best on the problems both scored: what the decision compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versus_best: Option<Paired>,
    pub decision: Decision,
    pub functions: Vec<String>,
    /// The registry's score on the validation split, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val: Option<Score>,
    /// The 95% Wilson interval of `score`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<[f64; 2]>,
    /// Under `--accept significant`: the sign test's p-value against the best registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
}

impl EpochEntry {
    pub fn new(epoch: usize, score: &Score, decided: Decided, functions: Vec<String>) -> EpochEntry {
        let val = decided.val;
        EpochEntry {
            epoch,
            score: score.rate,
            correct: score.correct,
            total: score.total,
            errored: score.errored,
            versus_best: decided.versus_best,
            decision: decided.decision,
            functions,
            ci95: score.ci95,
            p_value: decided.p_value,
            val,
        }
    }
}

/// How an epoch was decided: the comparison, the decision, and its p-value (under a significance rule).
#[derive(Debug, Clone, Copy)]
pub struct Decided {
    pub versus_best: Option<Paired>,
    pub decision: Decision,
    pub p_value: Option<f64>,
    /// The validation score, when the run has a validation split.
    pub val: Option<Score>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    pub before: Option<Score>,
    pub after: Option<Score>,
}

/// summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub run: String,
    pub status: Status,
    pub epochs_run: usize,
    pub stopped_early: bool,
    pub stop_reason: Option<Stop>,
    pub best_epoch: Option<usize>,
    pub best_score: Option<f64>,
    pub history: Vec<EpochEntry>,
    pub eval: EvalSummary,
    pub functions: Vec<String>,
    pub usage: Usage,
}

/// Where a run stands, rebuilt from its events.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub eval_before: Option<Score>,
    pub eval_after: Option<Score>,
    pub history: Vec<EpochEntry>,
    pub rule: RuleState,
    /// Epochs whose trial registry an optimizer step has written.
    pub steps_done: Vec<usize>,
    pub stopped: Option<Stop>,
    pub step_usage: Usage,
}

impl Progress {
    /// Replays events in order; unknown events (e.g. the optimizer's) are skipped.
    pub fn replay(events: &[Value]) -> Progress {
        let mut p = Progress::default();
        for value in events {
            let Ok(event) = serde_json::from_value::<Event>(value.clone()) else { continue };
            match event {
                Event::EvalDone { phase: Phase::Before, score } => p.eval_before = Some(score),
                Event::EvalDone { phase: Phase::After, score } => p.eval_after = Some(score),
                Event::Decision { epoch, score, versus_best, decision, state, functions, p_value, val }
                    if epoch == p.history.len() =>
                {
                    p.rule = state;
                    let decided = Decided { versus_best, decision, p_value, val };
                    p.history.push(EpochEntry::new(epoch, &score, decided, functions));
                }
                Event::StepDone { epoch, usage, .. } if !p.steps_done.contains(&epoch) => {
                    p.steps_done.push(epoch);
                    p.step_usage.add(&usage);
                }
                Event::TrainingStopped { reason, .. } => p.stopped = Some(reason),
                _ => {}
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(epoch: usize, rate: f64, decision: Decision, best: usize) -> Value {
        let score = Score { correct: 1, total: 2, errored: 0, rate, ci95: None };
        let state = RuleState { best_epoch: Some(best), best_score: 0.5, stale: 0 };
        serde_json::to_value(Event::Decision {
            epoch,
            score,
            versus_best: None,
            decision,
            state,
            functions: vec![],
            p_value: None,
            val: None,
        })
        .unwrap()
    }

    #[test]
    fn replay_rebuilds_progress_and_ignores_repeats_and_strangers() {
        let usage = Usage { calls: 2, input_tokens: 1, output_tokens: 1, usd: 0.5 };
        let step = |epoch| {
            serde_json::to_value(Event::StepDone { epoch, applied: 1, functions: vec![], usage }).unwrap()
        };
        let events = vec![
            serde_json::json!({"event": "run_started", "resumed": false}),
            serde_json::to_value(Event::EvalDone {
                phase: Phase::Before,
                score: Score { correct: 1, total: 1, errored: 0, rate: 1.0, ci95: None },
            })
            .unwrap(),
            decision(0, 0.5, Decision::Accept, 0),
            serde_json::json!({"event": "action_applied", "epoch": 1, "action": {"action": "remove", "name": "f"}}),
            step(1),
            step(1), // a step re-run after a kill is counted once
            decision(1, 0.5, Decision::Rollback, 0),
            decision(1, 0.5, Decision::Rollback, 0), // logged again by a resumed run
            serde_json::json!({"event": "something_new"}),
        ];
        let p = Progress::replay(&events);
        assert_eq!(p.history.len(), 2);
        assert_eq!(p.history[1].decision, Decision::Rollback);
        assert_eq!(p.steps_done, vec![1]);
        assert_eq!(p.step_usage.calls, 2);
        assert_eq!(p.eval_before.unwrap().rate, 1.0);
        assert!(p.eval_after.is_none() && p.stopped.is_none());
    }
}
