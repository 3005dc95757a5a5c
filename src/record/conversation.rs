//! One conversation record (a line of `epochs/NNN/conversations.jsonl`, `eval/*.jsonl`, `eval --out`):
//! what was asked, what happened, and how it was scored. In memory the result is an `Outcome` and the
//! check that decided it a `GradedBy`; on disk the record keeps the fields it always had (`correct`,
//! `score`, `decided_by`, `errored`), so files written before this type are read unchanged.

use serde::{Deserialize, Serialize};

use crate::exec::Execution;
use crate::llm::{Message, Usage};

/// How a conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The assistant ended: a `\boxed{}` answer with no code (math), TERMINATE (general).
    Answered,
    /// `max_turns` assistant replies without a final answer.
    MaxTurns,
    /// The model call failed after retries.
    Errored,
    /// The human ended the chat (`agentopt chat`: `exit` or the end of input).
    Exited,
}

/// What a conversation scored.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The metric scored the answer 1.
    Correct,
    /// Scored below 1: 0 for a wrong (or missing) answer, a partial score for metrics that give one.
    Incorrect { score: f64 },
    /// Not scored (an infrastructure failure: the model, the metric's sandbox); left out of rates.
    Errored { reason: String },
}

impl Outcome {
    /// The outcome of a metric's score in [0, 1].
    pub fn scored(score: f64) -> Outcome {
        if score >= 1.0 { Outcome::Correct } else { Outcome::Incorrect { score } }
    }

    /// `Some(score)` when scored, `None` when errored.
    pub fn score(&self) -> Option<f64> {
        match self {
            Outcome::Correct => Some(1.0),
            Outcome::Incorrect { score } => Some(*score),
            Outcome::Errored { .. } => None,
        }
    }

    pub fn is_correct(&self) -> bool {
        matches!(self, Outcome::Correct)
    }

    /// Why the problem was not scored, when it was not.
    pub fn errored(&self) -> Option<&str> {
        match self {
            Outcome::Errored { reason } => Some(reason),
            _ => None,
        }
    }

    /// `Some(correct)` when scored (what progress lines and verdict tables count).
    pub fn verdict(&self) -> Option<bool> {
        self.score().map(|_| self.is_correct())
    }
}

/// Which check decided the score: a rule of the math checker, the `--metric`, or why there was none.
/// Written as the snake_case word (`decided_by` in records, `agentopt grade`'s output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradedBy {
    /// Identical strings (the math checker, or `--metric exact`).
    Exact,
    /// Identical after normalization (the math checker, or `--metric normalized`).
    Normalized,
    /// The math checker compared tuples, sets or intervals element by element.
    Structure,
    /// Equal (or not) as numbers (the math checker, or `--metric numeric`).
    Numeric,
    /// The math checker's symbolic fallback (math-verify in the sandbox's Python).
    MathVerify,
    /// The symbolic fallback ran out of time: counted as not equal.
    Timeout,
    /// The symbolic fallback could not run: counted as not equal.
    Unavailable,
    /// `--metric contains`.
    Contains,
    /// `--metric choice`.
    Choice,
    /// A `python:` metric.
    Python,
    /// A `judge:` metric.
    Judge,
    /// There was no answer to score.
    NoAnswer,
    /// The conversation errored before anything could be scored.
    Errored,
    /// The AG2 drop-in: the user's `is_satisfied` verdict.
    User,
    /// `agentopt chat` without `--answer`: nothing to score against.
    NoReference,
}

impl GradedBy {
    /// The word records use.
    pub fn as_str(self) -> &'static str {
        match self {
            GradedBy::Exact => "exact",
            GradedBy::Normalized => "normalized",
            GradedBy::Structure => "structure",
            GradedBy::Numeric => "numeric",
            GradedBy::MathVerify => "math_verify",
            GradedBy::Timeout => "timeout",
            GradedBy::Unavailable => "unavailable",
            GradedBy::Contains => "contains",
            GradedBy::Choice => "choice",
            GradedBy::Python => "python",
            GradedBy::Judge => "judge",
            GradedBy::NoAnswer => "no_answer",
            GradedBy::Errored => "errored",
            GradedBy::User => "user",
            GradedBy::NoReference => "no_reference",
        }
    }
}

