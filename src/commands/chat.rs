//! `agentopt chat`.

use std::process::ExitCode;

use crate::cli::ChatArgs;

pub async fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`agentopt chat` is not implemented yet")
}
