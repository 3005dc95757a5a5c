//! `agentopt eval`: the success rate of a registry (a file, `functions/NAME`, a run's best, or
//! RUN@EPOCH) on a test set. With `--json` the last line is `{"correct","total","errored","rate",...}`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::train::{connect, model_options, sandbox};
use super::{Hooks, bad_input};
use crate::agent::{Agent, AgentConfig, ConversationRecord};
use crate::cli::EvalArgs;
use crate::dataset;
use crate::functions::Registry;
use crate::run_dir::{self, RunDir};
use crate::task::{TaskKind, TaskSpec};
use crate::trainer::meter::{Meter, Metered};
use crate::trainer::phase::{self, PhaseContext, Score};

pub async fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let json = args.model.json;
    if !args.compare.is_empty() {
        return super::compare::run(&args.compare, &args.model.runs_dir, json);
    }
    let evaluated = execute(args, &Hooks::cli()).await?;
    evaluated.print(json);
    Ok(evaluated.exit_code())
}

/// An evaluation's outcome: the score, every record in problem order, and whether it ran to the end.
pub struct Evaluated {
    pub score: Score,
    pub records: Vec<ConversationRecord>,
    /// Problems asked for (`records` is shorter when the evaluation stopped early).
    pub problems: usize,
    pub interrupted: Option<phase::Interruption>,
    pub registry_path: Option<std::path::PathBuf>,
    pub registry: Registry,
    pub usage: crate::llm::Usage,
}

impl Evaluated {
    pub fn complete(&self) -> bool {
        self.records.len() == self.problems
    }

    /// `--json`'s line.
    pub fn to_json(&self) -> serde_json::Value {
        let complete = self.complete();
        serde_json::json!({
            "correct": self.score.correct,
            "total": self.score.total,
            "errored": self.score.errored,
            "rate": self.score.rate,
            "complete": complete,
            "interrupted": self.interrupted.filter(|_| !complete),
            "registry": self.registry_path.as_ref().map(|p| p.display().to_string()),
            "functions": self.registry.names(),
            "usage": self.usage,
        })
    }

    fn print(&self, json: bool) {
        let (score, records) = (&self.score, &self.records);
        if json {
            println!("{}", self.to_json());
        } else {
            let source =
                self.registry_path.as_ref().map_or("(no functions)".to_string(), |p| p.display().to_string());
            println!("registry:  {source}");
            let ci = crate::stats::ci95_text(score.ci95, 3);
            println!(
                "score:     {:.3} ({}/{} correct, {} errored and not scored{ci})",
                score.rate,
                score.correct,
                score.total - score.errored,
                score.errored
            );
            if !self.complete() {
                println!(
                    "stopped:   {} of {} problems done ({})",
                    records.len(),
                    self.problems,
                    why_stopped(self.interrupted)
                );
            }
        }
        let errored: Vec<&ConversationRecord> = records.iter().filter(|r| r.errored().is_some()).collect();
        if let Some(first) = errored.first() {
            let reason = first.errored().unwrap_or_default();
            let (level, what) = if errored.len() == records.len() {
                ("error", "every problem errored: nothing could be scored".to_string())
            } else {
                ("note", format!("{} problem(s) errored and were not scored", errored.len()))
            };
            eprintln!("{level}: {what}; e.g. `{}`: {reason}", first.id);
        }
    }

    fn exit_code(&self) -> ExitCode {
        exit_code(&self.score, self.complete(), self.interrupted)
    }
}

