//! Reading a run directory (SPEC §8) for inspection — the ONE place that knows the field names of
//! `run.json`, `summary.json`, `events.jsonl` and conversation records.
//!
//! Reading is lenient on purpose: a run may be in progress or killed (no `summary.json`, a torn last
//! line), and records may carry a few more or differently named fields than listed here. Whatever the
//! summary lacks is rebuilt from the epochs and events. Lines that cannot be parsed are skipped and
//! reported in `warnings`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::Error;
use crate::functions::Registry;

/// Tokens and money spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Usage {
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub usd: f64,
}

impl Usage {
    /// Reads `{calls, input_tokens|prompt_tokens, output_tokens|completion_tokens, usd|cost}`.
    pub fn from_json(v: &Value) -> Usage {
        let int = |keys: &[&str]| keys.iter().find_map(|k| v[*k].as_u64()).unwrap_or(0);
        Usage {
            calls: int(&["calls"]),
            input_tokens: int(&["input_tokens", "prompt_tokens"]),
            output_tokens: int(&["output_tokens", "completion_tokens"]),
            usd: ["usd", "cost"].iter().find_map(|k| v[*k].as_f64()).unwrap_or(0.0),
        }
    }

    pub fn add(&mut self, other: &Usage) {
        self.calls += other.calls;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.usd += other.usd;
    }
}

/// One graded conversation (a training or evaluation problem).
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub id: String,
    pub problem: String,
    pub subject: Option<String>,
    pub level: Option<String>,
    pub answer: Option<String>,
    pub reference: Option<String>,
    /// `None` when the conversation errored (infrastructure failure: not scored).
    pub correct: Option<bool>,
    pub error: Option<String>,
    pub usage: Usage,
}

impl Record {
    /// Reads one conversation record; `index` names it when it has no `id`.
    pub fn from_json(v: &Value, index: usize) -> Record {
        let text = |keys: &[&str]| keys.iter().find_map(|k| scalar_text(&v[*k]));
        let error = match (&v["errored"], &v["error"]) {
            (Value::Null | Value::Bool(false), Value::Null) => None,
            (Value::Null | Value::Bool(false), e) | (e, _) => {
                Some(scalar_text(e).unwrap_or_else(|| e.to_string()))
            }
        };
        let verdict = &v["verdict"];
        let correct = v["correct"]
            .as_bool()
            .or_else(|| verdict.as_bool())
            .or_else(|| verdict["equal"].as_bool())
            .or_else(|| verdict["correct"].as_bool());
        Record {
            id: text(&["id"]).unwrap_or_else(|| format!("#{index}")),
            problem: text(&["problem", "question"]).unwrap_or_default(),
            subject: text(&["subject"]),
            level: text(&["level"]),
            answer: text(&["answer", "extracted"]),
            reference: text(&["reference"]),
            correct: if error.is_some() { None } else { Some(correct.unwrap_or(false)) },
            error,
            usage: Usage::from_json(&v["usage"]),
        }
    }
}

/// Correct out of scored: errored problems are counted apart and left out of the rate (SPEC §3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Tally {
    pub correct: usize,
    /// Every problem, errored ones included.
    pub total: usize,
    pub errored: usize,
    pub rate: Option<f64>,
}

impl Tally {
    pub fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Tally {
        let mut t = Tally::default();
        for r in records {
            t.total += 1;
            match r.correct {
                Some(true) => t.correct += 1,
                Some(false) => {}
                None => t.errored += 1,
            }
        }
        let scored = t.total - t.errored;
        t.rate = (scored > 0).then(|| t.correct as f64 / scored as f64);
        t
    }

    fn from_json(v: &Value) -> Option<Tally> {
        let n = |k: &str| v[k].as_u64().map(|x| x as usize);
        let (correct, total) = (n("correct")?, n("total")?);
        let errored = n("errored").unwrap_or(0);
        let scored = total.saturating_sub(errored);
        let rate = v["rate"].as_f64().or_else(|| (scored > 0).then(|| correct as f64 / scored as f64));
        Some(Tally { correct, total, errored, rate })
    }
}

/// An optimizer action logged in `events.jsonl` (`action_applied` / `action_rejected`).
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub applied: bool,
    /// `add_function`, `revise_function` or `remove_function`, when logged.
    pub action: Option<String>,
    /// The function it names, when logged.
    pub function: Option<String>,
    /// Why it was rejected, when logged.
    pub reason: Option<String>,
}

