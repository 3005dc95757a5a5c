//! What the assistant is asked to do and how its answer is scored (`--task`, `--system`,
//! `--opening`, `--metric`). `TaskSpec` is what run.json records, so `resume` and `eval --run` use
//! the same task; `Task` is the runnable form the conversation loop consults: the first messages,
//! when a reply ends the conversation, what its answer is, and the metric.
//!
//! - `math` (default): the MathChat prompt; a `\boxed{}` answer with no code ends the conversation.
//! - `general`: an AssistantAgent-style system message and the problem as the opening; a reply with no
//!   code saying `TERMINATE` ends it. Its answer is the last `\boxed{}` of that reply, else a line
//!   starting `Answer:`, else the reply with `TERMINATE` removed (a bare `TERMINATE` takes the answer
//!   from the assistant's previous reply).

pub mod metric;
pub mod template;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::agent::{End, general, prompts, proxy::ReplyKind};
use crate::dataset::Problem;
use crate::llm::{ChatModel, Message, Role};
pub use metric::{Metric, MetricSpec, Scored};
pub use template::Template;

/// `--task`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// MathChat: the math proxy's prompt, the final `\boxed{}` is the answer.
    #[default]
    Math,
    /// An AssistantAgent-style assistant that ends with TERMINATE.
    General,
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskKind::Math => "math",
            TaskKind::General => "general",
        })
    }
}

/// A text given by a file (`--system`, `--opening`): kept whole in run.json, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileText {
    pub file: PathBuf,
    pub text: String,
}

impl FileText {
    /// Reads `path`; the error names the flag and the file.
    pub fn read(flag: &str, path: &Path) -> Result<FileText, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{flag} `{}`: cannot read it: {e}", path.display()))?;
        if text.trim().is_empty() {
            return Err(format!("{flag} `{}`: the file is empty", path.display()));
        }
        Ok(FileText { file: std::path::absolute(path).unwrap_or_else(|_| path.into()), text })
    }
}

/// The task as run.json records it (absent in runs from before tasks: the math task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub kind: TaskKind,
    /// `--system`: replaces the kind's system message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<FileText>,
    /// `--opening`: the first proxy message's template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening: Option<FileText>,
    /// `--metric`, as given (`math`, `numeric:0.01`, `python:/abs/metric.py:score`, `judge:gpt-4o`).
    pub metric: String,
    /// The `python:` metric's source as it was when the run started (what `resume` runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_source: Option<String>,
}

impl Default for TaskSpec {
    fn default() -> Self {
        TaskSpec {
            kind: TaskKind::Math,
            system: None,
            opening: None,
            metric: "math".into(),
            metric_source: None,
        }
    }
}

impl TaskSpec {
    /// The spec the flags ask for: `--metric` defaults to `math` for the math task and to
    /// `normalized` for a general one. Reads the files named; errors name the flag and file.
    pub fn from_flags(
        kind: TaskKind,
        system: Option<&Path>,
        opening: Option<&Path>,
        metric: Option<&str>,
    ) -> Result<TaskSpec, String> {
        let metric = metric.map(str::to_string).unwrap_or_else(|| default_metric(kind).into());
        let mut parsed = MetricSpec::parse(&metric)?;
        let mut metric_source = None;
        if let MetricSpec::Python { file, .. } = &mut parsed {
            let source = std::fs::read_to_string(&*file)
                .map_err(|e| format!("--metric `{metric}`: cannot read `{}`: {e}", file.display()))?;
            metric_source = Some(source);
            // Absolute, so the recorded spec names the same file from any directory.
            *file = std::path::absolute(&*file).unwrap_or_else(|_| file.clone());
        }
        Ok(TaskSpec {
            kind,
            system: system.map(|p| FileText::read("--system", p)).transpose()?,
            opening: opening.map(|p| FileText::read("--opening", p)).transpose()?,
            metric: parsed.to_string(),
            metric_source,
        })
    }

    pub fn metric_spec(&self) -> Result<MetricSpec, String> {
        MetricSpec::parse(&self.metric)
    }

    /// The assistant's system message.
    pub fn system_message(&self) -> &str {
        match (&self.system, self.kind) {
            (Some(s), _) => &s.text,
            (None, TaskKind::Math) => prompts::ASSISTANT_SYSTEM,
            (None, TaskKind::General) => general::SYSTEM,
        }
    }

