//! `agentopt functions`.

use std::process::ExitCode;

use crate::cli::FunctionsArgs;

pub async fn run(args: FunctionsArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`agentopt functions` is not implemented yet")
}