impl std::str::FromStr for GradedBy {
    type Err = String;

    /// The word records use (`as_str`'s inverse).
    fn from_str(word: &str) -> Result<GradedBy, String> {
        serde_json::from_value(serde_json::Value::String(word.into())).map_err(|e| e.to_string())
    }
}

impl std::fmt::Display for GradedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a conversation's time went, in milliseconds (zeros in records from before it). What
/// `duration_ms` holds beyond their sum is the conversation loop itself and, on a busy machine,
/// waiting for a core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// Waiting for the model's replies (network, queueing at the provider, generation).
    pub model_ms: u64,
    /// Waiting for the code session to start (at the first code block or function call).
    pub session_start_ms: u64,
    /// Running code blocks and function calls.
    pub execution_ms: u64,
    /// Scoring the final answer.
    pub grading_ms: u64,
}

impl Timing {
    pub fn is_zero(&self) -> bool {
        *self == Timing::default()
    }
}

/// Everything that happened in one conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRecord {
    /// Position of the problem in its split (records are stored in this order).
    pub index: usize,
    pub id: String,
    pub problem: String,
    /// The problem's subject and level, from its dataset line (absent in format-1 records).
    pub subject: Option<String>,
    pub level: Option<u8>,
    pub reference: String,
    pub answer: Option<String>,
    pub outcome: Outcome,
    pub graded_by: GradedBy,
    pub end: End,
    pub turns: usize,
    /// The functions offered as tools.
    pub functions: Vec<String>,
    pub messages: Vec<Message>,
    pub executions: Vec<Execution>,
    /// The conversation's calls and, for a judge metric, the judge's.
    pub usage: Usage,
    pub duration_ms: u64,
    pub timing: Timing,
    /// The dataset line's other fields (what `--opening` and the metric could read).
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Conversations the assistant handed tasks to (`chat --delegate`), in call order; their usage
    /// is included in this record's.
    pub delegated: Vec<Delegated>,
}

/// One delegated task: the `call` it answered, and the fresh conversation that worked on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delegated {
    pub call_id: String,
    pub task: String,
    /// 1 for a task the top conversation handed on, 2 for one its delegate handed on, …
    pub depth: usize,
    /// What came back as the call's result.
    pub result: String,
    pub record: ConversationRecord,
}

impl ConversationRecord {
    /// `Some(score)` when scored, `None` when errored.
    pub fn score(&self) -> Option<f64> {
        self.outcome.score()
    }

    pub fn is_correct(&self) -> bool {
        self.outcome.is_correct()
    }

    pub fn errored(&self) -> Option<&str> {
        self.outcome.errored()
    }
}

/// The record as a line on disk: borrowed for writing, owned for reading.
#[derive(Serialize, Deserialize)]
struct Line<M, E, S, F, D> {
    index: usize,
    id: S,
    problem: S,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    level: Option<u8>,
    reference: S,
    answer: Option<S>,
    /// Whether the metric scored the answer 1 (false when errored).
    correct: bool,
    /// The metric's score in [0, 1] (absent in records from before metrics: `correct` as 0 or 1).
    #[serde(default)]
    score: Option<f64>,
    decided_by: GradedBy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    errored: Option<S>,
    end: End,
    turns: usize,
    functions: F,
    messages: M,
    executions: E,
    usage: Usage,
    duration_ms: u64,
    #[serde(default, skip_serializing_if = "Timing::is_zero")]
    timing: Timing,
    #[serde(default, skip_serializing_if = "is_empty")]
    fields: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delegated: Option<D>,
}

fn is_empty(map: &serde_json::Map<String, serde_json::Value>) -> bool {
    map.is_empty()
}

