//! Reading a run directory (SPEC §8) for inspection, through `RunDir`'s paths into the `record` types
//! the trainer wrote. A run may be in progress or killed (no `summary.json`, a torn last line): what
//! the summary lacks is rebuilt from the epochs and events. A file or line that is not what its type
//! says is left out and reported in `warnings`, naming the file (and line).

mod events;
mod labels;

pub use crate::llm::Usage;
pub use events::{Action, ActionOutcome};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Error;
use crate::functions::Registry;
use crate::record::{ConversationRecord, RunInfo, Score, Summary};
use crate::run_dir::{self, Phase, RunDir};
use crate::trainer::rule::{Decision, Stop};

/// One epoch: the registry tried, how it scored, what was decided.
#[derive(Debug, Clone, Serialize)]
pub struct Epoch {
    pub epoch: usize,
    pub score: Option<f64>,
    /// Correct / total / errored on the training set (errored problems are not in the score).
    pub tally: Option<Score>,
    /// The same registry on the validation split, when the run has one.
    pub val: Option<Score>,
    /// `None` while undecided.
    pub decision: Option<Decision>,
    /// Not every training problem has a record and nothing was decided: the epoch was cut short (or
    /// is still running). Such an epoch is never shown as decided.
    pub partial: bool,
    pub functions: Vec<String>,
    /// The optimizer actions of the step that built this epoch's registry.
    pub actions_applied: usize,
    pub actions_rejected: usize,
    pub actions: Vec<Action>,
    /// This epoch's conversations.
    pub usage: Usage,
    /// The optimizer step that built this epoch's registry.
    pub optimizer_usage: Usage,
    #[serde(skip)]
    pub registry: Option<Registry>,
    #[serde(skip)]
    pub records: Vec<ConversationRecord>,
}

impl Epoch {
    fn new(epoch: usize) -> Epoch {
        Epoch {
            epoch,
            score: None,
            tally: None,
            val: None,
            decision: None,
            partial: false,
            functions: vec![],
            actions_applied: 0,
            actions_rejected: 0,
            actions: vec![],
            usage: Usage::default(),
            optimizer_usage: Usage::default(),
            registry: None,
            records: vec![],
        }
    }

    pub fn accepted(&self) -> bool {
        self.decision == Some(Decision::Accept)
    }

    /// The decision, or why there is none: a partial epoch (cut short by a kill or an interrupt) is
    /// not decided, however its records score; `undecided` names an epoch still to be decided.
    pub fn decision_text(&self, undecided: &str) -> String {
        match (&self.decision, self.partial) {
            (Some(d), _) => d.to_string(),
            (None, true) => format!("partial ({} done)", self.records.len()),
            (None, false) => undecided.into(),
        }
    }

    /// Conversations plus the optimizer step.
    pub fn cost(&self) -> f64 {
        self.usage.usd + self.optimizer_usage.usd
    }
}

/// Everything `runs` shows about one run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub name: String,
    pub dir: PathBuf,
    /// run.json's status, `killed` for a run that says `running` but that no process holds, or
    /// `incomplete` for a directory without run.json or summary.json.
    pub status: String,
    pub epochs: Vec<Epoch>,
    pub best_epoch: Option<usize>,
    pub stopped_early: Option<bool>,
    pub stop_reason: Option<Stop>,
    pub best_functions: Vec<String>,
    pub eval_before: Option<Score>,
    pub eval_after: Option<Score>,
    pub usage: Usage,
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub before: Vec<ConversationRecord>,
    #[serde(skip)]
    pub after: Vec<ConversationRecord>,
    #[serde(skip)]
    pub best_registry: Option<Registry>,
    /// run.json, when it could be read.
    #[serde(skip)]
    pub info: Option<RunInfo>,
}

impl Run {
    pub fn best_score(&self) -> Option<f64> {
        let best = self.best_epoch?;
        self.epochs.iter().find(|e| e.epoch == best)?.score
    }
}

/// Reads a run directory, every conversation record included.
pub fn load_run(dir: &Path) -> Result<Run, Error> {
    load(dir, true)
}

