//! `agentopt train`: resolve the flags into a run (data split, models, initial registry), create the
//! run directory, train, export, and print the outcome. Also the pieces `resume` and `eval` share.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::{Hooks, bad_input};
use crate::agent::warm::Warm;
use crate::agent::{AgentConfig, Runner};
use crate::cli::{ModelArgs, TrainArgs};
use crate::dataset::{self, Problem};
use crate::exec::{self, SandboxConfig};
use crate::functions::Registry;
use crate::llm::{self, CacheMode, ChatModel, ModelOptions};
use crate::optimizer::OptimizerConfig;
use crate::record::{DataSpec, FileRef, ModelsSpec, RunInfo, Select, Split, Status, TrainSettings};
use crate::run_dir::{self, RunDir};
use crate::task::{Task, TaskKind};
use crate::trainer::{Finished, Setup, Trainer};

/// The dataset used when none is given.
pub const DEFAULT_DATA: &str = "datasets/sample.jsonl";
/// Where exported registries go (the project's top-level folder).
const FUNCTIONS_DIR: &str = "functions";

pub async fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let json = args.model.json;
    let trained = execute(args, &Hooks::cli()).await?;
    Ok(print_outcome(&trained, json))
}

/// A run trained (or stopped): where it is, how it ended, and where its registry was exported.
pub struct Trained {
    pub run: RunDir,
    pub finished: Finished,
    pub exported: Option<PathBuf>,
}

impl Trained {
    /// `--json`'s line: the summary with `run_dir` and `exported` added.
    pub fn to_json(&self) -> anyhow::Result<serde_json::Value> {
        let mut value = serde_json::to_value(&self.finished.summary)?;
        value["run_dir"] = self.run.root().display().to_string().into();
        value["exported"] = serde_json::to_value(&self.exported)?;
        Ok(value)
    }
}