impl Serialize for ConversationRecord {
    fn serialize<Ser: serde::Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        let r = self;
        Line {
            index: r.index,
            id: r.id.as_str(),
            problem: r.problem.as_str(),
            subject: r.subject.as_deref(),
            level: r.level,
            reference: r.reference.as_str(),
            answer: r.answer.as_deref(),
            correct: r.is_correct(),
            score: Some(r.score().unwrap_or(0.0)),
            decided_by: r.graded_by,
            errored: r.errored(),
            end: r.end,
            turns: r.turns,
            functions: &r.functions,
            messages: &r.messages,
            executions: &r.executions,
            usage: r.usage,
            duration_ms: r.duration_ms,
            timing: r.timing,
            // The map is small (a dataset line's extra fields); a clone keeps `Line` simple.
            fields: r.fields.clone(),
            delegated: (!r.delegated.is_empty()).then_some(r.delegated.as_slice()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ConversationRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let l: Line<Vec<Message>, Vec<Execution>, String, Vec<String>, Vec<Delegated>> =
            Line::deserialize(d)?;
        let outcome = match l.errored {
            Some(reason) => Outcome::Errored { reason },
            None => Outcome::scored(l.score.unwrap_or(if l.correct { 1.0 } else { 0.0 })),
        };
        Ok(ConversationRecord {
            index: l.index,
            id: l.id,
            problem: l.problem,
            subject: l.subject,
            level: l.level,
            reference: l.reference,
            answer: l.answer,
            outcome,
            graded_by: l.decided_by,
            end: l.end,
            turns: l.turns,
            functions: l.functions,
            messages: l.messages,
            executions: l.executions,
            usage: l.usage,
            duration_ms: l.duration_ms,
            timing: l.timing,
            fields: l.fields,
            delegated: l.delegated.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: Outcome) -> ConversationRecord {
        ConversationRecord {
            index: 2,
            id: "p".into(),
            problem: "1+1?".into(),
            subject: Some("Algebra".into()),
            level: Some(2),
            reference: "2".into(),
            answer: Some("2".into()),
            outcome,
            graded_by: GradedBy::Exact,
            end: End::Answered,
            turns: 1,
            functions: vec!["f".into()],
            messages: vec![Message::user("1+1?")],
            executions: vec![],
            usage: Usage::default(),
            duration_ms: 3,
            timing: Default::default(),
            fields: Default::default(),
            delegated: vec![],
        }
    }

    #[test]
    fn round_trips_and_keeps_the_fields_on_disk() {
        for outcome in [
            Outcome::Correct,
            Outcome::Incorrect { score: 0.0 },
            Outcome::Incorrect { score: 0.4 },
            Outcome::Errored { reason: "503".into() },
        ] {
            let r = record(outcome);
            let line = serde_json::to_value(&r).unwrap();
            assert_eq!(line["correct"], r.is_correct());
            assert_eq!(line["decided_by"], "exact");
            assert_eq!((line["subject"].as_str(), line["level"].as_u64()), (Some("Algebra"), Some(2)));
            let back: ConversationRecord = serde_json::from_value(line).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn reads_records_from_before_scores_and_labels() {
        let line = serde_json::json!({"index": 0, "id": "a", "problem": "q", "reference": "1", "answer": "1",
            "correct": true, "decided_by": "math_verify", "end": "answered", "turns": 2, "functions": [],
            "messages": [], "executions": [], "usage": {"calls": 1, "input_tokens": 1, "output_tokens": 1, "usd": 0.0},
            "duration_ms": 5});
        let r: ConversationRecord = serde_json::from_value(line).unwrap();
        assert_eq!(
            (r.outcome, r.graded_by, r.subject, r.level),
            (Outcome::Correct, GradedBy::MathVerify, None, None)
        );
    }

    #[test]
    fn graded_by_reads_back_its_own_word() {
        for by in [GradedBy::MathVerify, GradedBy::NoAnswer, GradedBy::NoReference, GradedBy::Contains] {
            assert_eq!(by.as_str().parse::<GradedBy>(), Ok(by));
            assert_eq!(serde_json::to_value(by).unwrap(), by.as_str());
        }
        assert!("sympy".parse::<GradedBy>().is_err());
    }

    #[test]
    fn outcomes() {
        assert_eq!(Outcome::scored(1.0), Outcome::Correct);
        assert_eq!(Outcome::scored(0.5).score(), Some(0.5));
        assert_eq!(Outcome::Errored { reason: "x".into() }.verdict(), None);
        assert_eq!(Outcome::scored(0.0).verdict(), Some(false));
    }
}
