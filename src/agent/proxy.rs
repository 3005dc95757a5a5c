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
    Code(Vec<Block>),
    Answer(String),
    Continue,
}

/// The language of a fenced code block the proxy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    /// ```sh / ```shell (run by /bin/sh)
    Sh,
    /// ```bash (run by /bin/bash)
    Bash,
}

impl Lang {
    /// How records name a shell block's language (`Execution.shell`); `None` for Python.
    pub fn shell_name(self) -> Option<&'static str> {
        match self {
            Lang::Python => None,
            Lang::Sh => Some("sh"),
            Lang::Bash => Some("bash"),
        }
    }

    fn program(self) -> &'static str {
        match self {
            Lang::Bash => "/bin/bash",
            _ => "/bin/sh",
        }
    }
}

/// One fenced code block to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub lang: Lang,
    pub code: String,
}

impl Block {
    pub fn python(code: impl Into<String>) -> Block {
        Block { lang: Lang::Python, code: code.into() }
    }
}

pub fn classify(message: &Message) -> ReplyKind {
    if !message.tool_calls.is_empty() {
        return ReplyKind::ToolCalls;
    }
    let blocks = code_blocks(message.text(), false);
    if !blocks.is_empty() {
        return ReplyKind::Code(blocks);
    }
    match crate::grading::extract_boxed(message.text()) {
        Some(answer) => ReplyKind::Answer(answer),
        None => ReplyKind::Continue,
    }
}

/// The bodies of the fenced ```python (or ```py / ```python3) blocks, in order.
pub fn python_blocks(text: &str) -> Vec<String> {
    code_blocks(text, false).into_iter().map(|b| b.code).collect()
}

fn lang_of(info: &str, shell: bool) -> Option<Lang> {
    match info.trim().to_ascii_lowercase().as_str() {
        "python" | "py" | "python3" => Some(Lang::Python),
        // Not ```console: it usually holds a session (prompts and output), not a script.
        "sh" | "shell" if shell => Some(Lang::Sh),
        "bash" if shell => Some(Lang::Bash),
        _ => None,
    }
}

/// The fenced blocks to run, in order: Python, and with `shell` also sh/bash (AG2's AssistantAgent
/// offers both). An unclosed fence runs to the end of the text (models often stop right after the
/// code).
pub fn code_blocks(text: &str, shell: bool) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<(Option<Lang>, Vec<&str>)> = None;
    let mut push = |lang: Option<Lang>, body: Vec<&str>| {
        let code = body.join("\n");
        if let Some(lang) = lang
            && !code.trim().is_empty()
        {
            blocks.push(Block { lang, code });
        }
    };
    for line in text.lines() {
        let trimmed = line.trim();
        match current.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    current = Some((lang_of(info, shell), Vec::new()));
                }
            }
            Some((lang, mut body)) => {
                if trimmed.starts_with("```") {
                    push(lang, body);
                } else {
                    body.push(line);
                    current = Some((lang, body));
                }
            }
        }
    }
    if let Some((lang, body)) = current {
        push(lang, body);
    }
    blocks
}

/// The Python that runs a shell block in the session: the shell's output becomes the block's, and a
/// non-zero exit status an error. It runs in the same sandboxed process tree, under the same limits.
pub fn shell_wrapper(block: &Block) -> String {
    let shell = block.lang.program();
    // JSON string literals are Python string literals too.
    let literal = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "def _agentopt_shell(shell, code):\n\
         \x20   import subprocess, sys\n\
         \x20   r = subprocess.run([shell, \"-c\", code], stdin=subprocess.DEVNULL, capture_output=True)\n\
         \x20   sys.stdout.write(r.stdout.decode(\"utf-8\", \"replace\"))\n\
         \x20   sys.stderr.write(r.stderr.decode(\"utf-8\", \"replace\"))\n\
         \x20   if r.returncode != 0:\n\
         \x20       raise SystemExit(\"exit status %d\" % r.returncode)\n\
         _agentopt_shell({}, {})",
        literal(shell),
        literal(&block.code)
    )
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
    fn shell_blocks_only_when_asked_and_in_order() {
        let text = "```sh\nls\n```\n```python\nprint(1)\n```\n```bash\necho $((1+1))";
        assert_eq!(code_blocks(text, false), vec![Block::python("print(1)")]);
        let all = code_blocks(text, true);
        let langs: Vec<Lang> = all.iter().map(|b| b.lang).collect();
        assert_eq!(langs, [Lang::Sh, Lang::Python, Lang::Bash]);
        assert_eq!(all[2].code, "echo $((1+1))");
        let wrapper = shell_wrapper(&Block { lang: Lang::Sh, code: "echo \"a\"\nexit 3".into() });
        assert!(wrapper.ends_with(r#"_agentopt_shell("/bin/sh", "echo \"a\"\nexit 3")"#), "{wrapper}");
    }

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
            shell: None,
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
