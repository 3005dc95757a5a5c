//! `agentopt train`.

use std::process::ExitCode;

use crate::cli::TrainArgs;

pub async fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`agentopt train` is not implemented yet")
}
