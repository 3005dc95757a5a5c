//! `agentopt bench`.

use std::process::ExitCode;

use crate::cli::BenchArgs;

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`agentopt bench` is not implemented yet")
}
