//! `agentopt grade`.

use std::process::ExitCode;

use crate::cli::GradeArgs;

pub async fn run(args: GradeArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`agentopt grade` is not implemented yet")
}
