//! `agentopt resume`.

use std::process::ExitCode;

use crate::cli::ResumeArgs;

pub async fn run(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`agentopt resume` is not implemented yet")
}
