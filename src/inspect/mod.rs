//! Inspecting what was learned: resolving registry and run references, diffing and exporting
//! registries, reading run directories leniently, and rendering terminal tables and highlighted code.
//!
//! Every field of a run record that this crate reads is read in `run_data/` (records.rs, events.rs,
//! mod.rs), so aligning with the trainer's record shapes touches that module only.

pub mod diff;
pub mod export;
pub mod highlight;
pub mod resolve;
pub mod run_data;
pub mod table;

pub use resolve::{resolve_registry, resolve_run};

use std::path::PathBuf;

/// Why a registry or run reference could not be followed, or a run could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No registry `{reference}`: looked for {}", list_paths(.tried))]
    RegistryNotFound { reference: String, tried: Vec<PathBuf> },
    #[error("No run `{reference}`: looked for {}", list_paths(.tried))]
    RunNotFound { reference: String, tried: Vec<PathBuf> },
    #[error("Bad epoch `{epoch}` in `{reference}`: expected a number (3 or 003) or `best`")]
    BadEpoch { reference: String, epoch: String },
    #[error(
        "Run `{run}` has no registry for epoch `{epoch}`: `{path}` does not exist (epochs present: {present})"
    )]
    EpochNotFound { run: String, epoch: String, path: PathBuf, present: String },
    #[error("Failed to read `{path}`")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("Invalid JSON in `{path}` at line {line}: {message}")]
    Json { path: PathBuf, line: usize, message: String },
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", ")
}