    /// The opening template, if one was given.
    pub fn opening_template(&self) -> Option<Template> {
        self.opening.as_ref().map(|o| Template::new(o.text.clone()))
    }

    /// Refuses an opening template some problem cannot fill (names the field and the problem).
    pub fn check_problems<'a>(&self, problems: impl IntoIterator<Item = &'a Problem>) -> Result<(), String> {
        let Some(template) = self.opening_template() else { return Ok(()) };
        let file = self.opening.as_ref().map(|o| o.file.display().to_string()).unwrap_or_default();
        for p in problems {
            template.check(p).map_err(|e| {
                format!("--opening `{file}`: {e}; write `{{{{` and `}}}}` for literal braces")
            })?;
        }
        Ok(())
    }

    /// One line for humans: `general, metric numeric, system from FILE`.
    pub fn describe(&self) -> String {
        let mut out = format!("{}, metric {}", self.kind, self.metric);
        if let Some(s) = &self.system {
            out.push_str(&format!(", system message from {}", s.file.display()));
        }
        if let Some(o) = &self.opening {
            out.push_str(&format!(", opening from {}", o.file.display()));
        }
        out
    }
}

/// The metric a task uses when `--metric` is not given.
pub fn default_metric(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Math => "math",
        TaskKind::General => "normalized",
    }
}

/// The runnable task.
#[derive(Clone)]
pub struct Task {
    pub kind: TaskKind,
    pub system: String,
    pub opening: Option<Template>,
    pub metric: Metric,
}

impl Task {
    /// Today's default: the MathChat conversation graded by the math checker.
    pub fn math(grader: crate::grading::Grader) -> Task {
        Task {
            kind: TaskKind::Math,
            system: prompts::ASSISTANT_SYSTEM.into(),
            opening: None,
            metric: Metric::Math(grader),
        }
    }

    /// The task with its judge's model (if any) wrapped by `wrap` (the run's meter), so the judge's
    /// calls count in usage and `--max-usd`.
    pub fn metered(self, wrap: impl Fn(Arc<dyn ChatModel>) -> Arc<dyn ChatModel>) -> Task {
        let metric = match self.metric {
            Metric::Judge(j) => {
                Metric::Judge(Arc::new(metric::judge::Judge { model: wrap(j.model.clone()), seed: j.seed }))
            }
            other => other,
        };
        Task { metric, ..self }
    }

    /// The system message and the opening for a problem.
    pub fn messages(&self, problem: &Problem) -> Vec<Message> {
        let opening = match (&self.opening, self.kind) {
            (Some(t), _) => t.render(problem),
            (None, TaskKind::Math) => prompts::opening(&problem.problem),
            (None, TaskKind::General) => problem.problem.clone(),
        };
        vec![Message::system(self.system.clone()), Message::user(opening)]
    }

    /// What an assistant reply asks of the proxy: tool calls, code, the end (with the answer this
    /// reply gives, possibly empty), or to go on.
    pub fn classify(&self, reply: &Message) -> ReplyKind {
        match self.kind {
            TaskKind::Math => crate::agent::proxy::classify(reply),
            TaskKind::General => match crate::agent::proxy::classify(reply) {
                ReplyKind::Answer(_) | ReplyKind::Continue if reply.text().contains(general::TERMINATE) => {
                    ReplyKind::Answer(general_answer(reply.text()).unwrap_or_default())
                }
                // A box alone does not end a general conversation: it ends on TERMINATE.
                ReplyKind::Answer(_) => ReplyKind::Continue,
                kind => kind,
            },
        }
    }

    /// The proxy's reply when the assistant neither ran code nor ended.
    pub fn continue_text(&self) -> &'static str {
        match self.kind {
            TaskKind::Math => prompts::CONTINUE,
            TaskKind::General => general::CONTINUE,
        }
    }

    /// The conversation's answer once it has ended.
    pub fn answer(&self, messages: &[Message], end: End) -> Option<String> {
        let mut replies = messages.iter().rev().filter(|m| m.role == Role::Assistant);
        match (self.kind, end) {
            (_, End::Errored) => None,
            (TaskKind::Math, End::Answered) => {
                replies.next().and_then(|m| crate::grading::extract_boxed(m.text()))
            }
            // No clean final answer: the last box the assistant wrote, if any.
            (TaskKind::Math, _) => replies.find_map(|m| crate::grading::extract_boxed(m.text())),
            (TaskKind::General, End::Answered) => {
                let last = replies.next()?;
                general_answer(last.text()).or_else(|| replies.next().and_then(|m| general_answer(m.text())))
            }
            // Without TERMINATE only an explicit answer counts (a box or an `Answer:` line).
            (TaskKind::General, _) => replies.find_map(|m| explicit_answer(m.text())),
        }
    }
}