/// Reads what a listing needs. A finished run's summary has it all, so its conversation records
/// (the bulk of a run) are not read; an unfinished run is read in full. The trainer also rewrites
/// summary.json after every epoch with status `running`: such a summary is not final.
pub fn load_run_overview(dir: &Path) -> Result<Run, Error> {
    let summary: Option<Summary> = run_dir::read_json_if_present(&RunDir::at(dir).summary()).ok().flatten();
    let final_summary = summary.is_some_and(|s| !in_progress(&s));
    load(dir, !final_summary)
}

/// A summary written between epochs: its usage lags the records on disk.
fn in_progress(summary: &Summary) -> bool {
    summary.status == crate::record::Status::Running
}

/// A whole JSON file of the run; one that does not parse is a warning, and the run is read without it.
fn read_whole<T: DeserializeOwned>(path: &Path, warnings: &mut Vec<String>) -> Result<Option<T>, Error> {
    match run_dir::read_json_if_present(path) {
        Ok(value) => Ok(value),
        Err(run_dir::Error::Parse { path, line, message }) => {
            warnings.push(format!("`{}` line {line}: {message} (file skipped)", path.display()));
            Ok(None)
        }
        Err(run_dir::Error::Read { path, source }) => Err(Error::Read { path, source }),
        Err(e) => Err(Error::Read { path: path.into(), source: std::io::Error::other(e.to_string()) }),
    }
}