impl Action {
    /// Reads `{action: "add_function" | {name|kind, arguments: {name}}, function|name, error|reason}`.
    fn from_event(ev: &Value, applied: bool) -> Action {
        let action = &ev["action"];
        let args = if action["arguments"].is_null() { &ev["arguments"] } else { &action["arguments"] };
        // Arguments may be the raw JSON string the optimizer wrote.
        let parsed: Value = args.as_str().and_then(|a| serde_json::from_str(a).ok()).unwrap_or(Value::Null);
        let first = |vs: &[&Value]| vs.iter().find_map(|v| scalar_text(v));
        Action {
            applied,
            action: first(&[action, &action["name"], &action["kind"], &ev["tool"]]),
            function: first(&[&ev["function"], &ev["name"], &args["name"], &parsed["name"]]),
            reason: first(&[&ev["error"], &ev["reason"], &ev["message"]]),
        }
    }
}

/// One epoch: the registry tried, how it scored, what was decided.
#[derive(Debug, Clone, Serialize)]
pub struct Epoch {
    pub epoch: usize,
    pub score: Option<f64>,
    /// `accept` or `rollback` (as written by the trainer).
    pub decision: Option<String>,
    pub functions: Vec<String>,
    /// Optimizer actions logged in `events.jsonl` with this epoch number.
    pub actions_applied: usize,
    pub actions_rejected: usize,
    pub actions: Vec<Action>,
    pub usage: Usage,
    #[serde(skip)]
    pub registry: Option<Registry>,
    #[serde(skip)]
    pub records: Vec<Record>,
}

