//! Command-line flags (clap). These structs mirror SPEC §2 and hold no logic: commands resolve them
//! into their own configuration once.

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
    /// Continue an interrupted run where it stopped.
    Resume(ResumeArgs),
    /// Measure the success rate of a registry on a test set.
    Eval(EvalArgs),
    /// Inspect, compare and export function registries.
    Functions(FunctionsArgs),
    /// List and inspect past runs.
    Runs(RunsArgs),
    /// Check whether a given answer equals a reference answer.
    Grade(GradeArgs),
    /// Interactive assistant/proxy chat.
    Chat(ChatArgs),
    /// Run the repository benchmark and print its figures.
    Bench(BenchArgs),
}

/// Flags shared by every command that talks to a model or runs code; they mean the same everywhere.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model list (AutoGen OAI_CONFIG_LIST format); default: env OAI_CONFIG_LIST, then ./OAI_CONFIG_LIST,
    /// then the embedded local model.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Assistant model: config entries with this exact name, tried in order.
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// Conversations run at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Wall-clock limit per code execution, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub exec_timeout: f64,
    /// Do not read or write the reply cache.
    #[arg(long, conflicts_with = "cache_seed")]
    pub no_cache: bool,
    /// Cache namespace (AutoGen's cache_seed).
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
}

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// A dataset to split into train and test (default: datasets/sample.jsonl).
    pub data: Option<PathBuf>,
    /// Explicit training file.
    #[arg(long, value_name = "FILE")]
    pub train: Option<PathBuf>,
    /// Explicit test file.
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,
    #[arg(long, value_name = "N")]
    pub train_size: Option<usize>,
    #[arg(long, value_name = "N")]
    pub test_size: Option<usize>,
    /// Keep only problems of these subjects.
    #[arg(long = "subject", value_name = "S")]
    pub subjects: Vec<String>,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 3)]
    pub actions_per_step: usize,
    #[arg(long, default_value_t = 3)]
    pub patience: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Optimizer model (default: the assistant model).
    #[arg(long, value_name = "M")]
    pub optimizer_model: Option<String>,
    /// Initial registry (a file, a run, RUN@EPOCH, or functions/NAME).
    #[arg(long, value_name = "REGISTRY")]
    pub functions: Option<String>,
    /// Run name (default: a timestamp).
    #[arg(long, value_name = "NAME")]
    pub run: Option<String>,
    /// Skip the before/after evaluation on the test split.
    #[arg(long)]
    pub no_eval: bool,
    /// Stop cleanly (resumable) before spending more than this.
    #[arg(long, value_name = "USD")]
    pub max_usd: Option<f64>,
    /// Also write the learned registry to functions/NAME.json.
    #[arg(long, value_name = "NAME")]
    pub export: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ResumeArgs {
    /// The run to continue (a name under --runs-dir, or a path).
    pub run: String,
    #[arg(long, default_value = "runs", value_name = "DIR")]
    pub runs_dir: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A new spending limit for the rest of the run (default: the one it started with).
    #[arg(long, value_name = "USD")]
    pub max_usd: Option<f64>,
    #[arg(long)]
    pub unsafe_no_sandbox: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    #[arg(long, value_name = "FILE")]
    pub test: PathBuf,
    /// Registry to evaluate (a file or functions/NAME).
    #[arg(long, value_name = "REGISTRY", conflicts_with = "run")]
    pub functions: Option<String>,
    /// A run's learned registry: RUN, RUN@EPOCH or RUN@best.
    #[arg(long, value_name = "RUN[@EPOCH]")]
    pub run: Option<String>,
    #[arg(long, value_name = "N")]
    pub test_size: Option<usize>,
    #[arg(long = "subject", value_name = "S")]
    pub subjects: Vec<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write every conversation record here (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[arg(long, value_name = "USD")]
    pub max_usd: Option<f64>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Clone, Args)]
pub struct FunctionsArgs {
    #[command(subcommand)]
    pub action: FunctionsAction,
    #[arg(long, default_value = "runs", value_name = "DIR", global = true)]
    pub runs_dir: PathBuf,
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum FunctionsAction {
    /// Names, signatures and descriptions.
    List { registry: String },
    /// One function's code.
    Show { registry: String, name: String },
    /// What changed between two registries.
    Diff { a: String, b: String },
    /// Write a registry for use elsewhere.
    Export {
        registry: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// Output file (default: stdout).
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Json,
    Autogen,
    Python,
}

#[derive(Debug, Clone, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub action: RunsAction,
    #[arg(long, default_value = "runs", value_name = "DIR", global = true)]
    pub runs_dir: PathBuf,
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum RunsAction {
    List,
    Show {
        run: String,
    },
    Report {
        run: String,
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct GradeArgs {
    /// The answer to check (a bare answer or a whole response with \boxed{}).
    #[arg(required_unless_present = "cases")]
    pub given: Option<String>,
    #[arg(required_unless_present = "cases")]
    pub reference: Option<String>,
    /// JSON lines of {"given", "reference"}; prints each back with "equal".
    #[arg(long, value_name = "FILE", conflicts_with_all = ["given", "reference"])]
    pub cases: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HumanInput {
    Always,
    Terminate,
    Never,
}

#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// What to ask the assistant.
    pub task: String,
    #[arg(long, value_enum, default_value_t = HumanInput::Always)]
    pub human_input: HumanInput,
    #[arg(long, default_value_t = 15)]
    pub max_turns: usize,
    #[arg(long, value_name = "REGISTRY")]
    pub functions: Option<String>,
    /// Use the math-proxy prompt and grade the final box.
    #[arg(long)]
    pub math: bool,
    /// Reference answer to check the final box against (implies --math).
    #[arg(long, value_name = "X")]
    pub answer: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Smaller, faster measurement.
    #[arg(long)]
    pub quick: bool,
    /// Only this section (repeatable).
    #[arg(long = "section", value_name = "NAME", value_parser = section_names())]
    pub sections: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

/// `--section` takes the benchmark's own section names (clap lists them and refuses others, exit 2).
fn section_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::bench::SECTIONS.iter().map(|(name, _)| *name))
}
