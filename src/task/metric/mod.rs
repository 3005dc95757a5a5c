//! How an answer is scored (`--metric`): a score in [0, 1] per problem. `MetricSpec` is the parsed
//! flag (recorded in run.json); `Metric` is the runnable scorer: the math checker, a text metric, the
//! user's Python function run in the sandbox, or an LLM judge. A scorer that cannot decide (a metric
//! crash, a judge whose reply is not a verdict, a judge call that failed) makes the problem *errored*
//! with the reason — excluded from the rate, never scored wrong.

pub mod judge;
pub mod python;
pub mod text;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::dataset::Problem;
use crate::grading::Grader;
use crate::llm::Usage;
use crate::record::GradedBy;

/// `--metric NAME`, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricSpec {
    Math,
    Exact,
    Normalized,
    Contains,
    Numeric {
        tolerance: f64,
    },
    Choice,
    /// `python:FILE.py:FUNCTION`.
    Python {
        file: PathBuf,
        function: String,
    },
    /// `judge:MODEL` (a model name of the config list).
    Judge {
        model: String,
    },
}

impl MetricSpec {
    /// Parses the flag's value; the error says what is accepted.
    pub fn parse(text: &str) -> Result<MetricSpec, String> {
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (text, None),
        };
        let no_arg = |spec: MetricSpec| match arg {
            None => Ok(spec),
            Some(_) => Err(format!("--metric `{text}`: `{name}` takes no `:` argument")),
        };
        match name {
            "math" => no_arg(MetricSpec::Math),
            "exact" => no_arg(MetricSpec::Exact),
            "normalized" => no_arg(MetricSpec::Normalized),
            "contains" => no_arg(MetricSpec::Contains),
            "choice" => no_arg(MetricSpec::Choice),
            "numeric" => {
                let tolerance = match arg {
                    None => text::DEFAULT_TOLERANCE,
                    Some(t) => t
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|t| t.is_finite() && *t >= 0.0)
                        .ok_or_else(|| {
                            format!(
                                "--metric `{text}`: the tolerance must be a number ≥ 0 (e.g. numeric:1e-3)"
                            )
                        })?,
                };
                Ok(MetricSpec::Numeric { tolerance })
            }
            "python" => {
                let (file, function) = arg.and_then(|a| a.rsplit_once(':')).ok_or_else(|| {
                    format!("--metric `{text}`: write python:FILE.py:FUNCTION (e.g. python:metric.py:score)")
                })?;
                if file.is_empty() || !crate::functions::is_identifier(function) {
                    return Err(format!(
                        "--metric `{text}`: write python:FILE.py:FUNCTION, FUNCTION a Python identifier"
                    ));
                }
                Ok(MetricSpec::Python { file: file.into(), function: function.into() })
            }
            "judge" => match arg.map(str::trim) {
                Some(model) if !model.is_empty() => Ok(MetricSpec::Judge { model: model.into() }),
                _ => Err(format!("--metric `{text}`: write judge:MODEL, a model name of the config list")),
            },
            _ => Err(format!(
                "--metric `{text}`: unknown metric; use math, exact, normalized, contains, numeric[:TOL], \
                 choice, python:FILE.py:FUNCTION or judge:MODEL"
            )),
        }
    }
}

impl std::fmt::Display for MetricSpec {
    /// The flag's value, as run.json records it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricSpec::Math => f.write_str("math"),
            MetricSpec::Exact => f.write_str("exact"),
            MetricSpec::Normalized => f.write_str("normalized"),
            MetricSpec::Contains => f.write_str("contains"),
            MetricSpec::Choice => f.write_str("choice"),
            MetricSpec::Numeric { tolerance } if *tolerance == text::DEFAULT_TOLERANCE => {
                f.write_str("numeric")
            }
            MetricSpec::Numeric { tolerance } => write!(f, "numeric:{tolerance}"),
            MetricSpec::Python { file, function } => write!(f, "python:{}:{function}", file.display()),
            MetricSpec::Judge { model } => write!(f, "judge:{model}"),
        }
    }
}

/// One problem's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// In [0, 1]; 0 when errored.
    pub score: f64,
    /// Which check decided (the math checker's path, the metric's name, `no_answer`).
    pub decided_by: GradedBy,
    /// Why the metric could not score the problem (the problem is then excluded from the rate).
    pub errored: Option<String>,
    /// What scoring cost (a judge's calls).
    pub usage: Usage,
}

impl Scored {
    pub fn of(equal: bool, decided_by: GradedBy) -> Scored {
        Scored { score: f64::from(u8::from(equal)), decided_by, errored: None, usage: Usage::default() }
    }