impl Epoch {
    pub fn accepted(&self) -> bool {
        self.decision.as_deref().is_some_and(|d| d.starts_with("accept"))
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

/// Reads a run directory.
pub fn load_run(dir: &Path) -> Result<Run, Error> {
    let mut warnings = Vec::new();
    let run_json = read_json_opt(&dir.join("run.json"))?.unwrap_or(Value::Null);
    let summary = read_json_opt(&dir.join("summary.json"))?;
    let events = read_jsonl(&dir.join("events.jsonl"), &mut warnings)?;

    let mut epochs: BTreeMap<usize, Epoch> = BTreeMap::new();
    for (n, path) in epoch_dirs(dir)? {
        let registry = match Registry::load(&path.join("registry.json")) {
            Ok(r) => Some(r),
            Err(e) => {
                warnings.push(format!("{e}"));
                None
            }
        };
        let raw = read_jsonl(&path.join("conversations.jsonl"), &mut warnings)?;
        let records: Vec<Record> = raw.iter().enumerate().map(|(i, v)| Record::from_json(v, i)).collect();
        let mut usage = Usage::default();
        records.iter().for_each(|r| usage.add(&r.usage));
        epochs.insert(
            n,
            Epoch {
                epoch: n,
                score: Tally::of(&records).rate,
                decision: None,
                functions: registry.as_ref().map(Registry::names).unwrap_or_default(),
                actions_applied: 0,
                actions_rejected: 0,
                actions: vec![],
                usage,
                registry,
                records,
            },
        );
    }
    let blank = |n: usize| Epoch {
        epoch: n,
        score: None,
        decision: None,
        functions: vec![],
        actions_applied: 0,
        actions_rejected: 0,
        actions: vec![],
        usage: Usage::default(),
        registry: None,
        records: vec![],
    };
    // The summary's history is authoritative for score, decision and functions.
    let history = summary.as_ref().and_then(|s| s["history"].as_array().cloned()).unwrap_or_default();
    for h in &history {
        let Some(n) = h["epoch"].as_u64().map(|n| n as usize) else { continue };
        let e = epochs.entry(n).or_insert_with(|| blank(n));
        e.score = h["score"].as_f64().or(e.score);
        e.decision = scalar_text(&h["decision"]).or(e.decision.take());
        if let Some(fs) = h["functions"].as_array() {
            e.functions = fs.iter().filter_map(scalar_text).collect();
        }
    }
    for ev in &events {
        let Some(n) = ev["epoch"].as_u64().map(|n| n as usize) else { continue };
        match ev["type"].as_str().unwrap_or("") {
            kind @ ("action_applied" | "action_rejected") => {
                let e = epochs.entry(n).or_insert_with(|| blank(n));
                let applied = kind == "action_applied";
                if applied {
                    e.actions_applied += 1;
                } else {
                    e.actions_rejected += 1;
                }
                e.actions.push(Action::from_event(ev, applied));
            }
            "decision" => {
                let e = epochs.entry(n).or_insert_with(|| blank(n));
                if e.decision.is_none() {
                    e.decision = scalar_text(&ev["decision"]).or_else(|| {
                        ev["accepted"].as_bool().map(|a| if a { "accept" } else { "rollback" }.to_string())
                    });
                }
                if e.score.is_none() {
                    e.score = ev["score"].as_f64();
                }
            }
            _ => {}
        }
    }
    let mut epochs: Vec<Epoch> = epochs.into_values().collect();
    infer_decisions(&mut epochs);

    let best_epoch = summary
        .as_ref()
        .and_then(|s| s["best_epoch"].as_u64())
        .map(|n| n as usize)
        .or_else(|| epochs.iter().rev().find(|e| e.accepted()).map(|e| e.epoch));
    let best_registry = Registry::load(&dir.join("best").join("registry.json")).ok();
    let best_functions = summary
        .as_ref()
        .and_then(|s| s["functions"].as_array())
        .map(|fs| fs.iter().filter_map(scalar_text).collect())
        .or_else(|| best_registry.as_ref().map(Registry::names))
        .unwrap_or_default();

    let load_eval = |file: &str, warnings: &mut Vec<String>| -> Result<Vec<Record>, Error> {
        let raw = read_jsonl(&dir.join("eval").join(file), warnings)?;
        Ok(raw.iter().enumerate().map(|(i, v)| Record::from_json(v, i)).collect())
    };
    let before = load_eval("before.jsonl", &mut warnings)?;
    let after = load_eval("after.jsonl", &mut warnings)?;
    let eval_tally = |side: &str, records: &[Record]| {
        summary
            .as_ref()
            .and_then(|s| Tally::from_json(&s["eval"][side]))
            .or_else(|| (!records.is_empty()).then(|| Tally::of(records)))
    };
    let eval_before = eval_tally("before", &before);
    let eval_after = eval_tally("after", &after);

    let usage = match summary.as_ref().map(|s| &s["usage"]) {
        Some(u) if u.is_object() => Usage::from_json(u),
        _ => {
            let mut u = Usage::default();
            epochs.iter().for_each(|e| u.add(&e.usage));
            before.iter().chain(&after).for_each(|r| u.add(&r.usage));
            u
        }
    };
    let status = scalar_text(&run_json["status"])
        .or_else(|| scalar_text(&run_json["status"]["state"]))
        .unwrap_or_else(|| if summary.is_some() { "done".into() } else { "incomplete".into() });
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    Ok(Run {
        name,
        dir: dir.to_path_buf(),
        status,
        epochs,
        best_epoch,
        stopped_early: summary.as_ref().and_then(|s| s["stopped_early"].as_bool()),
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

/// Where no decision was logged, apply SPEC §7's rule: accept only a strict improvement on the best.
fn infer_decisions(epochs: &mut [Epoch]) {
    let mut best = f64::NEG_INFINITY;
    for e in epochs.iter_mut() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_records() {
        let r = Record::from_json(
            &json!({"id": 7, "question": "q", "verdict": {"equal": true}, "errored": null}),
            0,
        );
        assert_eq!((r.id.as_str(), r.problem.as_str(), r.correct), ("7", "q", Some(true)));
        let r = Record::from_json(&json!({"correct": true, "errored": "timeout"}), 3);
        assert_eq!((r.id.as_str(), r.correct, r.error.as_deref()), ("#3", None, Some("timeout")));
        let r = Record::from_json(&json!({"verdict": false, "usage": {"prompt_tokens": 5, "usd": 0.5}}), 0);
        assert_eq!((r.correct, r.usage.input_tokens, r.usage.usd), (Some(false), 5, 0.5));
    }

    #[test]
    fn lenient_actions() {
        let a = Action::from_event(&json!({"action": "add_function", "name": "f"}), true);
        assert_eq!((a.action.as_deref(), a.function.as_deref()), (Some("add_function"), Some("f")));
        let ev =
            json!({"action": {"name": "revise_function", "arguments": "{\"name\": \"g\"}"}, "error": "no g"});
        let a = Action::from_event(&ev, false);
        assert_eq!(
            (a.action.as_deref(), a.function.as_deref(), a.reason.as_deref()),
            (Some("revise_function"), Some("g"), Some("no g"))
        );
    }

    #[test]
    fn tally_excludes_errored() {
        let rs: Vec<Record> = [json!({"correct": true}), json!({"correct": false}), json!({"errored": "x"})]
            .iter()
            .map(|v| Record::from_json(v, 0))
            .collect();
        assert_eq!(Tally::of(&rs), Tally { correct: 1, total: 3, errored: 1, rate: Some(0.5) });
    }
}