fn load(dir: &Path, with_records: bool) -> Result<Run, Error> {
    let run = RunDir::at(dir);
    let mut warnings = Vec::new();
    let info: Option<RunInfo> = read_whole(&run.run_json(), &mut warnings)?;
    let summary: Option<Summary> = read_whole(&run.summary(), &mut warnings)?;
    let events = events::read(&run.read_events(&mut warnings).map_err(read_error)?);
    let labels = match &info {
        Some(info) if with_records => labels::for_format(info),
        _ => labels::Labels::default(),
    };
    let read_records = |phase: Phase, warnings: &mut Vec<String>| -> Result<Vec<ConversationRecord>, Error> {
        if !with_records {
            return Ok(vec![]);
        }
        let mut records: Vec<ConversationRecord> =
            run_dir::read_lines_warning(&run.conversations(phase), warnings).map_err(read_error)?;
        records.iter_mut().for_each(|r| labels.fill(r));
        Ok(records)
    };

    let mut epochs: BTreeMap<usize, Epoch> = BTreeMap::new();
    for n in run.epoch_numbers().map_err(|source| Error::Read { path: run.epochs_dir(), source })? {
        let mut e = Epoch::new(n);
        // A step killed before its commit point leaves no registry: the epoch is simply not there yet.
        let registry_path = run.epoch_registry(n);
        if registry_path.exists() {
            match Registry::load(&registry_path) {
                Ok(r) => e.registry = Some(r),
                Err(err) => warnings.push(err.to_string()),
            }
        }
        e.records = read_records(Phase::Epoch(n), &mut warnings)?;
        e.records.iter().for_each(|r| e.usage.add(&r.usage));
        e.functions = e.registry.as_ref().map(Registry::names).unwrap_or_default();
        if !e.records.is_empty() {
            let tally = Score::of(&e.records);
            e.score = tally.rated();
            e.tally = Some(tally);
        }
        epochs.insert(n, e);
    }
    for (n, ev) in events.epochs {
        let e = epochs.entry(n).or_insert_with(|| Epoch::new(n));
        e.decision = ev.decision;
        e.score = ev.score.or(e.score);
        if let Some(fs) = ev.functions {
            e.functions = fs;
        }
        e.val = ev.val;
        e.actions_applied = ev.actions.iter().filter(|a| a.outcome == ActionOutcome::Applied).count();
        e.actions_rejected = ev.actions.iter().filter(|a| a.outcome == ActionOutcome::Rejected).count();
        e.actions = ev.actions;
        e.optimizer_usage = ev.optimizer_usage.unwrap_or_default();
    }
    // The summary's history, when there is one, is what the trainer decided: it wins.
    for h in summary.iter().flat_map(|s| &s.history) {
        let e = epochs.entry(h.epoch).or_insert_with(|| Epoch::new(h.epoch));
        let tally =
            Score { correct: h.correct, total: h.total, errored: h.errored, rate: h.score, ci95: h.ci95 };
        e.score = Some(h.score);
        e.tally = Some(Score { ci95: tally.interval(), ..tally });
        e.val = h.val.map(|v| Score { ci95: v.interval(), ..v });
        e.decision = Some(h.decision);
        e.functions = h.functions.clone();
    }
    // Epoch directories made by a step for an epoch that never ran hold a registry and nothing else.
    let mut epochs: Vec<Epoch> = epochs
        .into_values()
        .filter(|e| e.score.is_some() || e.decision.is_some() || !e.records.is_empty())
        .collect();
    let mut status = match (&info, &summary) {
        (Some(info), _) => info.status.to_string(),
        (None, Some(summary)) => summary.status.to_string(),
        (None, None) => "incomplete".into(),
    };
    // run.json says `running` until the process rewrites it; a kill -9 never does. The lock tells.
    if status == "running" && !run.lock_held() {
        status = "killed".into();
    }
    // In a run no process works on, an undecided epoch will stay so: it was cut short. Without the
    // split to count against, a run that logs decisions for its other epochs says the same.
    let training_problems = info.as_ref().map(|i| i.split.train.len());
    let logs_decisions = epochs.iter().any(|e| e.decision.is_some());
    for e in &mut epochs {
        let cut = match training_problems {
            Some(n) => e.records.len() < n,
            None => logs_decisions,
        };
        e.partial = e.decision.is_none() && status != "running" && cut;
    }

    let best_epoch = summary
        .as_ref()
        .and_then(|s| s.best_epoch)
        .or(events.best_epoch)
        .or_else(|| epochs.iter().rev().find(|e| e.accepted()).map(|e| e.epoch));
    let best_registry = Registry::load(&run.best_registry()).ok();
    let best_functions = match &summary {
        Some(s) => s.functions.clone(),
        None => best_registry.as_ref().map(Registry::names).unwrap_or_default(),
    };

    let before = read_records(Phase::Before, &mut warnings)?;
    let after = read_records(Phase::After, &mut warnings)?;
    let eval_tally = |recorded: Option<Score>, records: &[ConversationRecord]| {
        recorded
            .map(|s| Score { ci95: s.interval(), ..s })
            .or_else(|| (!records.is_empty()).then(|| Score::of(records)))
    };
    let eval_before = eval_tally(summary.as_ref().and_then(|s| s.eval.before), &before);
    let eval_after = eval_tally(summary.as_ref().and_then(|s| s.eval.after), &after);

    let usage = match &summary {
        Some(s) if !in_progress(s) => s.usage,
        _ => {
            let mut u = Usage::default();
            epochs.iter().for_each(|e| {
                u.add(&e.usage);
                u.add(&e.optimizer_usage);
            });
            before.iter().chain(&after).for_each(|r| u.add(&r.usage));
            u
        }
    };
    let name =
        dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(Run {
        name,
        dir: dir.to_path_buf(),
        status,
        epochs,
        best_epoch,
        stopped_early: summary.as_ref().map(|s| s.stopped_early),
        stop_reason: summary.as_ref().and_then(|s| s.stop_reason).or(events.stop_reason),
        best_functions,
        eval_before,
        eval_after,
        usage,
        warnings,
        before,
        after,
        best_registry,
        info,
    })
}

fn read_error(e: run_dir::Error) -> Error {
    match e {
        run_dir::Error::Read { path, source } => Error::Read { path, source },
        run_dir::Error::Parse { path, line, message } => Error::Json { path, line, message },
        other => Error::Read { path: PathBuf::new(), source: std::io::Error::other(other.to_string()) },
    }
}

/// Every run directory directly under `runs_dir`, sorted by name.
pub fn list_runs(runs_dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let rd = match std::fs::read_dir(runs_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => return Err(Error::Read { path: runs_dir.into(), source }),
    };
    let mut dirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && super::resolve::is_run_dir(p))
        .collect();
    dirs.sort();
    Ok(dirs)
}