/// `train` without printing: creates the run and trains it, with `hooks`' progress and cancel.
pub async fn execute(args: TrainArgs, hooks: &Hooks) -> anyhow::Result<Trained> {
    if args.epochs == 0 || args.model.concurrency == 0 || args.actions_per_step == 0 || args.proposals == 0 {
        return Err(bad_input(anyhow::anyhow!(
            "--epochs, --concurrency, --actions-per-step and --proposals must be at least 1"
        )));
    }
    if let Some(name) = &args.export {
        check_export_name(name)?;
    }
    let data = data_spec(&args)?;
    let chosen = select_problems(&data).map_err(bad_input)?;
    super::selection::check(&data, &chosen)?;
    let select = match (args.select, chosen.val.is_empty()) {
        (Some(Select::Val), true) => {
            return Err(bad_input(anyhow::anyhow!(
                "--select val needs a validation split: give --val FILE or --val-size N"
            )));
        }
        (Some(select), _) => select,
        (None, true) => Select::Train,
        (None, false) => Select::Val,
    };
    let task_spec = super::task::spec_from_flags(&args.task, TaskKind::Math)?;
    task_spec.check_problems(chosen.all()).map_err(|e| bad_input(anyhow::anyhow!(e)))?;
    let (initial, initial_path) = match &args.functions {
        Some(spec) => {
            let path = crate::inspect::resolve_registry(spec, &args.model.runs_dir).map_err(bad_input)?;
            (Registry::load(&path).map_err(bad_input)?, Some(path))
        }
        None => (Registry::default(), None),
    };
    // Absolute, so that `resume` finds the same config and cache from any directory.
    let mut assistant_opts =
        model_options(&args.model, args.model.config.as_deref().map(absolute), args.model.model.clone());
    let config_inline = assistant_opts.inline.is_some();
    assistant_opts.cache_dir = absolute(&assistant_opts.cache_dir);
    let optimizer_opts = ModelOptions {
        model: args.optimizer_model.clone().or_else(|| args.model.model.clone()),
        ..assistant_opts.clone()
    };
    let assistant = connect(&assistant_opts)?;
    let optimizer = connect(&optimizer_opts)?;
    let models = ModelsSpec {
        config: assistant_opts.config.clone().filter(|_| !config_inline),
        config_inline,
        model: args.model.model.clone(),
        optimizer_model: args.optimizer_model.clone(),
        cache_seed: match assistant_opts.cache {
            CacheMode::Off => None,
            CacheMode::Seed(s) => Some(s),
        },
        cache_dir: assistant_opts.cache_dir.clone(),
        assistant: llm::describe(&assistant_opts).unwrap_or_default(),
        optimizer: llm::describe(&optimizer_opts).unwrap_or_default(),
    };
    // Everything that can refuse to start does so before the run directory exists.
    // Made now, not when the run starts, so the sandbox can mask it wherever it is.
    std::fs::create_dir_all(&args.model.runs_dir).with_context(|| {
        format!("Failed to create the runs directory `{}`", args.model.runs_dir.display())
    })?;
    let data_files = data.files().map(|f| f.path.clone());
    let mut private = private_paths(&assistant_opts, &args.model.runs_dir, data_files);
    private.extend(super::task::private_files(&task_spec));
    let (runner, probe) =
        sandbox(args.model.exec_timeout, args.model.unsafe_no_sandbox, args.model.concurrency, private)?;
    if let Some(path) = &initial_path {
        super::registry_check::check(&*runner, &initial, path).await?;
    }
    let judge = super::task::JudgeModel { options: assistant_opts.clone(), seed: Some(args.seed) };
    let task = super::task::build(&task_spec, &runner, judge).await?;
    probe.ready().await?;
    let name = args.run.clone().unwrap_or_else(run_dir::default_run_name);
    let run = RunDir::create(&args.model.runs_dir, &name).map_err(bad_input)?;
    let now = run_dir::now();
    let info = RunInfo {
        version: 1,
        format_version: crate::record::FORMAT_VERSION,
        name: name.clone(),
        status: Status::Running,
        created_at: now.clone(),
        updated_at: now,
        data,
        split: Split { train: ids(&chosen.train), test: ids(&chosen.test), val: ids(&chosen.val) },
        models,
        training: TrainSettings {
            epochs: args.epochs,
            patience: args.patience,
            concurrency: args.model.concurrency,
            max_usd: args.max_usd,
            no_eval: args.no_eval,
            export: args.export.clone(),
            exec_timeout: args.model.exec_timeout,
            unsafe_no_sandbox: args.model.unsafe_no_sandbox,
            initial_functions: args.functions.clone(),
            agent: AgentConfig { seed: Some(args.seed), ..AgentConfig::default() },
            optimizer: OptimizerConfig {
                actions_per_step: args.actions_per_step,
                seed: Some(args.seed),
                ..OptimizerConfig::default()
            },
            accept: args.accept,
            select,
            proposals: args.proposals,
        },
        task: task_spec,
    };
    // The initial registry first: run.json is what makes the directory a (resumable) run.
    initial.save(&run.epoch_registry(0))?;
    run_dir::write_json(&run.run_json(), &info)?;
    let models = Models { assistant, optimizer, runner, task };
    launch(run, info, chosen, models, hooks).await
}

/// What a run talks to: the two models, the sandbox, and the task (its metric).
pub(super) struct Models {
    pub assistant: Arc<dyn ChatModel>,
    pub optimizer: Arc<dyn ChatModel>,
    pub runner: Arc<dyn Runner>,
    pub task: Task,
}

/// Starts (or continues) training a prepared run with `hooks`' cancel and progress, then exports
/// (shared with `resume`).
pub(super) async fn launch(
    run: RunDir,
    info: RunInfo,
    Chosen { train, val, test }: Chosen,
    models: Models,
    hooks: &Hooks,
) -> anyhow::Result<Trained> {
    let cancel = hooks.cancel("state saved; conversations in flight run again on `agentopt resume`");
    let setup = Setup {
        run,
        info,
        train,
        val,
        test,
        assistant: models.assistant,
        optimizer: models.optimizer,
        runner: models.runner,
        task: models.task,
        cancel,
        progress: Arc::new((hooks.progress)(0, "train")),
    };
    let export = setup.info.training.export.clone();
    let mut trainer = Trainer::new(setup)?;
    for warning in &trainer.warnings {
        eprintln!("warning: {warning}");
    }
    let run = trainer.run_dir().clone();
    let root = run.root().to_path_buf();
    let finished = trainer
        .run()
        .await
        .with_context(|| format!("Training failed; the run at `{}` can be resumed", root.display()))?;
    let mut exported = None;
    if let (Status::Completed, Some(name)) = (finished.status, export.as_deref()) {
        exported = Some(export_registry(&run, name)?);
    }
    Ok(Trained { run, finished, exported })
}

