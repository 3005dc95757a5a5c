//! Turning worker replies into `Execution`s (with output truncation). The text the assistant reads
//! of an execution is composed in `agent::proxy`, with the rest of what the model is told.

use serde_json::Value;

use super::{ExecStatus, Execution};

impl Execution {
    /// From a worker reply `{status, stdout, stdout_omitted, stderr, stderr_omitted, result}`.
    pub(crate) fn from_reply(code: String, reply: &Value, duration_ms: u64, cap: usize) -> Execution {
        let text = |key: &str| reply.get(key).and_then(Value::as_str).unwrap_or_default();
        let omitted = |key: &str| reply.get(key).and_then(Value::as_u64).unwrap_or(0);
        let (stdout, cut_out) = truncate(text("stdout"), omitted("stdout_omitted"), cap);
        let (stderr, cut_err) = truncate(text("stderr"), omitted("stderr_omitted"), cap);
        let (result, cut_result) = match reply.get("result").and_then(Value::as_str) {
            Some(r) => {
                let (r, cut) = truncate(r, 0, cap);
                (Some(r), cut)
            }
            None => (None, false),
        };
        let status = match reply.get("status").and_then(Value::as_str) {
            Some("ok") => ExecStatus::Ok,
            _ => ExecStatus::Error,
        };
        Execution {
            code,
            status,
            stdout,
            stderr,
            result,
            duration_ms,
            truncated: cut_out || cut_err || cut_result,
            shell: None,
        }
    }

    /// An execution that did not produce output: the message goes to stderr.
    pub(crate) fn failed(code: String, status: ExecStatus, message: String, duration_ms: u64) -> Execution {
        Execution {
            code,
            status,
            stdout: String::new(),
            stderr: message,
            result: None,
            duration_ms,
            truncated: false,
            shell: None,
        }
    }

    /// An execution that ended without a reply (timeout, crash): what it printed until then, and
    /// the message saying how it ended after its own stderr.
    pub(crate) fn cut_short(
        code: String,
        status: ExecStatus,
        partial: super::worker::PartialOutput,
        message: String,
        duration_ms: u64,
        cap: usize,
    ) -> Execution {
        let (stdout, cut_out) = truncate(&partial.stdout, 0, cap);
        let (mut stderr, cut_err) = truncate(&partial.stderr, 0, cap);
        push_line(&mut stderr, &message);
        Execution {
            code,
            status,
            stdout,
            stderr,
            result: None,
            duration_ms,
            truncated: cut_out || cut_err,
            shell: None,
        }
    }

    /// A request refused before reaching Python (e.g. arguments that are not JSON).
    pub(crate) fn refused(code: String, message: String) -> Execution {
        Execution::failed(code, ExecStatus::Error, message, 0)
    }
}

fn push_line(output: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !output.is_empty() && !output.ends_with('\n') {
        output.push('\n');
    }
    output.push_str(text);
}

/// Cuts `text` to at most `cap` bytes (on a character boundary); `omitted` is what the worker already
/// dropped. Returns the text, with a marker saying how much is missing, and whether anything was cut.
pub(crate) fn truncate(text: &str, omitted: u64, cap: usize) -> (String, bool) {
    let mut end = text.len().min(cap);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let missing = omitted + text[end..].chars().count() as u64;
    if missing == 0 {
        return (text.to_string(), false);
    }
    let mut kept = text[..end].to_string();
    if !kept.ends_with('\n') {
        kept.push('\n');
    }
    kept.push_str(&format!("[... output truncated: {missing} more characters not shown ...]"));
    (kept, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_short_text() {
        assert_eq!(truncate("abc", 0, 10), ("abc".to_string(), false));
    }

    #[test]
    fn truncate_marks_cut_text_on_a_char_boundary() {
        let (text, cut) = truncate("ééé", 0, 3);
        assert!(cut);
        assert!(text.starts_with("é\n[... output truncated: 2 more characters"));
        let (text, cut) = truncate("ab", 5, 10);
        assert!(cut && text.contains("5 more characters"));
    }

    #[test]
    fn replies_become_executions() {
        let ok = Execution::from_reply(
            "print(2)".into(),
            &serde_json::json!({"status": "ok", "stdout": "2\n"}),
            1,
            100,
        );
        assert_eq!((ok.status, ok.stdout.as_str(), ok.result.as_deref()), (ExecStatus::Ok, "2\n", None));
        let call = Execution::from_reply(
            "f({})".into(),
            &serde_json::json!({"status": "error", "stderr": "boom", "result": "4"}),
            1,
            100,
        );
        assert_eq!(
            (call.status, call.stderr.as_str(), call.result.as_deref()),
            (ExecStatus::Error, "boom", Some("4"))
        );
    }
}
