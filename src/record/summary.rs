//! summary.json (`Summary`: the history of epochs, the evaluation, the learned functions, the spend)
//! and `epochs/NNN/candidates.json` (`Candidate`: the proposals of a step with `--proposals`).

use serde::{Deserialize, Serialize};

use super::{Score, Status};
use crate::llm::Usage;
use crate::trainer::rule::{Decision, Paired, Stop};

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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    pub before: Option<Score>,
    pub after: Option<Score>,
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
