//! The run directory's typed contract (SPEC §8): the type of every file `runs/<run>/` holds, written
//! by the trainer and `eval --out` and read back by resume, inspect, report, compare and bench through
//! `run_dir::RunDir`'s paths. `FORMAT_VERSION` names this contract in `run.json`; runs written before
//! it (no `format_version`: format 1) are read too — their records lack `subject` and `level`.
//!
//! - `info`         — run.json (`RunInfo`)
//! - `event`        — one line of events.jsonl (`Event`, the optimizer's step events included)
//! - `conversation` — one conversation record (`ConversationRecord`, `Outcome`, `GradedBy`)
//! - `score`        — correct / total / errored and the rate (`Score`), of any set of records
//! - `summary`      — summary.json (`Summary`) and `epochs/NNN/candidates.json` (`Candidate`)

pub mod conversation;
pub mod event;
pub mod info;
pub mod score;
pub mod summary;

pub use conversation::{ConversationRecord, Delegated, End, GradedBy, Outcome, Timing};
pub use event::Event;
pub use info::{DataSpec, FileRef, ModelsSpec, RunInfo, Select, Split, Status, TrainSettings};
pub use score::Score;
pub use summary::{Candidate, EpochEntry, EvalSummary, Summary, candidates_text};

/// The run-directory format this build writes. 1: before `format_version` existed (records without
/// `subject`/`level`); 2: records carry the problem's `subject` and `level`.
pub const FORMAT_VERSION: u32 = 2;
