//! Renders the optimizer's view of training as text: registries, the rejected lists with their
//! scores, the per-problem table, and the best epoch's conversations cut to a character budget
//! (failures and successes interleaved, failures first, so the most informative come first).

use std::fmt::Write;

use crate::functions::Registry;
use crate::llm::Role;
use crate::record::ConversationRecord;

/// Character limits of the prompt (about 4 characters per token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Budget {
    /// All conversations together.
    pub conversations_chars: usize,
    /// One message (longer ones keep their head and tail).
    pub message_chars: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { conversations_chars: 24_000, message_chars: 1_500 }
    }
}

pub fn registry(r: &Registry) -> String {
    if r.functions.is_empty() {
        return "(no functions)\n".into();
    }
    let mut out = String::new();
    for f in &r.functions {
        let _ = writeln!(
            out,
            "- name: {}\n  description: {}\n  arguments: {}",
            f.name, f.description, f.parameters
        );
        if !f.packages.is_empty() {
            let _ = writeln!(out, "  packages: {}", f.packages.join(" "));
        }
        let _ = writeln!(out, "  code:\n```python\n{}\n```", f.code.trim_end());
    }
    out
}

/// `| # | id | result | answer |` for every problem of the epoch. Reference answers are never shown:
/// the optimizer is to learn functions, not an answer key.
pub fn table(records: &[ConversationRecord]) -> String {
    let mut out = String::from("| # | problem id | result | final answer |\n|---|---|---|---|\n");
    for r in records {
        let result = if r.errored().is_some() { "errored (not scored)".to_string() } else { verdict(r) };
        let answer = r.answer.as_deref().unwrap_or("-");
        let _ = writeln!(out, "| {} | {} | {} | {} |", r.index + 1, r.id, result, answer);
    }
    out
}

/// `correct`, `incorrect`, or the partial score a metric gave (`score 0.40`).
fn verdict(r: &ConversationRecord) -> String {
    match r.score() {
        _ if r.is_correct() => "correct".into(),
        Some(s) if s > 0.0 => format!("partly correct (score {s:.2})"),
        _ => "incorrect".into(),
    }
}

/// Order of presentation: incorrect and correct interleaved, incorrect first; errored left out.
fn informative_order(records: &[ConversationRecord]) -> Vec<&ConversationRecord> {
    let (wrong, right): (Vec<_>, Vec<_>) =
        records.iter().filter(|r| r.errored().is_none()).partition(|r| !r.is_correct());
    let mut out = Vec::with_capacity(wrong.len() + right.len());
    let (mut w, mut r) = (wrong.into_iter(), right.into_iter());
    loop {
        match (w.next(), r.next()) {
            (None, None) => break,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
    out
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max * 2 / 3).collect();
    let tail: String = text.chars().rev().take(max / 3).collect::<Vec<_>>().into_iter().rev().collect();
    format!("{head}\n[... cut ...]\n{tail}")
}

/// One conversation as text; the opening prompt is replaced by the bare problem.
pub fn conversation(r: &ConversationRecord, budget: &Budget) -> String {
    let verdict = verdict(r);
    let mut out = format!(
        "### Problem {} ({verdict}; final answer {})\n{}\n",
        r.id,
        r.answer.as_deref().unwrap_or("none"),
        clip(&r.problem, budget.message_chars)
    );
    for m in r.messages.iter().skip(2) {
        let who = match m.role {
            Role::System => "system".to_string(),
            Role::User => "user".to_string(),
            Role::Assistant => "assistant".to_string(),
            Role::Tool => format!("tool result ({})", m.name.as_deref().unwrap_or("?")),
        };
        let _ = writeln!(out, "[{who}] {}", clip(m.text(), budget.message_chars));
        for c in &m.tool_calls {
            let _ =
                writeln!(out, "[assistant calls {}] {}", c.name, clip(&c.arguments, budget.message_chars));
        }
    }
    out
}

/// As many conversations as fit the budget, most informative first, with a note of what was left out.
pub fn conversations(records: &[ConversationRecord], budget: &Budget) -> String {
    let ordered = informative_order(records);
    let mut out = String::new();
    let mut shown = 0;
    for r in &ordered {
        let text = conversation(r, budget);
        if out.len() + text.len() > budget.conversations_chars && shown > 0 {
            break;
        }
        // The first conversation is always shown, clipped to the budget if need be.
        out.push_str(&clip(&text, budget.conversations_chars));
        out.push('\n');
        shown += 1;
    }
    if shown < ordered.len() {
        let _ = writeln!(out, "({} more conversations not shown)", ordered.len() - shown);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, Usage};
    use crate::record::{End, GradedBy, Outcome};

    fn rec(index: usize, correct: bool, text_len: usize) -> ConversationRecord {
        ConversationRecord {
            index,
            id: format!("p{index}"),
            problem: "Q".into(),
            subject: None,
            level: None,
            reference: "1".into(),
            answer: Some("1".into()),
            outcome: Outcome::scored(f64::from(u8::from(correct))),
            graded_by: GradedBy::Exact,
            end: End::Answered,
            turns: 1,
            functions: vec![],
            messages: vec![
                Message::system("s"),
                Message::user("open"),
                Message::assistant("a".repeat(text_len)),
            ],
            executions: vec![],
            usage: Usage::default(),
            duration_ms: 0,
            timing: Default::default(),
            fields: Default::default(),
            delegated: vec![],
        }
    }

    #[test]
    fn interleaves_failures_first() {
        let records =
            vec![rec(0, true, 1), rec(1, true, 1), rec(2, false, 1), rec(3, false, 1), rec(4, false, 1)];
        let ids: Vec<_> = informative_order(&records).iter().map(|r| r.index).collect();
        assert_eq!(ids, vec![2, 0, 3, 1, 4]);
    }

    #[test]
    fn truncates_to_budget_and_says_so() {
        let records: Vec<_> = (0..40).map(|i| rec(i, i % 2 == 0, 500)).collect();
        let budget = Budget { conversations_chars: 2_000, message_chars: 100 };
        let text = conversations(&records, &budget);
        assert!(text.len() <= 2_100, "{}", text.len());
        assert!(text.contains("more conversations not shown"));
        assert!(text.contains("[... cut ...]"));
        assert!(!text.contains("open"), "the opening prompt is not repeated");
    }

    #[test]
    fn table_marks_errored_and_hides_references() {
        let mut r = rec(0, false, 1);
        r.outcome = Outcome::Errored { reason: "HTTP 400".into() };
        r.reference = "SECRET_REFERENCE".into();
        let text = table(&[r.clone(), rec(1, true, 1)]);
        assert!(text.contains("| 1 | p0 | errored (not scored)"));
        assert!(!text.contains("SECRET_REFERENCE"));
        assert!(!conversation(&r, &Budget::default()).contains("SECRET_REFERENCE"));
    }
}