/// `eval` without printing, with `hooks`' progress and cancel.
pub async fn execute(args: EvalArgs, hooks: &Hooks) -> anyhow::Result<Evaluated> {
    if args.model.concurrency == 0 {
        return Err(bad_input(anyhow::anyhow!("--concurrency must be at least 1")));
    }
    let spec = match (&args.functions, &args.run) {
        (Some(f), _) => Some(f.clone()),
        (None, Some(r)) if r.contains('@') => Some(r.clone()),
        (None, Some(r)) => Some(format!("{r}@best")),
        (None, None) => None,
    };
    let (registry, registry_path) = match &spec {
        Some(spec) => {
            let path = crate::inspect::resolve_registry(spec, &args.model.runs_dir).map_err(bad_input)?;
            (Registry::load(&path).map_err(bad_input)?, Some(path))
        }
        None => (Registry::default(), None),
    };
    let test = args.test.clone().ok_or_else(|| bad_input(anyhow::anyhow!("--test FILE is required")))?;
    let mut problems = dataset::filter_subjects(dataset::load(&test).map_err(bad_input)?, &args.subjects);
    if let Some(n) = args.test_size {
        problems.truncate(n);
    }
    if problems.is_empty() {
        let which =
            if args.subjects.is_empty() { String::new() } else { " of the subjects asked for".into() };
        return Err(bad_input(anyhow::anyhow!(
            "the test set `{}` holds no problems{which}: nothing to evaluate",
            test.display()
        )));
    }
    let task_spec = task_spec(&args)?;
    task_spec.check_problems(&problems).map_err(|e| bad_input(anyhow::anyhow!(e)))?;
    let model_opts = model_options(&args.model, args.model.config.clone(), args.model.model.clone());
    let model = connect(&model_opts)?;
    let mut private = super::train::private_paths(&model_opts, &args.model.runs_dir, [test.clone()]);
    private.extend(super::task::private_files(&task_spec));
    let meter = Arc::new(Meter::new(args.max_usd, Default::default()));
    // Probed while the first model calls go out; a failed probe ends the command as it would have
    // before them (the calls in flight are dropped).
    let (runner, probe) =
        sandbox(args.model.exec_timeout, args.model.unsafe_no_sandbox, args.model.concurrency, private)?;
    if let Some(path) = &registry_path {
        super::registry_check::check(&*runner, &registry, path).await?;
    }
    let judge = super::task::JudgeModel { options: model_opts.clone(), seed: Some(args.seed) };
    let task = super::task::build(&task_spec, &runner, judge)
        .await?
        .metered(|inner| Arc::new(Metered { inner, meter: meter.clone() }));
    let agent = Agent {
        model: Arc::new(Metered { inner: model, meter: meter.clone() }),
        runner,
        task: Arc::new(task),
        config: AgentConfig { seed: Some(args.seed), ..AgentConfig::default() },
    };
    let cancel = hooks.cancel("conversations in flight are dropped; those done are kept (and in --out)");
    let ctx = PhaseContext {
        agent: &agent,
        concurrency: args.model.concurrency,
        meter: meter.clone(),
        cancel: &cancel,
    };
    if let Some(out) = &args.out {
        // Proven writable now, before any model call; emptied only at the first record (below).
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(out)
            .with_context(|| format!("Failed to open --out `{}` for writing", out.display()))?;
    }
    let out = args.out.clone();
    let display = (hooks.progress)(problems.len(), "eval");
    // Records are appended as they complete, then rewritten in problem order. The file is emptied at
    // the first one, so a command that fails before any (a failed sandbox probe) leaves it as it was.
    let mut emptied = false;
    let conversations = phase::run(&ctx, &registry, &problems, Vec::new(), |r: &ConversationRecord| {
        display.conversation_done(r.outcome.verdict(), r.usage.usd);
        let Some(path) = &out else { return Ok(()) };
        if !std::mem::replace(&mut emptied, true) {
            crate::fsio::write_atomic(path, b"")
                .map_err(|source| run_dir::Error::Write { path: path.clone(), source })?;
        }
        run_dir::append_line(path, r)
    });
    let result = tokio::select! {
        failure = probe.failure() => return Err(failure.into()),
        result = conversations => result?,
    };
    display.finish();
    let interrupted = result.interrupted;
    let records: Vec<ConversationRecord> = result.slots.into_iter().flatten().collect();
    if let Some(path) = &args.out {
        run_dir::write_lines(path, &records)?;
    }
    let score = Score::of(&records);
    Ok(Evaluated {
        score,
        records,
        problems: problems.len(),
        interrupted,
        registry_path,
        registry,
        usage: meter.usage(),
    })
}

/// The task flags, or (with `--run`) the task the run was trained on, with any flag given replacing
/// its part (a different `--task` also drops the run's system message, opening and metric).
fn task_spec(args: &EvalArgs) -> anyhow::Result<TaskSpec> {
    let run_name = args.run.as_deref().map(|r| r.split_once('@').map_or(r, |(name, _)| name));
    let Some(name) = run_name else {
        return super::task::spec_from_flags(&args.task, TaskKind::Math);
    };
    let run = RunDir::open(&args.model.runs_dir, name).map_err(bad_input)?;
    let info: crate::record::RunInfo = run_dir::read_json(&run.run_json()).map_err(bad_input)?;
    let recorded = info.task;
    if !args.task.any() {
        return Ok(recorded);
    }
    let mut spec = super::task::spec_from_flags(&args.task, recorded.kind)?;
    if spec.kind == recorded.kind {
        if args.task.system.is_none() {
            spec.system = recorded.system;
        }
        if args.task.opening.is_none() {
            spec.opening = recorded.opening;
        }
        if args.task.metric.is_none() {
            spec.metric = recorded.metric;
            spec.metric_source = recorded.metric_source;
        }
    }
    Ok(spec)
}

fn why_stopped(interrupted: Option<phase::Interruption>) -> &'static str {
    match interrupted {
        Some(phase::Interruption::Budget) => "the --max-usd budget was reached",
        Some(phase::Interruption::Cancelled) => "interrupted",
        None => "some problems were not run",
    }
}

/// As `train`: 0 when done or stopped at the --max-usd budget (a stop asked for; the output says it
/// is partial), 130 when interrupted, 1 when nothing could be scored.
fn exit_code(score: &Score, complete: bool, interrupted: Option<phase::Interruption>) -> ExitCode {
    if score.total > 0 && score.errored == score.total {
        return ExitCode::from(1);
    }
    match (complete, interrupted) {
        (true, _) | (false, Some(phase::Interruption::Budget)) => ExitCode::SUCCESS,
        (false, Some(phase::Interruption::Cancelled)) => ExitCode::from(130),
        (false, None) => ExitCode::from(1),
    }
}
