//! Benchmarks measured by `agentopt bench` (wired in `commands/bench.rs`).

pub mod llama_server;
pub mod local;
