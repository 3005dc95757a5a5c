//! `--metric python:FILE.py:FUNCTION`: the user's `FUNCTION(answer, reference, example) -> bool |
//! float`, run in the sandbox like any other code (a fresh session per problem, so one problem's
//! scoring cannot leave state for the next). The file is read once and its text is what runs (and
//! what run.json keeps, so `resume` scores with the same code even if the file changes).

use std::sync::Arc;

use serde_json::Value;

use super::{Error, Scored};
use crate::dataset::Problem;
use crate::exec::ExecStatus;
use crate::exec::Runner;
use crate::functions::Registry;
use crate::record::GradedBy;

/// Marks the line carrying the function's return value in the session's output.
const MARKER: &str = "__agentopt_metric_result__ ";

pub struct PythonMetric {
    pub source: String,
    pub function: String,
    pub runner: Arc<dyn Runner>,
}

impl PythonMetric {
    /// Checks in the sandbox that `source` runs and defines a callable `function`; `Ok(Err(why))`
    /// when it does not (bad input).
    pub async fn check(&self) -> Result<Result<(), String>, crate::exec::Error> {
        let mut session = self.runner.session(&Registry::default()).await?;
        let name = &self.function;
        let code = format!(
            "{}\nprint({MARKER:?} + ('ok' if callable(globals().get({name:?})) else 'missing'))",
            self.source
        );
        let execution = session.run_code(&code).await;
        session.close().await;
        let verdict = marked(&execution.stdout);
        Ok(match (execution.status, verdict) {
            (ExecStatus::Ok, Some("ok")) => Ok(()),
            (ExecStatus::Ok, _) => Err(format!("it defines no function `{name}`")),
            (_, _) => Err(format!("it fails to run: {}", last_line(&execution.stderr))),
        })
    }

    pub async fn score(&self, answer: Option<&str>, problem: &Problem) -> Result<Scored, Error> {
        let mut session = self.runner.session(&Registry::default()).await?;
        let literal = |v: &Value| serde_json::to_string(&v.to_string()).expect("a string serializes");
        let answer = answer.map_or(Value::Null, |a| Value::String(a.to_string()));
        let code = format!(
            "{source}\nimport json as _agentopt_json\n_agentopt_score = {function}(\
             _agentopt_json.loads({a}), _agentopt_json.loads({r}), _agentopt_json.loads({e}))\n\
             print('\\n' + {MARKER:?} + (_agentopt_json.dumps(_agentopt_score) \
             if isinstance(_agentopt_score, (bool, int, float)) else 'not ' + repr(_agentopt_score)))",
            source = self.source,
            function = self.function,
            a = literal(&answer),
            r = literal(&problem.reference_value()),
            e = literal(&problem.example()),
        );
        let execution = session.run_code(&code).await;
        session.close().await;
        let name = GradedBy::Python;
        if execution.status != ExecStatus::Ok {
            let why = last_line(&execution.stderr);
            return Ok(Scored::errored(format!("metric {}: {why}", self.function), name));
        }
        let Some(value) = marked(&execution.stdout) else {
            return Ok(Scored::errored(format!("metric {}: returned nothing readable", self.function), name));
        };
        Ok(match parse_score(value) {
            Ok(score) => Scored { score, ..Scored::of(false, name) },
            Err(why) => Scored::errored(format!("metric {}: {why}", self.function), name),
        })
    }
}

/// The function's return value as a score: `true`/`false`, or a number in [0, 1].
fn parse_score(value: &str) -> Result<f64, String> {
    if let Some(shown) = value.strip_prefix("not ") {
        return Err(format!("returned {shown}, not a bool or a number in [0, 1]"));
    }
    match serde_json::from_str::<Value>(value) {
        Ok(Value::Bool(b)) => Ok(f64::from(u8::from(b))),
        Ok(Value::Number(n)) => match n.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => Ok(x),
            _ => Err(format!("returned {n}, outside [0, 1]")),
        },
        // json.dumps writes NaN and Infinity, which are not JSON.
        _ => Err(format!("returned {value}, outside [0, 1]")),
    }
}

/// The text after the last marker line.
fn marked(stdout: &str) -> Option<&str> {
    stdout.lines().rev().find_map(|l| l.strip_prefix(MARKER)).map(str::trim)
}

/// The last non-empty line of a traceback (`ZeroDivisionError: division by zero`).
fn last_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no message)").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_become_scores() {
        assert_eq!(parse_score("true"), Ok(1.0));
        assert_eq!(parse_score("false"), Ok(0.0));
        assert_eq!(parse_score("0.25"), Ok(0.25));
        assert_eq!(parse_score("1"), Ok(1.0));
        assert!(parse_score("1.5").unwrap_err().contains("outside [0, 1]"));
        assert!(parse_score("NaN").is_err());
        assert!(parse_score("not 'yes'").unwrap_err().contains("'yes'"));
        assert_eq!(marked("x\n__agentopt_metric_result__ 0.5\n"), Some("0.5"));
        assert_eq!(
            last_line("Traceback\n  ...\nZeroDivisionError: division by zero\n"),
            "ZeroDivisionError: division by zero"
        );
    }
}
