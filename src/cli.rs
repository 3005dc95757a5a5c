//! Command-line flags (clap). These structs mirror SPEC §2 and hold no logic: commands resolve them
//! into their own configuration once. Every flag, argument and subcommand has a description (a doc
//! comment) and shows its default; tests/help.rs checks both on the real `--help` output.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "agentopt", version, about = "Train LLM agents by learning their function list")]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a function registry on a dataset.
    Train(TrainArgs),
    /// Continue a stopped run (Ctrl-C, --max-usd, an error, kill -9) where it stopped.
    Resume(ResumeArgs),
    /// Measure the success rate of a registry on a test set.
    Eval(EvalArgs),
    /// Inspect, compare, export and import function registries.
    Functions(FunctionsArgs),
    /// List and inspect past runs.
    Runs(RunsArgs),
    /// Check whether a given answer equals a reference answer.
    Grade(GradeArgs),
    /// One interactive assistant/proxy conversation, with a human in the loop.
    Chat(ChatArgs),
    /// Run the repository benchmark and print its figures.
    Bench(BenchArgs),
    /// A price negotiation between two models, each thinking privately (the workshop's persuasion
    /// benchmark); `duel report` compares saved duels.
    Duel(DuelArgs),
}

/// Flags shared by every command that talks to a model or runs code; they mean the same everywhere.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model list (AutoGen OAI_CONFIG_LIST format); default: env OAI_CONFIG_LIST, then ./OAI_CONFIG_LIST,
    /// then the embedded local model.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Assistant model: config entries with this exact name, tried in order (default: the first entry).
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// Wall-clock limit per code execution, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub exec_timeout: f64,
    /// Do not read or write the reply cache.
    #[arg(long, conflicts_with = "cache_seed")]
    pub no_cache: bool,
    /// Cache namespace (AutoGen's cache_seed; default: 41).
    #[arg(long, value_name = "N")]
    pub cache_seed: Option<u64>,
    /// Where runs live.
    #[arg(long, default_value = "runs", value_name = "DIR")]
    pub runs_dir: PathBuf,
    /// Run generated code without isolation when bubblewrap is unavailable (dangerous).
    #[arg(long)]
    pub unsafe_no_sandbox: bool,
    /// Print machine-readable JSON instead of human output.
    #[arg(long)]
    pub json: bool,
    /// A config list given in memory (the Python package's `config=[...]`); never a flag, so keys
    /// never sit on a command line.
    #[arg(skip)]
    pub config_inline: Option<crate::llm::config::InlineList>,
}

/// `ModelArgs` and `--concurrency`, for the commands that run many conversations at once (`train`,
/// `eval`). `chat` runs one conversation, so it takes `ModelArgs` alone and offers no `--concurrency`.
#[derive(Debug, Clone, Args)]
pub struct BatchModelArgs {
    #[command(flatten)]
    pub shared: ModelArgs,
    /// Conversations run at once (halved while the provider answers 429, grown back after).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
}

// So `args.model.exec_timeout` reads the same in every command, whether its flags are `ModelArgs` or
// `BatchModelArgs`, and `&args.model` goes wherever a `&ModelArgs` is taken.
impl std::ops::Deref for BatchModelArgs {
    type Target = ModelArgs;

    fn deref(&self) -> &ModelArgs {
        &self.shared
    }
}

/// What the assistant is asked to do and how its answers are scored (`task`); the same for `train`,
/// `eval` and `chat`, recorded in run.json for `resume` and `eval --run`.
#[derive(Debug, Clone, Default, Args)]
pub struct TaskArgs {
    /// The conversation: `math` (MathChat prompt, the final \boxed{} is the answer) or `general`
    /// (an AssistantAgent-style assistant that ends with TERMINATE) [default: math; chat: general;
    /// eval --run: the run's]
    #[arg(long = "task", value_enum, value_name = "KIND")]
    pub kind: Option<crate::task::TaskKind>,
    /// Replace the assistant's system message with this file's text.
    #[arg(long, value_name = "FILE")]
    pub system: Option<PathBuf>,
    /// Template of the first proxy message: {problem} and any dataset field by name ({table})
    /// are filled in; {{ and }} write literal braces [default: the task's opening]
    #[arg(long, value_name = "FILE")]
    pub opening: Option<PathBuf>,
    /// How an answer is scored: math, exact, normalized, contains, numeric[:TOL], choice,
    /// python:FILE.py:FUNCTION or judge:MODEL [default: math for --task math, normalized for general]
    #[arg(long, value_name = "NAME")]
    pub metric: Option<String>,
}

