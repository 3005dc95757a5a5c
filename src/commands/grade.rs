//! `agentopt grade`: the answer checker on its own, for one pair or a JSON Lines file of cases.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Map, Value};

use crate::cli::GradeArgs;
use crate::commands::bad_input;
use crate::grading::Grader;

/// Cases in flight at once; the grader's worker pool bounds the Python side on its own.
const IN_FLIGHT: usize = 64;

pub async fn run(args: GradeArgs) -> anyhow::Result<ExitCode> {
    let grader = Grader::new(crate::exec::find_python());
    if let Some(path) = &args.cases {
        return grade_cases(&grader, path).await;
    }
    let (Some(given), Some(reference)) = (&args.given, &args.reference) else {
        return Err(bad_input(anyhow::anyhow!("give GIVEN and REFERENCE, or --cases FILE")));
    };
    let verdict = grader.check(given, reference).await;
    if args.json {
        let out = serde_json::json!({
            "given": given, "reference": reference, "equal": verdict.equal, "decided_by": verdict.decided_by,
        });
        println!("{out}");
    } else {
        println!("{}", if verdict.equal { "equal" } else { "not equal" });
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads every case first (a bad line is reported before any grading), grades them concurrently,
/// and prints each line back in input order with `equal` and `decided_by` added.
async fn grade_cases(grader: &Grader, path: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("Failed to read cases at `{}`", path.display()))
        .map_err(bad_input)?;
    let mut cases = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (obj, given, reference) = parse_case(path, index + 1, line).map_err(bad_input)?;
        cases.push((line, obj, given, reference));
    }
    let mut graded =
        futures::stream::iter(cases.into_iter().map(|(line, obj, given, reference)| async move {
            let verdict = grader.check(&given, &reference).await;
            (with_verdict(line, obj, verdict.equal, verdict.decided_by.as_str()), verdict.equal)
        }))
        .buffered(IN_FLIGHT);
    let (mut total, mut equal) = (0usize, 0usize);
    while let Some((line, is_equal)) = graded.next().await {
        total += 1;
        equal += usize::from(is_equal);
        if let Err(e) = writeln!(std::io::stdout(), "{line}") {
            // `agentopt grade --cases f | head` closes the pipe early: that is not a failure.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(anyhow::Error::new(e).context("Failed to write to stdout"));
        }
    }
    tracing::info!("{equal} of {total} cases equal");
    Ok(ExitCode::SUCCESS)
}

/// The input line with the verdict appended, so its fields keep their order and spelling; a line that
/// already has `equal` or `decided_by` (an expectations file) is re-serialised with them replaced.
fn with_verdict(line: &str, mut obj: Map<String, Value>, equal: bool, decided_by: &str) -> String {
    let trimmed = line.trim();
    if !obj.contains_key("equal") && !obj.contains_key("decided_by") && trimmed.ends_with('}') {
        let decided_by = Value::String(decided_by.to_string());
        return format!("{},\"equal\":{equal},\"decided_by\":{decided_by}}}", &trimmed[..trimmed.len() - 1]);
    }
    obj.insert("equal".into(), Value::Bool(equal));
    obj.insert("decided_by".into(), Value::String(decided_by.to_string()));
    Value::Object(obj).to_string()
}

fn parse_case(path: &Path, line: usize, raw: &str) -> anyhow::Result<(Map<String, Value>, String, String)> {
    let at = || format!("`{}` line {line}", path.display());
    let value: Value = serde_json::from_str(raw).with_context(|| format!("{}: not valid JSON", at()))?;
    let Value::Object(obj) = value else { anyhow::bail!("{}: expected a JSON object", at()) };
    let field = |name: &str| match obj.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(anyhow::anyhow!("{}: field `{name}` must be a string", at())),
        None => Err(anyhow::anyhow!("{}: field `{name}` is missing", at())),
    };
    let (given, reference) = (field("given")?, field("reference")?);
    Ok((obj, given, reference))
}
