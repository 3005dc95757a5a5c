//! `agentopt resume RUN`: continue an interrupted run (Ctrl-C, budget, kill -9, error) where it
//! stopped. Problems are chosen again from the recorded data spec and checked against the recorded
//! hashes and split; completed conversations are read back from the run directory, not re-run.

use std::process::ExitCode;

use anyhow::Context;

use super::train::{
    Models, Trained, connect, launch, print_outcome, private_paths, sandbox, select_problems,
};
use super::{Hooks, bad_input};
use crate::cli::ResumeArgs;
use crate::dataset;
use crate::llm::{CacheMode, ModelOptions};
use crate::record::{RunInfo, Status};
use crate::run_dir::{self, RunDir};
use crate::trainer::Finished;

pub async fn run(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let trained = execute(args, &Hooks::cli()).await?;
    Ok(print_outcome(&trained, json))
}

/// `resume` without printing, with `hooks`' progress and cancel.
pub async fn execute(args: ResumeArgs, hooks: &Hooks) -> anyhow::Result<Trained> {
    let run = RunDir::open(&args.runs_dir, &args.run).map_err(bad_input)?;
    let mut info: RunInfo = run_dir::read_json(&run.run_json()).map_err(bad_input)?;
    if info.status == Status::Completed {
        crate::progress::note(&format!("run `{}` is already complete", run.name()));
        let summary = run_dir::read_json(&run.summary())?;
        return Ok(Trained {
            run,
            finished: Finished { status: Status::Completed, summary },
            exported: None,
        });
    }
    for file in info.data.files() {
        let now = dataset::file_sha256(&file.path)
            .with_context(|| format!("Failed to read the run's dataset `{}`", file.path.display()))
            .map_err(bad_input)?;
        if now != file.sha256 {
            return Err(bad_input(anyhow::anyhow!(
                "dataset `{}` changed since the run started (sha256 {} != recorded {})",
                file.path.display(),
                now,
                file.sha256
            )));
        }
    }
    let chosen = select_problems(&info.data).map_err(bad_input)?;
    let same = |problems: &[dataset::Problem], ids: &[String]| problems.iter().map(|p| &p.id).eq(ids.iter());
    if !same(&chosen.train, &info.split.train)
        || !same(&chosen.test, &info.split.test)
        || !same(&chosen.val, &info.split.val)
    {
        return Err(bad_input(anyhow::anyhow!("the recorded split no longer matches the dataset")));
    }
    if let Some(config) = args.config {
        info.models.config = Some(config);
        info.models.config_inline = false;
    } else if info.models.config_inline && args.config_inline.is_none() {
        // Falling back to another list (or the embedded model) would silently change the model.
        return Err(bad_input(anyhow::anyhow!(
            "run `{}` was started with a config list given in memory (Python `config=[...]`), which is \
             never saved: give it again (`config=` in Python, or `--config FILE`)",
            run.name()
        )));
    }
    if args.config_inline.is_some() {
        info.models.config = None;
        info.models.config_inline = true;
    }
    if args.max_usd.is_some() {
        info.training.max_usd = args.max_usd;
    }
    let base = ModelOptions {
        config: info.models.config.clone(),
        model: info.models.model.clone(),
        cache: info.models.cache_seed.map_or(CacheMode::Off, CacheMode::Seed),
        cache_dir: info.models.cache_dir.clone(),
        inline: args.config_inline.clone(),
    };
    let optimizer_opts = ModelOptions {
        model: info.models.optimizer_model.clone().or_else(|| info.models.model.clone()),
        ..base.clone()
    };
    let assistant = connect(&base)?;
    let optimizer = connect(&optimizer_opts)?;
    let mut private = private_paths(&base, &args.runs_dir, info.data.files().map(|f| f.path.clone()));
    private.extend(super::task::private_files(&info.task));
    let (runner, probe) = sandbox(
        info.training.exec_timeout,
        info.training.unsafe_no_sandbox || args.unsafe_no_sandbox,
        info.training.concurrency,
        private,
    )?;
    probe.ready().await?;
    let judge = super::task::JudgeModel { options: base.clone(), seed: info.training.agent.seed };
    let task = super::task::build(&info.task, &runner, judge).await?;
    launch(run, info, chosen, Models { assistant, optimizer, runner, task }, hooks).await
}
