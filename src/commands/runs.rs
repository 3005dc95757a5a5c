//! `agentopt runs`.

use std::process::ExitCode;

use crate::cli::RunsArgs;

pub async fn run(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`agentopt runs` is not implemented yet")
}