    pub fn errored(reason: String, decided_by: GradedBy) -> Scored {
        Scored { score: 0.0, decided_by, errored: Some(reason), usage: Usage::default() }
    }
}

/// Why scoring produced nothing (the problem is not completed and runs again on resume).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("budget reached")]
    Budget,
    #[error("Failed to start a code session for the metric")]
    Exec(#[from] crate::exec::Error),
}

/// The runnable scorer.
#[derive(Clone)]
pub enum Metric {
    Math(Grader),
    Text(MetricSpec),
    Python(Arc<python::PythonMetric>),
    Judge(Arc<judge::Judge>),
}

impl Metric {
    /// Scores `answer` (`None`: the conversation gave none) against the problem's reference.
    pub async fn score(&self, answer: Option<&str>, problem: &Problem) -> Result<Scored, Error> {
        if let Metric::Python(metric) = self {
            // The user's function decides what a missing answer is worth (it receives None).
            return metric.score(answer, problem).await;
        }
        let Some(answer) = answer.filter(|a| !a.trim().is_empty()) else {
            return Ok(Scored::of(false, GradedBy::NoAnswer));
        };
        match self {
            Metric::Math(grader) => {
                let verdict = grader.check(answer, &problem.answer).await;
                Ok(Scored::of(verdict.equal, verdict.decided_by))
            }
            Metric::Text(spec) => Ok(score_text(spec, answer, problem)),
            Metric::Judge(judge) => judge.score(answer, problem).await,
            Metric::Python(_) => unreachable!("handled above"),
        }
    }
}

/// A text metric against every accepted answer (a list reference accepts any of its items).
fn score_text(spec: &MetricSpec, answer: &str, problem: &Problem) -> Scored {
    let name = match spec {
        MetricSpec::Exact => GradedBy::Exact,
        MetricSpec::Normalized => GradedBy::Normalized,
        MetricSpec::Contains => GradedBy::Contains,
        MetricSpec::Numeric { .. } => GradedBy::Numeric,
        _ => GradedBy::Choice,
    };
    let mut undecided = true;
    for reference in accepted(problem) {
        let verdict = match spec {
            MetricSpec::Exact => Some(text::exact(answer, &reference)),
            MetricSpec::Normalized => Some(text::normalized(answer, &reference)),
            MetricSpec::Contains => Some(text::contains(answer, &reference)),
            MetricSpec::Numeric { tolerance } => text::numeric(answer, &reference, *tolerance),
            MetricSpec::Choice => text::choice(answer, &reference),
            _ => None,
        };
        match verdict {
            Some(true) => return Scored::of(true, name),
            Some(false) => undecided = false,
            None => {}
        }
    }
    // No number (or letter) to compare in the answer: said as such, still a wrong answer.
    Scored::of(false, if undecided { GradedBy::NoAnswer } else { name })
}

/// The reference answers a text metric accepts: each item of a JSON list, else the reference.
fn accepted(problem: &Problem) -> Vec<String> {
    match &problem.answer_json {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        _ => vec![problem.answer.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        for text in
            ["math", "exact", "normalized", "contains", "choice", "numeric", "numeric:0.01", "judge:gpt-4o"]
        {
            assert_eq!(MetricSpec::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            MetricSpec::parse("python:dir/m.py:score").unwrap(),
            MetricSpec::Python { file: "dir/m.py".into(), function: "score".into() }
        );
        for bad in ["nope", "exact:1", "numeric:x", "numeric:-1", "python:m.py", "python:m.py:1x", "judge:"] {
            assert!(MetricSpec::parse(bad).is_err(), "{bad}");
        }
    }

    fn problem(answer: &str, answer_json: Option<Value>) -> Problem {
        Problem { answer: answer.into(), answer_json, ..Problem::new("p", "q", "") }
    }

    #[tokio::test]
    async fn list_references_accept_any_item() {
        let metric = Metric::Text(MetricSpec::Normalized);
        let p = problem("[\"NYC\",\"New York\"]", Some(serde_json::json!(["NYC", "New York"])));
        assert_eq!(metric.score(Some("new york."), &p).await.unwrap().score, 1.0);
        assert_eq!(metric.score(Some("Boston"), &p).await.unwrap().score, 0.0);
        let none = metric.score(None, &p).await.unwrap();
        assert_eq!((none.score, none.decided_by), (0.0, GradedBy::NoAnswer));
        let numeric = Metric::Text(MetricSpec::Numeric { tolerance: 1e-6 });
        let n = numeric.score(Some("no number here"), &problem("5", None)).await.unwrap();
        assert_eq!((n.score, n.decided_by), (0.0, GradedBy::NoAnswer));
    }
}
