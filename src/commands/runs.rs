//! `agentopt runs list|show RUN|report RUN`: past runs, one run's epoch table, and its HTML report.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use super::bad_input;
use crate::cli::{RunsAction, RunsArgs};
use crate::inspect::run_data::{Run, list_runs, load_run, load_run_overview};
use crate::inspect::{resolve_run, table};
use crate::record::Score;

pub async fn run(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let out = match &args.action {
        RunsAction::List => list(&args)?,
        RunsAction::Show { run } => {
            let run = load(run, &args)?;
            if args.json { json_text(&show_json(&run)) } else { show_text(&run) }
        }
        RunsAction::Report { run, out } => {
            let run = load(run, &args)?;
            let path = report_path(out.as_deref(), &run)?;
            let html = crate::report::render(&run);
            crate::fsio::write_atomic(&path, html.as_bytes())
                .with_context(|| format!("Failed to write the report `{}`", path.display()))?;
            if args.json {
                json_text(&json!({"run": run.name, "report": path}))
            } else {
                format!("wrote {}\n", path.display())
            }
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Where `runs report` writes: the run's `report.html` by default; `--out DIR` (an existing
/// directory, or a path ending in `/`) gets `DIR/RUN.html`. A directory that does not exist is an
/// error, not something to create: a typo must not plant directories elsewhere.
fn report_path(out: Option<&std::path::Path>, run: &Run) -> anyhow::Result<std::path::PathBuf> {
    let Some(out) = out else { return Ok(run.dir.join("report.html")) };
    let as_dir = out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/');
    let path = if as_dir { out.join(format!("{}.html", run.name)) } else { out.to_path_buf() };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !parent.is_dir() {
        return Err(bad_input(anyhow::anyhow!(
            "--out `{}`: the directory `{}` does not exist",
            out.display(),
            parent.display()
        )));
    }
    Ok(path)
}

fn load(reference: &str, args: &RunsArgs) -> anyhow::Result<Run> {
    let dir = resolve_run(reference, &args.runs_dir).map_err(bad_input)?;
    let run = load_run(&dir).map_err(bad_input)?;
    for w in &run.warnings {
        tracing::warn!("{w}");
    }
    Ok(run)
}

fn list(args: &RunsArgs) -> anyhow::Result<String> {
    let mut runs = Vec::new();
    for dir in list_runs(&args.runs_dir).map_err(bad_input)? {
        match load_run_overview(&dir) {
            Ok(run) => runs.push(run),
            // One unreadable run should not hide the others.
            Err(e) => tracing::warn!("skipping `{}`: {e}", dir.display()),
        }
    }
    if args.json {
        let items: Vec<Value> = runs.iter().map(summary_json).collect();
        return Ok(json_text(&json!({"runs_dir": args.runs_dir, "runs": items})));
    }
    if runs.is_empty() {
        return Ok(format!("no runs in {}\n", args.runs_dir.display()));
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.status.clone(),
                r.epochs.len().to_string(),
                rate(r.best_score()),
                before_after(r.eval_before, r.eval_after),
                format!("${:.4}", r.usage.usd),
            ]
        })
        .collect();
    Ok(table::render(&["run", "status", "epochs", "best", "before -> after", "cost"], &rows))
}

fn summary_json(run: &Run) -> Value {
    json!({
        "run": run.name, "dir": run.dir, "status": run.status, "epochs_run": run.epochs.len(),
        "best_epoch": run.best_epoch, "best_score": run.best_score(), "stopped_early": run.stopped_early,
        "stop_reason": run.stop_reason,
        "eval": {"before": run.eval_before, "after": run.eval_after}, "functions": run.best_functions,
        "usage": run.usage,
    })
}

fn show_json(run: &Run) -> Value {
    let mut v = summary_json(run);
    v["epochs"] = serde_json::to_value(&run.epochs).unwrap_or(Value::Null);
    v["warnings"] = json!(run.warnings);
    v
}

fn show_text(run: &Run) -> String {
    let mut out = format!("run {} ({}) in {}\n", run.name, run.status, run.dir.display());
    let best = run.best_epoch.map_or("-".to_string(), |e| e.to_string());
    let stopped = match (run.stopped_early, &run.stop_reason) {
        (_, Some(reason)) => format!(", stopped: {reason}"),
        (Some(true), None) => ", stopped early".to_string(),
        _ => String::new(),
    };
    out.push_str(&format!("{} epoch(s), best epoch {best}{stopped}\n", run.epochs.len()));
    // Runs from before tasks record none: the math task.
    let task = run.info.as_ref().map(|i| i.task.clone()).unwrap_or_default();
    out.push_str(&format!("task: {}\n\n", task.describe()));
    // A validation column only for runs with a validation split.
    let has_val = run.epochs.iter().any(|e| e.val.is_some());
    let rows: Vec<Vec<String>> = run
        .epochs
        .iter()
        .map(|e| {
            let mark = if Some(e.epoch) == run.best_epoch { "*" } else { "" };
            let mut row = vec![
                format!("{:03}{mark}", e.epoch),
                rate(e.score),
                e.tally.map_or("-".into(), |t| t.scored_text()),
                e.tally.and_then(|t| t.interval()).map_or("-".into(), |[lo, hi]| format!("{lo:.2}–{hi:.2}")),
            ];
            if has_val {
                row.push(e.val.map_or("-".into(), |v| format!("{} ({})", rate(v.rated()), v.scored_text())));
            }
            row.extend([
                e.decision_text("-"),
                e.actions_applied.to_string(),
                e.actions_rejected.to_string(),
                format!("${:.4}", e.cost()),
                if e.functions.is_empty() { "(none)".into() } else { e.functions.join(", ") },
            ]);
            row
        })
        .collect();
    let mut header = vec!["epoch", "score", "correct", "95% CI"];
    if has_val {
        header.push("val");
    }
    header.extend(["decision", "applied", "rejected", "cost", "functions"]);
    out.push_str(&table::render(&header, &rows));
    let candidates = crate::run_dir::RunDir::at(&run.dir).read_candidates(run.epochs.len());
    if !candidates.is_empty() {
        out.push_str("\ncandidates (--proposals; the others were rejected):\n");
        for (epoch, list) in &candidates {
            out.push_str(&format!("  epoch {epoch:03}: {}\n", crate::record::candidates_text(list)));
        }
    }
    out.push_str(&format!(
        "\neval before: {}\neval after:  {}\n",
        tally(run.eval_before),
        tally(run.eval_after)
    ));
    let u = &run.usage;
    out.push_str(&format!(
        "usage: {} calls, {} input + {} output tokens, ${:.4}\n",
        u.calls, u.input_tokens, u.output_tokens, u.usd
    ));
    out.push_str(&format!(
        "learned functions: {}\n",
        if run.best_functions.is_empty() { "(none)".into() } else { run.best_functions.join(", ") }
    ));
    out
}

fn rate(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.3}"))
}

fn tally(t: Option<Score>) -> String {
    match t {
        None => "-".into(),
        Some(t) => {
            format!(
                "{}/{} correct ({}), {} errored{}",
                t.correct,
                t.scored(),
                rate(t.rated()),
                t.errored,
                t.ci_text()
            )
        }
    }
}

fn before_after(b: Option<Score>, a: Option<Score>) -> String {
    match (b, a) {
        (None, None) => "-".into(),
        (b, a) => format!("{} -> {}", rate(b.and_then(|t| t.rated())), rate(a.and_then(|t| t.rated()))),
    }
}

fn json_text(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}
