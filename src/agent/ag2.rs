//! AG2's message format (what `ConversableAgent.chat_messages` holds) read as agentopt's
//! conversation records, for the Python package's `AgentOptimizer` drop-in: its users record AG2
//! conversations, and agentopt's optimizer is shown them as it is shown its own.

use serde_json::Value;

use super::{ConversationRecord, End};
use crate::llm::{Message, Role, ToolCall, Usage};
use crate::record::{GradedBy, Outcome};

/// One AG2 message as agentopt's: content as text, `function_call` / `tool_calls` as tool calls,
/// `function` / `tool` results as tool messages.
pub fn message(index: usize, m: &Value) -> Message {
    let content = match &m["content"] {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            Some(parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n"))
        }
        Value::Null => None,
        other => Some(other.to_string()),
    };
    let role = match m["role"].as_str() {
        Some("assistant") => Role::Assistant,
        Some("system") => Role::System,
        Some("function" | "tool") => Role::Tool,
        _ => Role::User,
    };
    let arguments = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut tool_calls: Vec<ToolCall> = Vec::new();
    if let Some(call) = m.get("function_call").filter(|c| c.is_object()) {
        tool_calls.push(ToolCall {
            id: format!("call_{index}"),
            name: call["name"].as_str().unwrap_or_default().to_string(),
            arguments: arguments(&call["arguments"]),
        });
    }
    for (i, call) in m["tool_calls"].as_array().into_iter().flatten().enumerate() {
        tool_calls.push(ToolCall {
            id: call["id"].as_str().map_or_else(|| format!("call_{index}_{i}"), str::to_string),
            name: call["function"]["name"].as_str().unwrap_or_default().to_string(),
            arguments: arguments(&call["function"]["arguments"]),
        });
    }
    Message {
        role,
        content,
        tool_calls,
        tool_call_id: m["tool_call_id"].as_str().map(str::to_string),
        name: m["name"].as_str().map(str::to_string).filter(|_| role == Role::Tool),
    }
}

/// An AG2 conversation (as `record_one_conversation` got it) as a record the optimizer can be shown.
/// The first message is the task; the last `\boxed{}` of the assistant is its answer.
pub fn record(index: usize, history: &[Value], satisfied: bool) -> ConversationRecord {
    let mut messages = vec![Message::system("")];
    messages.extend(history.iter().enumerate().map(|(i, m)| message(i, m)));
    let problem = messages.get(1).map(|m| m.text().to_string()).unwrap_or_default();
    let answer = messages
        .iter()
        .rev()
        .filter(|m| m.role == Role::Assistant)
        .find_map(|m| crate::grading::extract_boxed(m.text()));
    ConversationRecord {
        index,
        id: format!("conversation-{index}"),
        problem,
        subject: None,
        level: None,
        reference: String::new(),
        end: if answer.is_some() { End::Answered } else { End::MaxTurns },
        answer,
        outcome: Outcome::scored(f64::from(u8::from(satisfied))),
        graded_by: GradedBy::User,
        turns: messages.iter().filter(|m| m.role == Role::Assistant).count(),
        functions: Vec::new(),
        messages,
        executions: Vec::new(),
        usage: Usage::default(),
        duration_ms: 0,
        timing: Default::default(),
        fields: Default::default(),
        delegated: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_ag2_histories_with_function_calls() {
        let history = vec![
            json!({"role": "user", "content": "Let's solve. Problem: 1+1?", "name": "mathproxyagent"}),
            json!({"role": "assistant", "content": null,
                   "function_call": {"name": "add", "arguments": "{\"a\": 1, \"b\": 1}"}}),
            json!({"role": "function", "name": "add", "content": "2"}),
            json!({"role": "assistant", "content": "So \\boxed{2}."}),
        ];
        let r = record(3, &history, true);
        assert_eq!(r.id, "conversation-3");
        assert_eq!(r.problem, "Let's solve. Problem: 1+1?");
        assert_eq!(r.answer.as_deref(), Some("2"));
        assert!(r.is_correct());
        assert_eq!(r.turns, 2);
        assert_eq!(r.messages[2].tool_calls[0].name, "add");
        assert_eq!(r.messages[3].role, Role::Tool);
        assert_eq!(r.messages[3].name.as_deref(), Some("add"));
    }

    #[test]
    fn an_empty_history_is_a_record_without_messages() {
        let r = record(0, &[], false);
        assert_eq!((r.problem.as_str(), r.answer, r.turns), ("", None, 0));
    }
}
