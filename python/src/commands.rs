//! `train`, `resume` and `evaluate` from Python: the Python half turns keyword arguments into the
//! CLI's flags, which are parsed by the CLI's own parser (same defaults, same checks, same messages)
//! and run by the CLI's own code; only the printing differs: the outcome comes back as JSON.

use clap::Parser;
use pyo3::prelude::*;

use agentopt::cli::{Cli, Command};
use agentopt::commands::Hooks;
use agentopt::commands::{eval as eval_command, resume as resume_command, train as train_command};
use agentopt::llm::config::InlineList;
use agentopt::record::Status;

use crate::errors;
use crate::job::{Job, Ran};

/// The CLI's parse of `agentopt ARGV...`; a flag it refuses is an `InputError` with clap's message.
fn parse(py: Python<'_>, argv: Vec<String>) -> PyResult<Command> {
    let argv = std::iter::once("agentopt".to_string()).chain(argv);
    match Cli::try_parse_from(argv) {
        Ok(cli) => Ok(cli.command),
        Err(e) => Err(errors::input(py, e.render().to_string().trim().to_string())),
    }
}

/// A trained or resumed run as JSON (`train --json`'s line plus `status`); a job a KeyboardInterrupt
/// stopped raises `agentopt.Interrupted` naming the run to resume.
fn trained(py: Python<'_>, ran: Ran<anyhow::Result<train_command::Trained>>) -> PyResult<String> {
    let trained = ran.value.map_err(|e| errors::from_anyhow(py, e))?;
    let mut value = trained.to_json().map_err(|e| errors::from_anyhow(py, e))?;
    value["status"] = trained.finished.status.to_string().into();
    if ran.interrupted && trained.finished.status == Status::Stopped {
        let root = trained.run.root().display().to_string();
        let message = format!(
            "training stopped at a safe point; the run at `{root}` is resumable: agentopt.resume({root:?})"
        );
        return Err(errors::raise(py, "Interrupted", message, Some(root)));
    }
    Ok(value.to_string())
}

/// Parses `agentopt SUBCOMMAND ARGV...`, hands the in-memory config list to the command's flags, and
/// runs `execute` on the result as a job with progress and safe points (train, resume, eval).
fn command_job<T, F>(
    py: Python<'_>,
    subcommand: &str,
    (argv, config_json): (Vec<String>, Option<String>),
    (progress, live): (bool, bool),
    execute: impl FnOnce(Command, Hooks) -> F,
) -> PyResult<Ran<T>>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let mut command = parse(py, [vec![subcommand.to_string()], argv].concat())?;
    let inline = config_json.map(InlineList);
    match &mut command {
        Command::Train(args) => args.model.shared.config_inline = inline,
        Command::Eval(args) => args.model.shared.config_inline = inline,
        Command::Resume(args) => args.config_inline = inline,
        _ => unreachable!("only train, resume and eval run as jobs"),
    }
    let job = Job::new(progress, live);
    let future = execute(command, job.hooks());
    job.run(py, future)
}

#[pyfunction]
#[pyo3(signature = (argv, config_json = None, progress = true, live = false))]
pub fn train(
    py: Python<'_>,
    argv: Vec<String>,
    config_json: Option<String>,
    progress: bool,
    live: bool,
) -> PyResult<String> {
    let ran = command_job(py, "train", (argv, config_json), (progress, live), |command, hooks| async move {
        let Command::Train(args) = command else { unreachable!("parsed as `train`") };
        train_command::execute(args, &hooks).await
    })?;
    trained(py, ran)
}

#[pyfunction]
#[pyo3(signature = (argv, config_json = None, progress = true, live = false))]
pub fn resume(
    py: Python<'_>,
    argv: Vec<String>,
    config_json: Option<String>,
    progress: bool,
    live: bool,
) -> PyResult<String> {
    let ran =
        command_job(py, "resume", (argv, config_json), (progress, live), |command, hooks| async move {
            let Command::Resume(args) = command else { unreachable!("parsed as `resume`") };
            resume_command::execute(args, &hooks).await
        })?;
    trained(py, ran)
}

/// `eval --json`'s line plus `records` (every conversation, in problem order). An interrupted
/// evaluation raises `agentopt.Interrupted` (its partial score would read as a real one), and one the
/// CLI would exit 1 on raises `RunError`; one stopped at `max_usd` returns, `complete` false.
#[pyfunction]
#[pyo3(signature = (argv, config_json = None, progress = true, live = false))]
pub fn evaluate(
    py: Python<'_>,
    argv: Vec<String>,
    config_json: Option<String>,
    progress: bool,
    live: bool,
) -> PyResult<String> {
    let ran = command_job(py, "eval", (argv, config_json), (progress, live), |command, hooks| async move {
        let Command::Eval(args) = command else { unreachable!("parsed as `eval`") };
        eval_command::execute(args, &hooks).await
    })?;
    let evaluated = ran.value.map_err(|e| errors::from_anyhow(py, e))?;
    if ran.interrupted && !evaluated.complete() {
        let message = format!(
            "evaluation interrupted after {} of {} problems (those are kept in `out`, if given)",
            evaluated.records.len(),
            evaluated.problems
        );
        return Err(errors::raise(py, "Interrupted", message, None));
    }
    // Where the CLI exits 1: nothing could be scored, or problems were left out for no reason given.
    let score = &evaluated.score;
    if score.total > 0 && score.errored == score.total {
        let first = evaluated.records.iter().find_map(|r| r.errored().map(|why| (&r.id, why)));
        let example = first.map(|(id, why)| format!("; e.g. `{id}`: {why}")).unwrap_or_default();
        return Err(errors::run(py, format!("every problem errored: nothing could be scored{example}")));
    }
    if !evaluated.complete() && evaluated.interrupted.is_none() {
        return Err(errors::run(py, "some problems were not run"));
    }
    let mut value = evaluated.to_json();
    value["records"] =
        serde_json::to_value(&evaluated.records).map_err(|e| errors::run(py, e.to_string()))?;
    Ok(value.to_string())
}

/// Whether `given` equals `reference` by the answer checker, and which check decided it.
#[pyfunction]
pub fn grade(py: Python<'_>, given: String, reference: String) -> PyResult<(bool, String)> {
    let ran = Job::quick().run(py, async move {
        let grader = agentopt::grading::Grader::new(agentopt::exec::find_python());
        grader.check(&given, &reference).await
    })?;
    Ok((ran.value.equal, ran.value.decided_by.to_string()))
}
