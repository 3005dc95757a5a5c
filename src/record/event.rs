//! One line of events.jsonl: what the trainer did, in order, the optimizer's step events included
//! (each with the epoch, and candidate, whose trial registry its step built). Each line also carries its UTC `time` (written by
//! `RunDir::append_event`, ignored when read).

use serde::{Deserialize, Serialize};

use super::{Score, Status};
use crate::llm::{ToolCall, Usage};
use crate::optimizer::actions::Action;
use crate::run_dir::Phase;
use crate::trainer::rule::{Decision, Paired, RuleState, Stop};

/// One line of events.jsonl.
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
    /// The optimizer step that builds epoch `epoch`'s trial registry began.
    StepStarted {
        epoch: usize,
    },
    /// The optimizer asked for an action (one tool call) in the step before `epoch`.
    ActionProposed {
        epoch: usize,
        /// The candidate of a step with `--proposals` K > 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        candidate: Option<usize>,
        call: ToolCall,
    },
    /// A proposed action passed every check and changed the trial registry.
    ActionApplied {
        epoch: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        candidate: Option<usize>,
        action: Action,
    },
    /// A proposed action was refused; the error went back to the optimizer, which may retry.
    ActionRejected {
        epoch: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        candidate: Option<usize>,
        tool: String,
        error: String,
        attempt: usize,
    },
    /// An action still refused after the retries: given up.
    ActionSkipped {
        epoch: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        candidate: Option<usize>,
        tool: String,
        error: String,
        attempts: usize,
    },
    /// Why the optimizer's conversation of the step ended (`TERMINATE`, the action limit, …).
    StepEnded {
        epoch: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        candidate: Option<usize>,
        reason: String,
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

impl Event {
    /// The epoch an optimizer step event belongs to (`None` for the trainer's own events).
    pub fn step_epoch(&self) -> Option<usize> {
        match self {
            Event::ActionProposed { epoch, .. }
            | Event::ActionApplied { epoch, .. }
            | Event::ActionRejected { epoch, .. }
            | Event::ActionSkipped { epoch, .. }
            | Event::StepEnded { epoch, .. } => Some(*epoch),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_events_of_the_previous_format_read_with_their_epoch() {
        let line = r#"{"event": "action_rejected", "tool": "add_function", "error": "no `f`", "attempt": 1, "epoch": 2, "time": "t"}"#;
        let event: Event = serde_json::from_str(line).unwrap();
        assert_eq!(
            event,
            Event::ActionRejected {
                epoch: 2,
                candidate: None,
                tool: "add_function".into(),
                error: "no `f`".into(),
                attempt: 1
            }
        );
        assert_eq!(event.step_epoch(), Some(2));
        let missing = serde_json::from_str::<Event>(r#"{"event": "step_done", "epoch": 1}"#).unwrap_err();
        assert!(missing.to_string().contains("missing field `applied`"), "{missing}");
    }
}
