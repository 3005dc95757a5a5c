//! Benchmark section `agent`: the framework's own work per assistant turn (SPEC §10) — the conversation
//! loop with a model that answers instantly and an executor that returns at once, so what is measured is
//! request building, reply classification, proxy replies, records and grading, not model or Python time.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::agent::{Agent, AgentConfig, CodeSession, Runner};
use crate::dataset::Problem;
use crate::exec::{self, ExecStatus, Execution};
use crate::functions::{FunctionDef, Registry};
use crate::grading::Grader;
use crate::llm::scripted::{Scripted, reply, tool_call};
use crate::llm::{Message, Role};

/// An executor that answers at once (no process), so only the loop's own work is timed.
struct Instant0;

struct InstantSession;

fn done(code: &str, stdout: &str, result: Option<&str>) -> Execution {
    Execution {
        code: code.into(),
        status: ExecStatus::Ok,
        stdout: stdout.into(),
        stderr: String::new(),
        result: result.map(str::to_string),
        duration_ms: 0,
        truncated: false,
        shell: None,
    }
}

#[async_trait]
impl Runner for Instant0 {
    async fn session(&self, _: &Registry) -> Result<Box<dyn CodeSession>, exec::Error> {
        Ok(Box::new(InstantSession))
    }
    async fn validate_function(&self, _: &FunctionDef) -> Result<Result<(), String>, exec::Error> {
        Ok(Ok(()))
    }
}

#[async_trait]
impl CodeSession for InstantSession {
    async fn run_code(&mut self, code: &str) -> Execution {
        done(code, "42\n", None)
    }
    async fn call_function(&mut self, name: &str, args: &str) -> Execution {
        done(&format!("{name}({args})"), "", Some("42"))
    }
    async fn close(self: Box<Self>) {}
}

/// Fourteen turns alternating code and a tool call, then the boxed answer: 15 assistant turns.
fn script() -> Scripted {
    Scripted::new(|request, _| {
        let turns = request.messages.iter().filter(|m| m.role == Role::Assistant).count();
        let message = match turns {
            14.. => Message::assistant("So the answer is \\boxed{42}."),
            t if t % 2 == 0 => Message::assistant("Let me compute.\n```python\nx = 6 * 7\nprint(x)\n```"),
            _ => tool_call("c", "times", r#"{"a": 6, "b": 7}"#),
        };
        Ok(reply(message))
    })
}

pub async fn run(quick: bool) -> Value {
    let conversations = if quick { 30 } else { 300 };
    let registry = Registry {
        functions: vec![FunctionDef {
            name: "times".into(),
            description: "Multiplies two integers.".into(),
            parameters: json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}),
            packages: vec![],
            code: "def times(a, b):\n    return a * b\n".into(),
        }],
    };
    let agent = Agent {
        model: Arc::new(script()),
        runner: Arc::new(Instant0),
        task: Arc::new(crate::task::Task::math(Grader::new(exec::find_python()))),
        config: AgentConfig::default(),
    };
    let problem = Problem::new("bench", "What is 6 times 7?", "42");
    let mut per_turn_ms = Vec::with_capacity(conversations);
    for i in 0..conversations {
        let started = Instant::now();
        match agent.solve(&registry, i, &problem).await {
            Ok(record) if record.is_correct() && record.turns > 0 => {
                per_turn_ms.push(started.elapsed().as_secs_f64() * 1000.0 / record.turns as f64)
            }
            Ok(record) => {
                return json!({"error": format!("unexpected conversation: {} turns, correct {}", record.turns, record.is_correct())});
            }
            Err(e) => return json!({"error": e.to_string()}),
        }
    }
    json!({
        "conversations": conversations,
        "turns_per_conversation": 15,
        "per_turn": super::latency_stats(&mut per_turn_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn measures_fifteen_turn_conversations() {
        let figures = run(true).await;
        assert!(figures.get("error").is_none(), "{figures}");
        assert_eq!(figures["per_turn"]["n"], 30);
    }
}
