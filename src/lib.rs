//! agentopt: train an LLM agent by learning its function list (AG2's AgentOptimizer, done right).
//!
//! Layout (dependencies point downwards):
//! - `cli`, `commands/`      — flag structs and one file per subcommand (the only users of `anyhow`)
//! - `trainer`               — epochs, roll-back, early stop, resume; phases under an adaptive limit
//! - `agent/`, `optimizer/`  — the assistant/math-proxy conversation (with an optional human gate for
//!   `chat`: `agent/human.rs`, `agent/console.rs`) and the function optimizer
//! - `llm/`                  — the `ChatModel` trait, backends, retry, cache, usage accounting
//! - `exec/`                 — sandboxed, long-lived Python sessions for LLM-written code
//! - `functions`             — the function registry (the learnable "weights")
//! - `task/`                 — what the assistant is told, when it is done, and the metric
//! - `grading`, `dataset`    — the math answer checker and problem loading
//! - `record`, `run_dir`     — the run directory's typed contract; its paths, written atomically and read back
//! - `env`                   — every environment variable the program reads
//! - `inspect/`, `report/`   — reading runs and registries back: diffs, exports, tables, the HTML report
//! - `progress`              — the live progress line of long jobs
//! - `stats`                 — Wilson intervals and the exact sign test
//! - `bench`                 — `agentopt bench`: sandbox, loop, `eval` and local-model figures

pub mod agent;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod dataset;
pub mod duel;
pub mod env;
pub mod exec;
pub mod fsio;
pub mod functions;
pub mod grading;
pub mod inspect;
pub mod llm;
pub mod optimizer;
pub mod progress;
pub mod record;
pub mod report;
pub mod run_dir;
pub mod stats;
pub mod task;
pub mod trainer;
