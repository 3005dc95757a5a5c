//! Delegation (`chat --delegate`, the workshop's `call` tool): the assistant hands a self-contained
//! task to a fresh copy of itself — same model, registry and task, its own code session — whose final
//! answer comes back as the call's result. Depth is bounded, and delegated turns count against the
//! conversation's turn limit.

use std::time::Instant;

use serde_json::{Value, json};

use super::human::HumanGate;
use super::{Agent, Error};
use crate::dataset::Problem;
use crate::exec::{ExecStatus, Execution};
use crate::functions::Registry;
use crate::llm::{ToolCall, ToolSpec};
use crate::record::{Delegated, End};

/// The tool's name (a registry may not define a function of this name when delegation is on).
pub const TOOL: &str = "call";

/// The `call` tool as offered to the assistant.
pub fn tool() -> ToolSpec {
    ToolSpec {
        name: TOOL.into(),
        description: "Hand a self-contained task to a fresh copy of yourself: a new conversation with the \
                      same tools and its own code session. Its final answer comes back as the result. The \
                      copy sees nothing of this conversation, so state the task completely."
            .into(),
        parameters: json!({
            "type": "object",
            "properties": {"task": {"type": "string", "description": "The task, complete in itself."}},
            "required": ["task"]
        }),
    }
}

/// The task of a `call`, or why the arguments are unusable.
pub fn task_of(arguments: &str) -> Result<String, String> {
    let value: Value = serde_json::from_str(arguments)
        .map_err(|e| format!("`{TOOL}` takes {{\"task\": \"...\"}}; the arguments are not JSON ({e})"))?;
    match value.get("task").and_then(Value::as_str).map(str::trim) {
        Some(task) if !task.is_empty() => Ok(task.to_string()),
        _ => Err(format!("`{TOOL}` takes {{\"task\": \"...\"}}, a non-empty string")),
    }
}

/// What goes back to the caller: the delegate's answer, or how it ended without one.
pub fn result_of(answer: Option<&str>, end: End, errored: Option<&str>) -> Result<String, String> {
    if let Some(reason) = errored {
        return Err(format!("the delegated conversation failed: {reason}"));
    }
    match (answer.map(str::trim), end) {
        (Some(a), End::Answered) if !a.is_empty() => Ok(a.to_string()),
        (_, End::MaxTurns) => {
            Err("the delegated conversation ran out of turns (--max-turns) without an answer".into())
        }
        (_, End::Exited) => Err("the delegated conversation was ended by the human".into()),
        _ => Err("the delegated conversation ended without an answer".into()),
    }
}

/// Where a delegation starts: the calling conversation's problem, record index and depth, and the
/// call's number among its delegations (from 1).
pub struct At<'a> {
    pub parent: &'a Problem,
    pub index: usize,
    pub depth: usize,
    pub n: usize,
}

fn execution(call: &ToolCall, outcome: Result<String, String>, duration_ms: u64) -> Execution {
    let (status, stdout, stderr) = match outcome {
        Ok(text) => (ExecStatus::Ok, text, String::new()),
        Err(reason) => (ExecStatus::Error, String::new(), reason),
    };
    Execution {
        code: format!("{}({})", call.name, call.arguments),
        status,
        stdout,
        stderr,
        result: None,
        duration_ms,
        truncated: false,
        shell: None,
    }
}

impl Agent {
    /// Runs the task of `call` as a conversation one level below `at`, if the depth and the turns
    /// left allow; the execution answers the call, the record (if one ran) nests in the caller's.
    pub(super) async fn delegate(
        &self,
        registry: &Registry,
        at: &At<'_>,
        call: &ToolCall,
        mut gate: Option<&mut (dyn HumanGate + '_)>,
        turns_left: &mut usize,
    ) -> Result<(Execution, Option<Delegated>), Error> {
        let max_depth = self.config.delegate.unwrap_or(0);
        let refused = |reason: String| Ok((execution(call, Err(reason), 0), None));
        let task = match task_of(&call.arguments) {
            Ok(task) => task,
            Err(reason) => return refused(reason),
        };
        if at.depth >= max_depth {
            return refused(format!(
                "no further delegation: the depth limit (--max-depth {max_depth}) is reached; work on the task yourself"
            ));
        }
        if *turns_left == 0 {
            return refused("no turns left for a delegated conversation (--max-turns)".into());
        }
        let depth = at.depth + 1;
        if let Some(g) = gate.as_deref_mut() {
            g.enter(depth, &task);
        }
        let problem = Problem::new(&format!("{}/{}", at.parent.id, at.n), &task, "");
        let started = Instant::now();
        // Boxed: the conversation may delegate again, and a recursive future needs a known size.
        let sub =
            Box::pin(self.converse_at(registry, at.index, &problem, gate.as_deref_mut(), depth, turns_left));
        let record = sub.await?;
        let outcome = result_of(record.answer.as_deref(), record.end, record.errored());
        let result = match &outcome {
            Ok(text) | Err(text) => text.clone(),
        };
        if let Some(g) = gate {
            g.leave(depth, &result);
        }
        let execution = execution(call, outcome, started.elapsed().as_millis() as u64);
        Ok((execution, Some(Delegated { call_id: call.id.clone(), task, depth, result, record })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_and_results_read_as_the_caller_needs() {
        assert_eq!(task_of(r#"{"task": " add 2 and 2 "}"#), Ok("add 2 and 2".into()));
        assert!(task_of(r#"{"task": ""}"#).unwrap_err().contains("non-empty"));
        assert!(task_of("{task").unwrap_err().contains("not JSON"));
        assert_eq!(result_of(Some("4"), End::Answered, None), Ok("4".into()));
        assert!(result_of(None, End::MaxTurns, None).unwrap_err().contains("ran out of turns"));
        assert!(result_of(Some("4"), End::Errored, Some("HTTP 500")).unwrap_err().contains("HTTP 500"));
    }
}