/// A general reply's answer: its last box, else an `Answer:` line, else the text without TERMINATE.
pub fn general_answer(text: &str) -> Option<String> {
    explicit_answer(text).or_else(|| {
        let rest = text.replace(general::TERMINATE, "");
        let rest = rest.trim().trim_end_matches(['.', '!']).trim();
        (!rest.is_empty()).then(|| rest.to_string())
    })
}

/// The last `\boxed{}`, else the last line starting `Answer:` / `Final answer:` (markdown bold allowed).
fn explicit_answer(text: &str) -> Option<String> {
    if let Some(boxed) = crate::grading::extract_boxed(text) {
        return Some(boxed);
    }
    text.lines().rev().find_map(|line| {
        let l = line.trim().trim_start_matches(['*', '#', '-', ' ']);
        let lower = l.to_lowercase();
        let prefix = ["final answer:", "answer:", "final answer", "answer"].into_iter().find(|p| {
            lower.starts_with(p) && (p.ends_with(':') || lower[p.len()..].starts_with([':', '*']))
        })?;
        let rest = l[prefix.len()..].trim_start_matches([':', '*', ' ']);
        let rest = rest.replace(general::TERMINATE, "");
        let rest = rest.trim().trim_end_matches("**").trim();
        (!rest.is_empty()).then(|| rest.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Message;

    fn general() -> Task {
        Task {
            kind: TaskKind::General,
            system: general::SYSTEM.into(),
            opening: None,
            metric: Metric::Text(MetricSpec::Exact),
        }
    }

    #[test]
    fn general_answers() {
        assert_eq!(general_answer("The sum is \\boxed{12}. TERMINATE").as_deref(), Some("12"));
        assert_eq!(general_answer("Reasoning.\nAnswer: Paris\nTERMINATE").as_deref(), Some("Paris"));
        assert_eq!(general_answer("**Final answer:** 42 TERMINATE").as_deref(), Some("42"));
        assert_eq!(general_answer("Tokyo. TERMINATE").as_deref(), Some("Tokyo"));
        assert_eq!(general_answer("TERMINATE"), None);
        assert_eq!(general_answer("Answers vary.\nTERMINATE").as_deref(), Some("Answers vary"));
    }

    #[test]
    fn general_conversations_end_on_terminate() {
        let t = general();
        assert_eq!(t.classify(&Message::assistant("It is \\boxed{3}")), ReplyKind::Continue);
        assert_eq!(
            t.classify(&Message::assistant("It is 3. TERMINATE")),
            ReplyKind::Answer("It is 3".into())
        );
        assert!(matches!(
            t.classify(&Message::assistant("```python\nprint(1)\n```\nTERMINATE")),
            ReplyKind::Code(_)
        ));
        let messages =
            vec![Message::assistant("Answer: 7"), Message::user("ok"), Message::assistant("TERMINATE")];
        assert_eq!(t.answer(&messages, End::Answered).as_deref(), Some("7"));
        let unfinished = vec![Message::assistant("I think 5"), Message::assistant("still thinking")];
        assert_eq!(t.answer(&unfinished, End::MaxTurns), None);
    }

    #[test]
    fn specs_default_their_metric_and_read_files() {
        let spec = TaskSpec::from_flags(TaskKind::General, None, None, None).unwrap();
        assert_eq!((spec.metric.as_str(), spec.system_message()), ("normalized", general::SYSTEM));
        assert_eq!(TaskSpec::default().metric, "math");
        let err = TaskSpec::from_flags(TaskKind::Math, Some(Path::new("/nonexistent/sys.txt")), None, None);
        assert!(err.unwrap_err().starts_with("--system `/nonexistent/sys.txt`"));
        assert!(TaskSpec::from_flags(TaskKind::Math, None, None, Some("bogus")).is_err());
    }
}
