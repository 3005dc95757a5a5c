//! What the events of a run say per epoch: its decision and score, the optimizer actions of the step
//! that built its registry (step events carry that epoch), and the step's usage.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::llm::Usage;
use crate::optimizer::actions;
use crate::record::{Event, Score};
use crate::trainer::rule::{Decision, Stop};

/// What became of an action the optimizer proposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    Applied,
    /// One refused attempt, retried with the error shown.
    Rejected,
    /// Given up after the retries.
    Skipped,
}

impl std::fmt::Display for ActionOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ActionOutcome::Applied => "applied",
            ActionOutcome::Rejected => "rejected",
            ActionOutcome::Skipped => "skipped",
        })
    }
}

/// An optimizer action as logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub outcome: ActionOutcome,
    /// `add_function`, `revise_function` or `remove_function` (the optimizer's tool).
    pub action: String,
    /// The function it names, when known.
    pub function: Option<String>,
    /// Why it was refused.
    pub reason: Option<String>,
}

/// What the events say about one epoch.
#[derive(Debug, Default)]
pub struct EpochEvents {
    pub decision: Option<Decision>,
    pub score: Option<f64>,
    pub val: Option<Score>,
    pub functions: Option<Vec<String>>,
    pub actions: Vec<Action>,
    /// The optimizer step that built this epoch's registry.
    pub optimizer_usage: Option<Usage>,
}

#[derive(Debug, Default)]
pub struct Events {
    pub epochs: BTreeMap<usize, EpochEvents>,
    pub stop_reason: Option<Stop>,
    pub best_epoch: Option<usize>,
}

/// The tool an action came from.
fn tool_of(action: &actions::Action) -> &'static str {
    match action {
        actions::Action::Add { .. } => "add_function",
        actions::Action::Revise { .. } => "revise_function",
        actions::Action::Remove { .. } => "remove_function",
    }
}

/// The `name` inside a tool call's arguments (the raw JSON the optimizer wrote).
fn argument_name(arguments: &str) -> Option<String> {
    let parsed: serde_json::Value = serde_json::from_str(arguments).ok()?;
    parsed["name"].as_str().map(str::to_string)
}

/// Reads the events of a run, in order.
pub fn read(events: &[Event]) -> Events {
    let mut out = Events::default();
    // Rejections name the tool but not the function: the proposal just before them does.
    let mut last_proposed: Option<String> = None;
    for ev in events {
        match ev {
            Event::Decision { epoch, score, decision, functions, val, .. } => {
                let e = out.epochs.entry(*epoch).or_default();
                // A resumed run may log an epoch's decision again; the first one stands.
                if e.decision.is_some() {
                    continue;
                }
                e.decision = Some(*decision);
                e.score = Some(score.rate);
                e.val = *val;
                e.functions = Some(functions.clone());
            }
            Event::ActionProposed { call, .. } => last_proposed = argument_name(&call.arguments),
            Event::ActionApplied { epoch, action, .. } => {
                out.epochs.entry(*epoch).or_default().actions.push(Action {
                    outcome: ActionOutcome::Applied,
                    action: tool_of(action).into(),
                    function: Some(action.name().to_string()),
                    reason: None,
                });
            }
            Event::ActionRejected { epoch, tool, error, .. }
            | Event::ActionSkipped { epoch, tool, error, .. } => {
                let outcome = if matches!(ev, Event::ActionRejected { .. }) {
                    ActionOutcome::Rejected
                } else {
                    ActionOutcome::Skipped
                };
                out.epochs.entry(*epoch).or_default().actions.push(Action {
                    outcome,
                    action: tool.clone(),
                    function: last_proposed.clone(),
                    reason: Some(error.clone()),
                });
            }
            Event::StepDone { epoch, usage, .. } => {
                out.epochs.entry(*epoch).or_default().optimizer_usage = Some(*usage);
            }
            Event::TrainingStopped { reason, best_epoch } => {
                out.stop_reason = Some(*reason);
                out.best_epoch = Some(*best_epoch);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCall;
    use crate::trainer::rule::RuleState;

    fn proposed(epoch: usize, name: &str, arguments: &str) -> Event {
        let call = ToolCall { id: "c".into(), name: name.into(), arguments: arguments.into() };
        Event::ActionProposed { epoch, candidate: None, call }
    }

    #[test]
    fn actions_decisions_and_usage_by_epoch() {
        let score = Score { correct: 1, total: 2, errored: 0, rate: 0.5, ci95: None };
        let state = RuleState { best_epoch: Some(0), best_score: 0.5, stale: 0 };
        let decision = |epoch, decision| Event::Decision {
            epoch,
            score,
            versus_best: None,
            decision,
            state,
            functions: vec![],
            p_value: None,
            val: None,
        };
        let usage = Usage { calls: 3, input_tokens: 0, output_tokens: 0, usd: 0.25 };
        let events = [
            decision(0, Decision::Accept),
            Event::StepStarted { epoch: 1 },
            proposed(1, "remove_function", "{\"name\": \"h\"}"),
            Event::ActionApplied {
                epoch: 1,
                candidate: None,
                action: actions::Action::Remove { name: "h".into() },
            },
            proposed(1, "revise_function", "{\"name\": \"g\"}"),
            Event::ActionRejected {
                epoch: 1,
                candidate: None,
                tool: "revise_function".into(),
                error: "no `g`".into(),
                attempt: 1,
            },
            Event::StepDone { epoch: 1, applied: 1, functions: vec![], usage },
            decision(0, Decision::Rollback),
            Event::TrainingStopped { reason: Stop::Patience, best_epoch: 0 },
        ];
        let ev = read(&events);
        assert_eq!((ev.epochs[&0].decision, ev.epochs[&0].score), (Some(Decision::Accept), Some(0.5)));
        let e1 = &ev.epochs[&1];
        let summary: Vec<(ActionOutcome, &str, &str)> = e1
            .actions
            .iter()
            .map(|a| (a.outcome, a.action.as_str(), a.function.as_deref().unwrap()))
            .collect();
        assert_eq!(
            summary,
            [
                (ActionOutcome::Applied, "remove_function", "h"),
                (ActionOutcome::Rejected, "revise_function", "g")
            ]
        );
        assert_eq!(e1.actions[1].reason.as_deref(), Some("no `g`"));
        assert_eq!(e1.optimizer_usage.unwrap().calls, 3);
        assert_eq!((ev.stop_reason, ev.best_epoch), (Some(Stop::Patience), Some(0)));
    }
}
