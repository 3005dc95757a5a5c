//! `events.jsonl`: which events the inspector reads and which of their fields. Events are tagged by
//! `event` (the trainer's serde tag) or `type`. Optimizer step events carry `epoch`: the epoch whose
//! trial registry that step built (the step runs *before* the epoch it feeds).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::records::Usage;
use super::scalar_text;

/// An optimizer action as logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    /// `applied`, `rejected` (one refused attempt, retried with the error shown) or `skipped` (given
    /// up after the retries).
    pub outcome: String,
    /// `add_function`, `revise_function` or `remove_function`, when logged.
    pub action: Option<String>,
    /// The function it names, when known.
    pub function: Option<String>,
    /// Why it was refused.
    pub reason: Option<String>,
}

/// What the events say about one epoch.
#[derive(Debug, Default)]
pub struct EpochEvents {
    pub decision: Option<String>,
    pub score: Option<f64>,
    pub functions: Option<Vec<String>>,
    pub actions: Vec<Action>,
    /// The optimizer step that built this epoch's registry.
    pub optimizer_usage: Option<Usage>,
}

#[derive(Debug, Default)]
pub struct Events {
    pub epochs: BTreeMap<usize, EpochEvents>,
    pub stop_reason: Option<String>,
    pub best_epoch: Option<usize>,
}

fn kind(ev: &Value) -> &str {
    ev["event"].as_str().or_else(|| ev["type"].as_str()).unwrap_or("")
}

/// `add` (the trainer's action tag) and `add_function` (the tool name) both read as `add_function`.
fn action_name(v: &Value) -> Option<String> {
    let name = scalar_text(v)?;
    Some(if name.ends_with("_function") { name } else { format!("{name}_function") })
}

/// The `name` inside tool-call arguments, which may be the raw JSON string the optimizer wrote.
fn argument_name(args: &Value) -> Option<String> {
    let parsed: Value = args.as_str().and_then(|a| serde_json::from_str(a).ok()).unwrap_or(Value::Null);
    scalar_text(&args["name"]).or_else(|| scalar_text(&parsed["name"]))
}

fn entry(out: &mut Events, epoch: Option<usize>) -> Option<&mut EpochEvents> {
    epoch.map(|n| out.epochs.entry(n).or_default())
}