impl TaskArgs {
    /// Whether any task flag was given.
    pub fn any(&self) -> bool {
        self.kind.is_some() || self.system.is_some() || self.opening.is_some() || self.metric.is_some()
    }
}

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// A dataset to split into train and test (default: datasets/sample.jsonl).
    pub data: Option<PathBuf>,
    /// Explicit training file (used in file order; DATA, if also given, is then the test file).
    #[arg(long, value_name = "FILE")]
    pub train: Option<PathBuf>,
    /// Explicit test file (used in file order).
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,
    /// Training problems to use (default: all of DATA not drawn for the test set; with --train, the
    /// first N of the file).
    #[arg(long, value_name = "N")]
    pub train_size: Option<usize>,
    /// Test problems to use (default: 20% of DATA, drawn first; with --test, the first N of the file).
    #[arg(long, value_name = "N")]
    pub test_size: Option<usize>,
    /// Explicit validation file (used in file order): each epoch's registry is also scored on it, and
    /// (with `--select val`, the default then) that score decides the epoch; the optimizer never sees it.
    #[arg(long, value_name = "FILE")]
    pub val: Option<PathBuf>,
    /// Validation problems: drawn from DATA after the test set (before the training set), or the first
    /// N of --val.
    #[arg(long, value_name = "N")]
    pub val_size: Option<usize>,
    /// Which split's score decides each epoch [default: val with a validation split, else train]
    #[arg(long, value_enum, value_name = "SPLIT")]
    pub select: Option<crate::record::Select>,
    /// Keep only problems of this subject (repeatable; MATH's `subject` or `type` field).
    #[arg(long = "subject", value_name = "S")]
    pub subjects: Vec<String>,
    /// Train even though training and test problems overlap (same id or same text); refused by
    /// default, since scores on a test set the functions were trained on mean nothing.
    #[arg(long)]
    pub allow_overlap: bool,
    /// Evaluations of the training set: epoch 0 scores the initial registry and each later epoch
    /// follows one optimizer step, so N epochs make N evaluations and N−1 optimizer steps.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub epochs: usize,
    /// Most add/revise/remove actions the optimizer takes in one step (invalid attempts count).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub actions_per_step: usize,
    /// Stop early after this many epochs in a row without a strict improvement (rolled back).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub patience: usize,
    /// What a trial must show to be kept: `strict` (any strict improvement on the problems both
    /// scored) or `significant[:ALPHA]` (also an exact one-sided sign test on the paired outcomes at
    /// ALPHA, default 0.05).
    #[arg(long, default_value = "strict", value_name = "RULE", value_parser = crate::trainer::rule::Accept::parse)]
    pub accept: crate::trainer::rule::Accept,
    /// Optimizer proposals per step: K independent proposals (their own seeds, sampled), each scored
    /// on the training split; the best becomes the epoch's trial, the others are rejected candidates.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub proposals: usize,
    /// Seed of the train/test split of DATA and of the model's `seed` request parameter.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Optimizer model (default: the assistant model).
    #[arg(long, value_name = "M")]
    pub optimizer_model: Option<String>,
    /// Initial registry: a file (agentopt's, an autogen export or an AG2 function list), functions/NAME,
    /// a run, or RUN@EPOCH (default: no functions).
    #[arg(long, value_name = "REGISTRY")]
    pub functions: Option<String>,
    /// Run name (default: a timestamp).
    #[arg(long, value_name = "NAME")]
    pub run: Option<String>,
    /// Skip the before/after evaluation on the test split.
    #[arg(long)]
    pub no_eval: bool,
    /// Stop cleanly (resumable) before spending more than this (default: no limit).
    #[arg(long, value_name = "USD")]
    pub max_usd: Option<f64>,
    /// Also write the learned registry to functions/NAME.json.
    #[arg(long, value_name = "NAME")]
    pub export: Option<String>,
    #[command(flatten)]
    pub task: TaskArgs,
    #[command(flatten)]
    pub model: BatchModelArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ResumeArgs {
    /// The run to continue (a name under --runs-dir, or a path).
    pub run: String,
    /// Where runs live.
    #[arg(long, default_value = "runs", value_name = "DIR")]
    pub runs_dir: PathBuf,
    /// Model list to use from now on (default: the one the run started with).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A new spending limit for the rest of the run (default: the one it started with).
    #[arg(long, value_name = "USD")]
    pub max_usd: Option<f64>,
    /// Run generated code without isolation when bubblewrap is unavailable (dangerous).
    #[arg(long)]
    pub unsafe_no_sandbox: bool,
    /// Print machine-readable JSON instead of human output.
    #[arg(long)]
    pub json: bool,
    /// A config list given in memory (the Python package), as `ModelArgs::config_inline`.
    #[arg(skip)]
    pub config_inline: Option<crate::llm::config::InlineList>,
}

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// The problems to score (JSON lines, as for `train`).
    #[arg(long, value_name = "FILE", required_unless_present = "compare")]
    pub test: Option<PathBuf>,
    /// Compare two evaluations problem by problem instead of running one: record files (`--out`, a
    /// run's eval/*.jsonl) or runs (RUN is its evaluation after training; RUN@before, RUN@after, RUN@N
    /// for epoch N); prints what B fixed and broke and the sign test.
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with_all = ["test", "functions", "run"])]
    pub compare: Vec<String>,
    /// Registry to evaluate: a file (agentopt's, an autogen export or an AG2 function list) or
    /// functions/NAME (default, without --run: no functions).
    #[arg(long, value_name = "REGISTRY", conflicts_with = "run")]
    pub functions: Option<String>,
    /// A run's learned registry: RUN, RUN@EPOCH or RUN@best.
    #[arg(long, value_name = "RUN[@EPOCH]")]
    pub run: Option<String>,
    /// Score only the first N problems of the file (after --subject).
    #[arg(long, value_name = "N")]
    pub test_size: Option<usize>,
    /// Keep only problems of this subject (repeatable).
    #[arg(long = "subject", value_name = "S")]
    pub subjects: Vec<String>,
    /// The model's `seed` request parameter.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Write every conversation record here (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Stop before spending more than this (default: no limit).
    #[arg(long, value_name = "USD")]
    pub max_usd: Option<f64>,
    #[command(flatten)]
    pub task: TaskArgs,
    #[command(flatten)]
    pub model: BatchModelArgs,
}

