//! One file per subcommand; this module dispatches, sets up logging and maps outcomes to exit codes
//! (0 success, 1 the job failed, 2 bad usage or bad input).

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::{Cli, Command};
use crate::progress::Progress;
use crate::trainer::meter::Cancel;

mod bench;
mod chat;
mod compare;
mod duel;
pub mod eval;
mod functions;
mod grade;
pub mod registry_check;
pub mod resume;
mod runs;
mod selection;
pub mod task;
pub mod train;

/// Marks an error as the user's input being at fault (exit code 2). The message names file, line, field.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BadInput(pub anyhow::Error);

/// Wraps any error as bad input.
pub fn bad_input(e: impl Into<anyhow::Error>) -> anyhow::Error {
    BadInput(e.into()).into()
}

/// Makes the progress display of a job of `total` problems named `label`.
pub type MakeProgress = dyn Fn(usize, &str) -> Progress + Send + Sync;

/// How a long job shows progress and learns that it should stop: the CLI's way (stderr, Ctrl-C and
/// SIGTERM) or a library caller's (the Python package draws progress itself and cancels on
/// KeyboardInterrupt).
#[derive(Clone)]
pub struct Hooks {
    pub cancel: Cancel,
    pub progress: Arc<MakeProgress>,
    /// Cancel on Ctrl-C and SIGTERM (only the CLI owns the process's signals).
    pub ctrl_c: bool,
}

impl Hooks {
    /// The command line's: progress on stderr, cancelled by Ctrl-C or SIGTERM.
    pub fn cli() -> Hooks {
        Hooks { cancel: Cancel::default(), progress: Arc::new(Progress::new), ctrl_c: true }
    }

    /// The cancel token of a job, listening to the signals when the CLI owns them.
    fn cancel(&self, in_flight: &'static str) -> Cancel {
        if self.ctrl_c {
            self.cancel.on_ctrl_c(in_flight);
        }
        self.cancel.clone()
    }
}

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "agentopt=warn",
        1 => "agentopt=info",
        _ => "agentopt=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(crate::env::RUST_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal: logs redirected to a file must stay plain text.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && crate::env::var(crate::env::NO_COLOR).is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}

pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Train(args) => train::run(args).await,
            Command::Resume(args) => resume::run(args).await,
            Command::Eval(args) => eval::run(args).await,
            Command::Functions(args) => functions::run(args).await,
            Command::Runs(args) => runs::run(args).await,
            Command::Grade(args) => grade::run(args).await,
            Command::Chat(args) => chat::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Duel(args) => duel::run(args).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            if err.chain().any(|e| e.is::<BadInput>()) { ExitCode::from(2) } else { ExitCode::from(1) }
        }
    }
}
