//! Reading a run directory (SPEC §8) for inspection — the ONE place that knows the field names of
//! `run.json`, `summary.json`, `events.jsonl` (`events`) and conversation records (`records`).
//!
//! Reading is lenient on purpose: a run may be in progress or killed (no `summary.json`, a torn last
//! line), and records may carry a few more or differently named fields than listed here. Whatever the
//! summary lacks is rebuilt from the epochs and events. Lines that cannot be parsed are skipped and
//! reported in `warnings`.
//!
//! Fields read: run.json `status`, `data.{data,train,test}.path` (for subjects); summary.json
//! `status`, `epochs_run`, `stopped_early`, `stop_reason`, `best_epoch`, `history[].{epoch, score,
//! decision, functions}`, `eval.{before,after}.{correct,total,errored,rate}`, `functions`, `usage`;
//! records and events: see those modules.

mod events;
mod records;

pub use events::Action;
pub use records::{Record, Tally, Usage};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::Error;
use crate::functions::Registry;

/// One epoch: the registry tried, how it scored, what was decided.
#[derive(Debug, Clone, Serialize)]
pub struct Epoch {
    pub epoch: usize,
    pub score: Option<f64>,
    /// Correct / total / errored on the training set (errored problems are not in the score).
    pub tally: Option<Tally>,
    /// The same registry on the validation split, when the run has one.
    pub val: Option<Tally>,
    /// `accept` or `rollback` (as written by the trainer); `None` while undecided.
    pub decision: Option<String>,
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
    pub records: Vec<Record>,
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
        self.decision.as_deref().is_some_and(|d| d.starts_with("accept"))
    }

    /// The decision, or why there is none: a partial epoch (cut short by a kill or an interrupt) is
    /// not decided, however its records score; `undecided` names an epoch still to be decided.
    pub fn decision_text(&self, undecided: &str) -> String {
        match (&self.decision, self.partial) {
            (Some(d), _) => d.clone(),
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
    pub status: String,
    pub epochs: Vec<Epoch>,
    pub best_epoch: Option<usize>,
    pub stopped_early: Option<bool>,
    pub stop_reason: Option<String>,
    pub best_functions: Vec<String>,
    pub eval_before: Option<Tally>,
    pub eval_after: Option<Tally>,
    pub usage: Usage,
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub before: Vec<Record>,
    #[serde(skip)]
    pub after: Vec<Record>,
    #[serde(skip)]
    pub best_registry: Option<Registry>,
    #[serde(skip)]
    pub config: Value,
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
    let summary = read_json_opt(&dir.join("summary.json")).ok().flatten();
    let final_summary = summary.is_some_and(|s| !summary_in_progress(&s));
    load(dir, !final_summary)
}

/// A summary written between epochs: its usage lags the records on disk.
fn summary_in_progress(summary: &Value) -> bool {
    summary["status"].as_str() == Some("running")
}

fn load(dir: &Path, with_records: bool) -> Result<Run, Error> {
    let mut warnings = Vec::new();
    let run_json = read_json_opt(&dir.join("run.json"))?.unwrap_or(Value::Null);
    let summary = read_json_opt(&dir.join("summary.json"))?.unwrap_or(Value::Null);
    let events = events::read(&read_jsonl(&dir.join("events.jsonl"), &mut warnings)?);
    let labels = if with_records { records::dataset_labels(&run_json) } else { BTreeMap::new() };
    let read_records = |path: &Path, warnings: &mut Vec<String>| -> Result<Vec<Record>, Error> {
        if !with_records {
            return Ok(vec![]);
        }
        let raw = read_jsonl(path, warnings)?;
        Ok(raw.iter().enumerate().map(|(i, v)| Record::from_json(v, i).labelled(&labels)).collect())
    };

    let mut epochs: BTreeMap<usize, Epoch> = BTreeMap::new();
    for (n, path) in epoch_dirs(dir)? {
        let mut e = Epoch::new(n);
        // A step killed before its commit point leaves no registry: the epoch is simply not there yet.
        let registry_path = path.join("registry.json");
        if registry_path.exists() {
            match Registry::load(&registry_path) {
                Ok(r) => e.registry = Some(r),
                Err(err) => warnings.push(err.to_string()),
            }
        }
        e.records = read_records(&path.join("conversations.jsonl"), &mut warnings)?;
        e.records.iter().for_each(|r| e.usage.add(&r.usage));
        e.functions = e.registry.as_ref().map(Registry::names).unwrap_or_default();
        if !e.records.is_empty() {
            let tally = Tally::of(&e.records);
            e.score = tally.rate;
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
        e.actions_applied = ev.actions.iter().filter(|a| a.outcome == "applied").count();
        e.actions_rejected = ev.actions.iter().filter(|a| a.outcome == "rejected").count();
        e.actions = ev.actions;
        e.optimizer_usage = ev.optimizer_usage.unwrap_or_default();
    }
    // The summary's history, when there is one, is what the trainer decided: it wins.
    for h in summary["history"].as_array().into_iter().flatten() {
        let Some(n) = h["epoch"].as_u64().map(|n| n as usize) else { continue };
        let e = epochs.entry(n).or_insert_with(|| Epoch::new(n));
        e.score = h["score"].as_f64().or_else(|| h["score"]["rate"].as_f64()).or(e.score);
        e.tally = Tally::from_json(h).or(e.tally);
        e.val = Tally::from_json(&h["val"]);
        e.decision = scalar_text(&h["decision"]).or(e.decision.take());
        if let Some(fs) = h["functions"].as_array() {
            e.functions = fs.iter().filter_map(scalar_text).collect();
        }
    }
    // Epoch directories made by a step for an epoch that never ran hold a registry and nothing else.
    let mut epochs: Vec<Epoch> = epochs
        .into_values()
        .filter(|e| e.score.is_some() || e.decision.is_some() || !e.records.is_empty())
        .collect();
    let mut status = scalar_text(&run_json["status"])
        .or_else(|| scalar_text(&summary["status"]))
        .unwrap_or_else(|| if summary.is_null() { "incomplete".into() } else { "done".into() });
    // run.json says `running` until the process rewrites it; a kill -9 never does. The lock tells.
    if status == "running" && !crate::run_dir::RunDir::at(dir).lock_held() {
        status = "killed".into();
    }
    // In a run no process works on, an undecided epoch will stay so: it was cut short. Without the
    // split to count against, a run that logs decisions for its other epochs says the same.
    let training_problems = run_json["split"]["train"].as_array().map(Vec::len);
    let logs_decisions = epochs.iter().any(|e| e.decision.is_some());
    for e in &mut epochs {
        let cut = match training_problems {
            Some(n) => e.records.len() < n,
            None => logs_decisions,
        };
        e.partial = e.decision.is_none() && status != "running" && cut;
    }
    infer_decisions(&mut epochs);

    let best_epoch = summary["best_epoch"]
        .as_u64()
        .map(|n| n as usize)
        .or(events.best_epoch)
        .or_else(|| epochs.iter().rev().find(|e| e.accepted()).map(|e| e.epoch));
    let best_registry = Registry::load(&dir.join("best").join("registry.json")).ok();
    let best_functions = summary["functions"]
        .as_array()
        .map(|fs| fs.iter().filter_map(scalar_text).collect())
        .or_else(|| best_registry.as_ref().map(Registry::names))
        .unwrap_or_default();

    let before = read_records(&dir.join("eval").join("before.jsonl"), &mut warnings)?;
    let after = read_records(&dir.join("eval").join("after.jsonl"), &mut warnings)?;
    let eval_tally = |side: &str, records: &[Record]| {
        Tally::from_json(&summary["eval"][side]).or_else(|| (!records.is_empty()).then(|| Tally::of(records)))
    };
    let eval_before = eval_tally("before", &before);
    let eval_after = eval_tally("after", &after);

    let usage = if summary["usage"].is_object() && !summary_in_progress(&summary) {
        Usage::from_json(&summary["usage"])
    } else {
        let mut u = Usage::default();
        epochs.iter().for_each(|e| {
            u.add(&e.usage);
            u.add(&e.optimizer_usage);
        });
        before.iter().chain(&after).for_each(|r| u.add(&r.usage));
        u
    };
    let name =
        dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(Run {
        name,
        dir: dir.to_path_buf(),
        status,
        epochs,
        best_epoch,
        stopped_early: summary["stopped_early"].as_bool(),
        stop_reason: scalar_text(&summary["stop_reason"]).or(events.stop_reason),
        best_functions,
        eval_before,
        eval_after,
        usage,
        warnings,
        before,
        after,
        best_registry,
        config: run_json,
    })
}

/// For runs that log no decisions at all, apply SPEC §7's rule: accept only a strict improvement on
/// the best. When the trainer logs decisions, an epoch without one is still running: left undecided.
fn infer_decisions(epochs: &mut [Epoch]) {
    if epochs.iter().any(|e| e.decision.is_some()) {
        return;
    }
    let mut best = f64::NEG_INFINITY;
    for e in epochs.iter_mut().filter(|e| !e.partial) {
        let score = e.score.unwrap_or(f64::NEG_INFINITY);
        if e.decision.is_none() && e.score.is_some() {
            e.decision = Some(if score > best { "accept" } else { "rollback" }.into());
        }
        if e.accepted() {
            best = best.max(score);
        }
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

fn epoch_dirs(run: &Path) -> Result<Vec<(usize, PathBuf)>, Error> {
    let path = run.join("epochs");
    let rd = match std::fs::read_dir(&path) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => return Err(Error::Read { path, source }),
    };
    let mut out: Vec<(usize, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    out.sort();
    Ok(out)
}

fn read_json_opt(path: &Path) -> Result<Option<Value>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Read { path: path.into(), source }),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| Error::Json {
        path: path.into(),
        line: e.line(),
        message: e.to_string(),
    })
}

/// JSON lines; unparsable lines (a torn last line after a crash) are skipped with a warning.
fn read_jsonl(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<Value>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => return Err(Error::Read { path: path.into(), source }),
    };
    let mut out = Vec::new();
    let count = text.lines().count();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(v) => out.push(v),
            // An unterminated last line is a write in progress (or cut by a kill): not worth a warning.
            Err(_) if n + 1 == count && !text.ends_with('\n') => {}
            Err(e) => warnings.push(format!("skipped `{}` line {}: {e}", path.display(), n + 1)),
        }
    }
    Ok(out)
}

/// Strings as they are, numbers and booleans as text, anything else as absent.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