/// Reads the events of a run, in order.
pub fn read(events: &[Value]) -> Events {
    let mut out = Events::default();
    // Rejections name the tool but not the function: the proposal just before them does.
    let mut last_proposed: Option<String> = None;
    for ev in events {
        let epoch = ev["epoch"].as_u64().map(|n| n as usize);
        match kind(ev) {
            "decision" => {
                let Some(e) = entry(&mut out, epoch) else { continue };
                // A resumed run may log an epoch's decision again; the first one stands.
                if e.decision.is_some() {
                    continue;
                }
                e.decision = scalar_text(&ev["decision"]).or_else(|| {
                    ev["accepted"].as_bool().map(|a| if a { "accept" } else { "rollback" }.to_string())
                });
                e.score = ev["score"].as_f64().or_else(|| ev["score"]["rate"].as_f64());
                e.functions =
                    ev["functions"].as_array().map(|fs| fs.iter().filter_map(scalar_text).collect());
            }
            "action_proposed" => {
                let call = &ev["call"];
                last_proposed = argument_name(&call["arguments"]).or_else(|| argument_name(&ev["arguments"]));
            }
            "action_applied" => {
                let Some(e) = entry(&mut out, epoch) else { continue };
                let a = &ev["action"];
                e.actions.push(Action {
                    outcome: "applied".into(),
                    action: action_name(&a["action"])
                        .or_else(|| action_name(a))
                        .or_else(|| action_name(&a["kind"]))
                        .or_else(|| action_name(&ev["tool"])),
                    function: scalar_text(&a["function"]["name"])
                        .or_else(|| scalar_text(&a["name"]))
                        .or_else(|| scalar_text(&ev["function"]))
                        .or_else(|| scalar_text(&ev["name"]))
                        .or_else(|| argument_name(&a["arguments"]))
                        .or_else(|| argument_name(&ev["arguments"])),
                    reason: None,
                });
            }
            k @ ("action_rejected" | "action_skipped") => {
                let Some(e) = entry(&mut out, epoch) else { continue };
                e.actions.push(Action {
                    outcome: if k == "action_rejected" { "rejected" } else { "skipped" }.into(),
                    action: action_name(&ev["tool"]).or_else(|| action_name(&ev["action"])),
                    function: scalar_text(&ev["function"])
                        .or_else(|| scalar_text(&ev["name"]))
                        .or_else(|| last_proposed.clone()),
                    reason: scalar_text(&ev["error"]).or_else(|| scalar_text(&ev["reason"])),
                });
            }
            "step_done" => {
                if let Some(e) = entry(&mut out, epoch) {
                    e.optimizer_usage = Some(Usage::from_json(&ev["usage"]));
                }
            }
            "training_stopped" => {
                out.stop_reason = scalar_text(&ev["reason"]);
                out.best_epoch = ev["best_epoch"].as_u64().map(|n| n as usize);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trainer_shaped_events() {
        let events = [
            json!({"event": "decision", "epoch": 0, "score": {"correct": 1, "total": 2, "errored": 0, "rate": 0.5},
                   "decision": "accept", "functions": []}),
            json!({"event": "step_started", "epoch": 1}),
            json!({"event": "action_proposed", "epoch": 1,
                   "call": {"id": "c1", "name": "add_function", "arguments": "{\"name\": \"f\"}"}}),
            json!({"event": "action_applied", "epoch": 1,
                   "action": {"action": "add", "function": {"name": "f", "code": "def f(): pass"}}}),
            json!({"event": "action_proposed", "epoch": 1,
                   "call": {"id": "c2", "name": "revise_function", "arguments": "{\"name\": \"g\"}"}}),
            json!({"event": "action_rejected", "epoch": 1, "tool": "revise_function", "error": "no `g`", "attempt": 1}),
            json!({"event": "action_applied", "epoch": 1, "action": {"action": "remove", "name": "h"}}),
            json!({"event": "step_done", "epoch": 1, "applied": 2, "usage": {"calls": 3, "usd": 0.25}}),
            json!({"event": "decision", "epoch": 0, "score": 0.9, "decision": "rollback"}),
            json!({"event": "training_stopped", "reason": "patience", "best_epoch": 0}),
        ];
        let ev = read(&events);
        let e0 = &ev.epochs[&0];
        assert_eq!((e0.decision.as_deref(), e0.score), (Some("accept"), Some(0.5)));
        let e1 = &ev.epochs[&1];
        let summary: Vec<(&str, &str, &str)> = e1
            .actions
            .iter()
            .map(|a| (a.outcome.as_str(), a.action.as_deref().unwrap(), a.function.as_deref().unwrap()))
            .collect();
        assert_eq!(
            summary,
            [
                ("applied", "add_function", "f"),
                ("rejected", "revise_function", "g"),
                ("applied", "remove_function", "h")
            ]
        );
        assert_eq!(e1.actions[1].reason.as_deref(), Some("no `g`"));
        assert_eq!(e1.optimizer_usage.unwrap().calls, 3);
        assert_eq!((ev.stop_reason.as_deref(), ev.best_epoch), (Some("patience"), Some(0)));
    }

    #[test]
    fn type_tagged_events() {
        let events = [
            json!({"type": "action_applied", "epoch": 2, "action": "revise_function", "name": "q"}),
            json!({"type": "decision", "epoch": 2, "accepted": false, "score": 0.25}),
        ];
        let ev = read(&events);
        let e = &ev.epochs[&2];
        assert_eq!(e.actions[0].function.as_deref(), Some("q"));
        assert_eq!(e.actions[0].action.as_deref(), Some("revise_function"));
        assert_eq!(e.decision.as_deref(), Some("rollback"));
    }
}