/// Prints the outcome (human or `--json`) and picks the exit code (shared with `resume`).
pub(super) fn print_outcome(trained: &Trained, json: bool) -> ExitCode {
    let finished = &trained.finished;
    match trained.to_json() {
        Ok(value) if json => println!("{value}"),
        _ => {
            let info = run_dir::read_json::<RunInfo>(&trained.run.run_json());
            let on_val = info.is_ok_and(|i| i.training.select == Select::Val);
            print_human(trained.run.root(), finished, trained.exported.as_deref(), on_val)
        }
    }
    match finished.status {
        Status::Completed | Status::Budget => ExitCode::SUCCESS,
        Status::Stopped => ExitCode::from(130),
        Status::Running | Status::Failed => ExitCode::from(1),
    }
}

/// `--export NAME` must make a file name under functions/.
fn check_export_name(name: &str) -> anyhow::Result<&str> {
    let name = name.strip_suffix(".json").unwrap_or(name);
    if !crate::functions::is_identifier(&name.replace('-', "_")) {
        return Err(bad_input(anyhow::anyhow!("--export `{name}`: use letters, digits, `_` and `-`")));
    }
    Ok(name)
}

/// Copies the learned registry to `functions/NAME.json`.
fn export_registry(run: &RunDir, name: &str) -> anyhow::Result<PathBuf> {
    let name = check_export_name(name)?;
    let registry = Registry::load(&run.best_registry())?;
    let path = Path::new(FUNCTIONS_DIR).join(format!("{name}.json"));
    registry.save(&path)?;
    Ok(path)
}

fn print_human(root: &Path, f: &Finished, exported: Option<&Path>, selected_on_val: bool) {
    let s = &f.summary;
    println!("run:        {}", root.display());
    let status = match f.status {
        Status::Completed => "completed".to_string(),
        Status::Budget => format!("stopped at the budget; continue with `agentopt resume {}`", s.run),
        Status::Stopped => format!("stopped (interrupted); continue with `agentopt resume {}`", s.run),
        other => other.to_string(),
    };
    println!("status:     {status}");
    let stop = if s.stopped_early { " (stopped early: no improvement)" } else { "" };
    println!("epochs:     {}{stop}", s.epochs_run);
    for h in &s.history {
        let decision = h.decision.to_string();
        // When errored problems left some out, say what the decision actually compared.
        let compared = match h.versus_best {
            Some(p) if p.problems < h.total => format!(
                "  (on the {} problems both scored: {} vs the best's {})",
                p.problems, p.trial_correct, p.best_correct
            ),
            _ => String::new(),
        };
        let ci = h.ci95.map_or(String::new(), |[lo, hi]| format!(" 95% CI {lo:.2}–{hi:.2}"));
        let p = h.p_value.map_or(String::new(), |p| format!("  (sign test p = {p:.3})"));
        let val = h.val.map_or(String::new(), |v| {
            format!("  val {:.3} ({}/{})", v.rate, v.correct, v.total - v.errored)
        });
        println!(
            "  epoch {:>3}  {:.3} ({}/{}{}){ci}{val}  {decision:<8}  [{}]{compared}{p}",
            h.epoch,
            h.score,
            h.correct,
            h.total - h.errored,
            if h.errored > 0 { format!(", {} errored", h.errored) } else { String::new() },
            h.functions.join(", ")
        );
    }
    if let Some(best) = s.best_epoch {
        let split = if selected_on_val { "val" } else { "train" };
        println!("best epoch: {best} ({split} {:.3})", s.best_score.unwrap_or(0.0));
    }
    let fmt = |x: &Option<crate::record::Score>| match x {
        Some(x) => {
            let ci = crate::stats::ci95_text(x.ci95, 2);
            format!("{:.3} ({}/{}, {} errored{ci})", x.rate, x.correct, x.total - x.errored, x.errored)
        }
        None => "-".into(),
    };
    if s.eval.before.is_some() || s.eval.after.is_some() {
        println!("test:       {} -> {}", fmt(&s.eval.before), fmt(&s.eval.after));
    }
    let functions = if s.functions.is_empty() { "(none)".to_string() } else { s.functions.join(", ") };
    println!("functions:  {functions}");
    println!(
        "usage:      {} calls, {} input + {} output tokens, ${:.4}",
        s.usage.calls, s.usage.input_tokens, s.usage.output_tokens, s.usage.usd
    );
    if let Some(p) = exported {
        println!("exported:   {}", p.display());
    }
}

