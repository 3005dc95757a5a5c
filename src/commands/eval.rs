//! `agentopt eval`.

use std::process::ExitCode;

use crate::cli::EvalArgs;

pub async fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`agentopt eval` is not implemented yet")
}
