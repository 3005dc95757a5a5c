//! The math proxy's side of the conversation: classifying an assistant reply (tool calls, code, a
//! final answer, or none of these), turning executions into replies, and AG2's repeat/invalid-query
//! nudges.

use crate::exec::{ExecStatus, Execution};
use crate::llm::Message;

use super::prompts;

/// Repeated failing queries before the proxy replaces its reply with the "revisit" nudge (AG2: 3).
pub const MAX_INVALID_QUERIES: usize = 3;

/// What an assistant reply asks of the proxy, in the order SPEC §5 checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyKind {
    ToolCalls,
    Code(Vec<String>),
    Answer(String),
    Continue,
}

pub fn classify(message: &Message) -> ReplyKind {
    if !message.tool_calls.is_empty() {
        return ReplyKind::ToolCalls;
    }
    let blocks = python_blocks(message.text());
    if !blocks.is_empty() {
        return ReplyKind::Code(blocks);
    }
    match crate::grading::extract_boxed(message.text()) {
        Some(answer) => ReplyKind::Answer(answer),
        None => ReplyKind::Continue,
    }
}

/// The bodies of the fenced ```python (or ```py / ```python3) blocks, in order. An unclosed fence
/// runs to the end of the text (models often stop right after the code).
pub fn python_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<(bool, Vec<&str>)> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        match current.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let lang = info.trim().to_ascii_lowercase();
                    current = Some((matches!(lang.as_str(), "python" | "py" | "python3"), Vec::new()));
                }
            }
            Some((is_python, mut body)) => {
                if trimmed.starts_with("```") {
                    let code = body.join("\n");
                    if is_python && !code.trim().is_empty() {
                        blocks.push(code);
                    }
                } else {
                    body.push(line);
                    current = Some((is_python, body));
                }
            }
        }
    }
    if let Some((true, body)) = current {
        let code = body.join("\n");
        if !code.trim().is_empty() {
            blocks.push(code);
        }
    }
    blocks
}

/// The assistant-facing text of an execution and whether it counts as a successful query.
pub fn format_execution(e: &Execution) -> (String, bool) {
    let mut out = e.stdout.trim_end().to_string();
    if let Some(result) = &e.result
        && result != "None"
    {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(result);
    }
    // Truncated output already carries its marker (`exec::reply::truncate`): no second one here.
    match e.status {
        ExecStatus::Ok if out.is_empty() => (prompts::NO_OUTPUT.to_string(), false),
        ExecStatus::Ok => (out, true),
        // A timeout or crash says how it ended in stderr, after what the code printed: one message.
        ExecStatus::Error | ExecStatus::Timeout | ExecStatus::Crashed => {
            let err = e.stderr.trim();
            let text = if out.is_empty() { format!("Error: {err}") } else { format!("{out}\nError: {err}") };
            (text, false)
        }
    }
}

/// AG2's proxy memory within one conversation: the last reply (to flag repeats) and the count of
/// failing queries since the last nudge.
#[derive(Debug, Default)]
pub struct ProxyState {
    last_reply: Option<String>,
    invalid_queries: usize,
}

impl ProxyState {
    /// The final reply to a round of queries: flags an exact repeat, and after more than
    /// `MAX_INVALID_QUERIES` failing rounds replaces the reply with the revisit nudge.
    pub fn reply(&mut self, reply: String, all_ok: bool) -> String {
        let reply = reply.trim().to_string();
        if self.last_reply.as_deref() == Some(reply.as_str()) {
            return format!("{reply}\n{}", prompts::SAME_RESULT);
        }
        self.last_reply = Some(reply.clone());
        if !all_ok {
            self.invalid_queries += 1;
            if self.invalid_queries > MAX_INVALID_QUERIES {
                self.invalid_queries = 0;
                return prompts::REVISIT.to_string();
            }
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_python_blocks_only() {
        let text = "Idea.\n```python\nx = 1\nprint(x)\n```\ntext\n```\nplain\n```\n```py\nprint(2)\n```";
        assert_eq!(python_blocks(text), vec!["x = 1\nprint(x)".to_string(), "print(2)".to_string()]);
        assert_eq!(python_blocks("```python\nprint(3)"), vec!["print(3)".to_string()]);
        assert!(python_blocks("no code \\boxed{3}").is_empty());
    }

    #[test]
    fn classifies_in_spec_order() {
        let mut m = Message::assistant("```python\nprint(1)\n```\n\\boxed{1}");
        assert!(matches!(classify(&m), ReplyKind::Code(_)));
        m.content = Some("so \\boxed{\\frac{1}{2}}".into());
        assert_eq!(classify(&m), ReplyKind::Answer("\\frac{1}{2}".into()));
        m.content = Some("thinking".into());
        assert_eq!(classify(&m), ReplyKind::Continue);
        m.tool_calls.push(crate::llm::ToolCall { id: "1".into(), name: "f".into(), arguments: "{}".into() });
        assert_eq!(classify(&m), ReplyKind::ToolCalls);
    }

    #[test]
    fn formats_outcomes() {
        let mut e = Execution {
            code: "x".into(),
            status: ExecStatus::Ok,
            stdout: "4\n".into(),
            stderr: String::new(),
            result: None,
            duration_ms: 1,
            truncated: false,
        };
        assert_eq!(format_execution(&e), ("4".to_string(), true));
        e.stdout.clear();
        assert_eq!(format_execution(&e), (prompts::NO_OUTPUT.to_string(), false));
        e.result = Some("7".into());
        assert_eq!(format_execution(&e), ("7".to_string(), true));
        e.status = ExecStatus::Error;
        e.result = None;
        e.stderr = "ZeroDivisionError".into();
        assert_eq!(format_execution(&e), ("Error: ZeroDivisionError".to_string(), false));
    }

    #[test]
    fn nudges_after_repeated_failures_and_flags_repeats() {
        let mut p = ProxyState::default();
        assert_eq!(p.reply("a".into(), false), "a");
        assert!(p.reply("a".into(), false).ends_with(prompts::SAME_RESULT));
        assert_eq!(p.reply("b".into(), false), "b");
        assert_eq!(p.reply("c".into(), false), "c");
        assert_eq!(p.reply("d".into(), false), prompts::REVISIT);
        assert_eq!(p.reply("e".into(), true), "e");
    }
}