fn ids(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(|p| p.id.clone()).collect()
}

/// A data file by absolute path (so `resume` works from any directory) with its hash.
fn file_ref(path: &Path) -> anyhow::Result<FileRef> {
    let sha256 =
        dataset::file_sha256(path).with_context(|| format!("Failed to read `{}`", path.display()))?;
    Ok(FileRef { path: absolute(path), sha256 })
}

/// `path` made absolute against the working directory (unchanged if that fails).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn data_spec(args: &TrainArgs) -> anyhow::Result<DataSpec> {
    let data = match (&args.data, &args.train) {
        (Some(d), _) => Some(d.clone()),
        (None, None) => Some(PathBuf::from(DEFAULT_DATA)),
        (None, Some(_)) => None,
    };
    let opt = |p: &Option<PathBuf>| p.as_deref().map(file_ref).transpose().map_err(bad_input);
    Ok(DataSpec {
        data: opt(&data)?,
        train: opt(&args.train)?,
        test: opt(&args.test)?,
        train_size: args.train_size,
        test_size: args.test_size,
        val: opt(&args.val)?,
        val_size: args.val_size,
        subjects: args.subjects.clone(),
        seed: args.seed,
        allow_overlap: args.allow_overlap,
    })
}

/// The problems a run uses, by split.
pub(super) struct Chosen {
    pub train: Vec<Problem>,
    /// Empty without a validation split.
    pub val: Vec<Problem>,
    pub test: Vec<Problem>,
}

impl Chosen {
    pub fn all(&self) -> impl Iterator<Item = &Problem> {
        self.train.iter().chain(&self.val).chain(&self.test)
    }
}

/// Chooses the train, validation and test problems from a data spec (deterministic, so `resume`
/// chooses the same). One dataset is split with the seed (test first, then validation, then
/// training); explicit files are used in file order, cut to the sizes.
pub(super) fn select_problems(spec: &DataSpec) -> anyhow::Result<Chosen> {
    let (train, val, test) = select_splits(spec)?;
    Ok(Chosen { train, val, test })
}

fn select_splits(spec: &DataSpec) -> anyhow::Result<(Vec<Problem>, Vec<Problem>, Vec<Problem>)> {
    let load = |f: &FileRef| -> anyhow::Result<Vec<Problem>> {
        Ok(dataset::filter_subjects(dataset::load(&f.path)?, &spec.subjects))
    };
    let cut = |mut v: Vec<Problem>, n: Option<usize>| {
        if let Some(n) = n {
            v.truncate(n);
        }
        v
    };
    let val_file = spec.val.as_ref().map(|f| load(f).map(|v| cut(v, spec.val_size))).transpose()?;
    let splitting = spec.train.is_none() && spec.test.is_none() && spec.data.is_some();
    if val_file.is_none() && spec.val_size.is_some() && !splitting {
        bail!("--val-size draws the validation split from DATA; with --train or --test give --val FILE");
    }
    let (train, drawn, test) = match (&spec.train, &spec.test, &spec.data) {
        (None, None, Some(data)) => {
            let drawn_size = if val_file.is_some() { None } else { spec.val_size };
            dataset::split_with_val(load(data)?, spec.train_size, drawn_size, spec.test_size, spec.seed)
        }
        (Some(train), test, data) => {
            let test = match (test, data) {
                (Some(t), _) | (None, Some(t)) => cut(load(t)?, spec.test_size),
                (None, None) => Vec::new(),
            };
            (cut(load(train)?, spec.train_size), Vec::new(), test)
        }
        (None, Some(test), Some(data)) => {
            (cut(load(data)?, spec.train_size), Vec::new(), cut(load(test)?, spec.test_size))
        }
        (None, _, None) => bail!("no training data: give DATA or --train"),
    };
    Ok((train, val_file.unwrap_or(drawn), test))
}

