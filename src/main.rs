//! The `agentopt` binary: parse flags, set up logging, run the command, map the outcome to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = agentopt::cli::Cli::parse();
    agentopt::commands::init_logging(cli.verbose);
    agentopt::commands::run(cli)
}