#[derive(Debug, Clone, Args)]
pub struct FunctionsArgs {
    #[command(subcommand)]
    pub action: FunctionsAction,
    /// Where runs live (for RUN and RUN@EPOCH references).
    #[arg(long, default_value = "runs", value_name = "DIR", global = true)]
    pub runs_dir: PathBuf,
    /// Print machine-readable JSON instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What a REGISTRY argument may be, for every `functions` subcommand.
const REGISTRY_HELP: &str = "A registry file (agentopt's, an autogen export or an AG2 function list), \
    functions/NAME, a run (its best registry), RUN@EPOCH or RUN@best";

#[derive(Debug, Clone, Subcommand)]
pub enum FunctionsAction {
    /// Names, signatures and descriptions.
    List {
        #[arg(help = REGISTRY_HELP)]
        registry: String,
    },
    /// One function's description, parameters, packages and code.
    Show {
        #[arg(help = REGISTRY_HELP)]
        registry: String,
        /// The function to show.
        name: String,
    },
    /// What changed between two registries.
    Diff {
        /// The registry before (any REGISTRY reference, as for `list`).
        a: String,
        /// The registry after.
        b: String,
    },
    /// Write a registry for use elsewhere.
    Export {
        #[arg(help = REGISTRY_HELP)]
        registry: String,
        /// What to write.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// Output file (default: stdout).
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Convert an AG2 function list or autogen export into agentopt's registry format.
    ///
    /// Reads any format --functions takes (agentopt's registry, `functions export --format autogen`,
    /// AG2 AgentOptimizer's list of {name, description, arguments, packages, code} records), checks
    /// every function as loading does, and writes agentopt's registry.
    Import {
        /// The file to convert (or any REGISTRY reference, as for `list`).
        #[arg(value_name = "FILE")]
        source: String,
        /// Output file (default: stdout).
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// agentopt's registry format (what --functions reads).
    Json,
    /// AG2: `register_for_llm`, OpenAI `tools` and AgentOptimizer function records.
    Autogen,
    /// An importable Python module.
    Python,
}

#[derive(Debug, Clone, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub action: RunsAction,
    /// Where runs live.
    #[arg(long, default_value = "runs", value_name = "DIR", global = true)]
    pub runs_dir: PathBuf,
    /// Print machine-readable JSON instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum RunsAction {
    /// Every run: status, epochs, best score, test score before and after.
    List,
    /// One run: every epoch's score and decision, the evaluations, usage and the learned functions.
    Show {
        /// The run (a name under --runs-dir, or a path).
        run: String,
    },
    /// Write a self-contained HTML report of a run.
    Report {
        /// The run (a name under --runs-dir, or a path).
        run: String,
        /// Output file, or a directory to write RUN.html in (default: the run's report.html).
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct GradeArgs {
    /// The answer to check (a bare answer or a whole response with \boxed{}).
    #[arg(required_unless_present = "cases")]
    pub given: Option<String>,
    /// The reference answer.
    #[arg(required_unless_present = "cases")]
    pub reference: Option<String>,
    /// JSON lines of {"given", "reference"}; prints each back with "equal".
    #[arg(long, value_name = "FILE", conflicts_with_all = ["given", "reference"])]
    pub cases: Option<PathBuf>,
    /// Print machine-readable JSON instead of human output.
    #[arg(long)]
    pub json: bool,
}

/// AG2's `human_input_mode`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HumanInput {
    /// Asked before every proxy reply.
    Always,
    /// Asked only when the conversation would end.
    Terminate,
    /// Never asked: the proxy runs alone.
    Never,
}

#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// What to ask the assistant.
    #[arg(value_name = "TASK")]
    pub prompt: String,
    /// When the human is asked to reply in the proxy's place.
    #[arg(long, value_enum, default_value_t = HumanInput::Always)]
    pub human_input: HumanInput,
    /// Most assistant turns.
    #[arg(long, default_value_t = 15, value_name = "N")]
    pub max_turns: usize,
    /// Functions to offer the assistant (any REGISTRY reference, as for `train`; default: none).
    #[arg(long, value_name = "REGISTRY")]
    pub functions: Option<String>,
    /// Use the math-proxy prompt and grade the final box (the same as --task math).
    #[arg(long, conflicts_with = "kind")]
    pub math: bool,
    /// Reference answer to score the final answer against, by --metric (without --task, implies
    /// --task math).
    #[arg(long, value_name = "X")]
    pub answer: Option<String>,
    #[command(flatten)]
    pub task: TaskArgs,
    /// Where to save the conversation record (default: RUNS_DIR/chat/<time>.json).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Offer the assistant a `call` tool that hands a task to a fresh copy of itself (same model and
    /// functions, its own sandbox session); delegated turns count against --max-turns.
    #[arg(long)]
    pub delegate: bool,
    /// How deep delegated conversations may nest.
    #[arg(long, default_value_t = 2, value_name = "N", requires = "delegate")]
    pub max_depth: usize,
    /// Print the assistant's replies as they are generated.
    #[arg(long)]
    pub stream: bool,
    /// Stop once this much has been spent, in USD (the chat ends as errored, and is saved).
    #[arg(long, value_name = "USD")]
    pub max_usd: Option<f64>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DuelArgs {
    #[command(subcommand)]
    pub action: Option<DuelAction>,
    /// Scenario file (TOML: the two sides' names and system prompts, who opens and with what, the stop
    /// condition) [default: the workshop's table sale]
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// The vendor's model: config entries with this exact name, tried in order [default: the first
    /// entry]
    #[arg(long, value_name = "M")]
    pub vendor_model: Option<String>,
    /// The buyer's model, chosen as --vendor-model is [default: the first entry]
    #[arg(long, value_name = "M")]
    pub buyer_model: Option<String>,
    /// Independent negotiations (each with its own seed), run concurrently.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub rounds: usize,
    /// Turns each side gets before a round ends without a deal [default: the scenario's, else 4]
    #[arg(long, value_name = "N")]
    pub max_turns: Option<usize>,
    /// Negotiations run at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    /// Round r samples with seed SEED + r - 1: rounds differ, and a rerun replays them from the cache.
    #[arg(long, default_value_t = 0, value_name = "SEED")]
    pub seed: u64,
    /// Stop once this much has been spent, in USD (rounds cut short are reported as errored).
    #[arg(long, value_name = "USD")]
    pub max_usd: Option<f64>,
    /// Where to save the duel (default: RUNS_DIR/duel/<time>/).
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// Model list (AutoGen OAI_CONFIG_LIST format); default: env OAI_CONFIG_LIST, then ./OAI_CONFIG_LIST,
    /// then the embedded local model.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Do not read or write the reply cache.
    #[arg(long, conflicts_with = "cache_seed")]
    pub no_cache: bool,
    /// Cache namespace (AutoGen's cache_seed; default: 41).
    #[arg(long, value_name = "N")]
    pub cache_seed: Option<u64>,
    /// Where runs live.
    #[arg(long, default_value = "runs", value_name = "DIR")]
    pub runs_dir: PathBuf,
    /// Print the rounds' summary as one JSON line instead of human output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DuelAction {
    /// Compare saved duels: agreement and price distribution per model pairing (text, and an HTML
    /// page with a plot).
    Report {
        /// Duel save directories (each holds duel.json).
        #[arg(required = true, value_name = "DIR")]
        saves: Vec<PathBuf>,
        /// Write the HTML report here.
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print the pairings as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Smaller, faster measurement.
    #[arg(long)]
    pub quick: bool,
    /// Only this section (repeatable; default: all).
    #[arg(long = "section", value_name = "NAME", value_parser = section_names())]
    pub sections: Vec<String>,
    /// Print machine-readable JSON instead of human output.
    #[arg(long)]
    pub json: bool,
}

/// `--section` takes the benchmark's own section names (clap lists them and refuses others, exit 2).
fn section_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::bench::SECTIONS.iter().map(|(name, _)| *name))
}