/// The model options a command's flags ask for.
pub(super) fn model_options(
    args: &ModelArgs,
    config: Option<PathBuf>,
    model: Option<String>,
) -> ModelOptions {
    ModelOptions {
        config,
        model,
        cache: CacheMode::from_flags(args.no_cache, args.cache_seed),
        cache_dir: ModelOptions::default().cache_dir,
        inline: args.config_inline.clone(),
    }
}

/// Connects to the models; a configuration problem is bad input (exit 2). Says so, once per process,
/// when the model is the embedded default: its results are not what a capable model would get.
pub fn connect(options: &ModelOptions) -> anyhow::Result<Arc<dyn ChatModel>> {
    let config_error = |e: llm::Error| match e {
        llm::Error::Config(_) => bad_input(e),
        e => anyhow::Error::from(e),
    };
    let (_, entries) = llm::connect::selected(options).map_err(config_error)?;
    let model =
        llm::connect::build(&entries, options, llm::retry::RetryPolicy::default()).map_err(config_error)?;
    if entries.iter().any(|e| e.api_type == llm::config::ApiType::Local && e.model_path.is_none()) {
        static NOTED: std::sync::Once = std::sync::Once::new();
        NOTED.call_once(|| {
            crate::progress::note(&format!(
                "note: model: the embedded offline default ({}, gemma-3-270m, a tiny base model run \
                 on the CPU). Expect low accuracy: this shows the whole loop running offline, not what \
                 a capable model learns. Give a model list with --config (or OAI_CONFIG_LIST) for that.",
                entries[0].model
            ))
        });
    }
    Ok(model)
}

/// What code must never see (`SandboxConfig::private`): the config list in use, the cache, the runs
/// and the `data` files (they hold the reference answers).
pub fn private_paths(
    opts: &ModelOptions,
    runs_dir: &Path,
    data: impl IntoIterator<Item = PathBuf>,
) -> Vec<PathBuf> {
    let mut private: Vec<PathBuf> = llm::config::list_file(opts).into_iter().collect();
    private.extend([opts.cache_dir.clone(), runs_dir.to_path_buf()]);
    private.extend(data);
    private
}

/// The sandbox (probed, then its fork server started, in the background: see `exec::Deferred`)
/// behind a warm pool sized for `concurrency` (`agent::warm`: a conversation's first code block does
/// not wait for a worker), with `private` paths hidden from code; and the probe, for a command to
/// wait on or race its work against.
pub fn sandbox(
    exec_timeout: f64,
    allow_unsandboxed: bool,
    concurrency: usize,
    private: Vec<PathBuf>,
) -> anyhow::Result<(Arc<dyn Runner>, exec::Deferred)> {
    if !(exec_timeout.is_finite() && exec_timeout > 0.0) {
        return Err(bad_input(anyhow::anyhow!("--exec-timeout must be a positive number of seconds")));
    }
    let config = SandboxConfig {
        timeout: std::time::Duration::from_secs_f64(exec_timeout),
        allow_unsandboxed,
        // As many forked ahead as may be asked for at once.
        spare_sessions: concurrency,
        private,
        ..SandboxConfig::default()
    };
    let probe = exec::Deferred::start(config);
    let sandbox: Arc<dyn Runner> = Arc::new(probe.clone());
    Ok((Arc::new(Warm::new(sandbox, Warm::size_for(concurrency))), probe))
}
