//! `agentopt runs report`: one self-contained HTML file per run (inline CSS and SVG, no script, no
//! network) with the score per epoch, before/after rates per subject with 95% intervals, the problems
//! each epoch fixed or broke, the function changes per epoch, and token and cost totals.

pub mod html;
pub mod svg;

use std::collections::{BTreeMap, BTreeSet};

use html::{code_block, diff_block, escape, fill};
use svg::{BarGroup, ScorePoint};

use crate::functions::Registry;
use crate::inspect::diff::diff_registries;
use crate::inspect::run_data::{ActionOutcome, Epoch, Run, Usage};
use crate::inspect::table::signature;
use crate::record::{ConversationRecord as Record, Score};

const TEMPLATE: &str = include_str!("template.html");
const STYLE: &str = include_str!("style.css");

/// The whole report as one HTML document.
pub fn render(run: &Run) -> String {
    let mut body = String::new();
    body.push_str(&header(run));
    body.push_str("<h2 id=\"score\">Training score per epoch</h2>\n");
    let points: Vec<ScorePoint> = run
        .epochs
        .iter()
        // An undecided epoch is still running: its score so far is not a result yet.
        .filter(|e| e.decision.is_some())
        .filter_map(|e| Some(ScorePoint { epoch: e.epoch, score: e.score?, accepted: e.accepted() }))
        .collect();
    if points.is_empty() {
        body.push_str("<p class=\"muted\">No scored epoch yet.</p>\n");
    } else {
        body.push_str(&svg::score_plot(&points));
    }
    body.push_str(&epoch_table(run));
    body.push_str(&candidates_section(run));
    body.push_str(&eval_section(run));
    body.push_str(&fixed_broke_section(run));
    body.push_str(&function_changes_section(run));
    body.push_str(&actions_section(run));
    body.push_str(&learned_section(run));
    body.push_str(&usage_section(run));
    page(&format!("agentopt run {}", run.name), &body)
}

/// A self-contained report page (no script, nothing fetched) with this title and body HTML.
pub fn page(title: &str, body: &str) -> String {
    fill(TEMPLATE, &[("title", &escape(title)), ("style", STYLE), ("body", body)])
}

fn pct(rate: Option<f64>) -> String {
    rate.map_or("–".into(), |r| format!("{:.1}%", 100.0 * r))
}

fn header(run: &Run) -> String {
    let before = run.eval_before.and_then(|t| t.rated());
    let after = run.eval_after.and_then(|t| t.rated());
    let best = run.best_epoch.map_or("–".into(), |e| e.to_string());
    let stopped = match (&run.stop_reason, run.stopped_early) {
        (Some(reason), _) => format!(" · stopped: {}", escape(&reason.to_string())),
        (None, Some(true)) => " · stopped early".to_string(),
        _ => String::new(),
    };
    let card = |value: &str, label: &str| {
        format!(
            "<div class=\"card\"><div class=\"value\">{}</div><div class=\"label\">{}</div></div>",
            escape(value),
            escape(label)
        )
    };
    let mut out = format!(
        "<h1>Run {}</h1>\n<p class=\"muted\">{} · {} epoch(s) · best epoch {}{}</p>\n<div class=\"cards\">",
        escape(&run.name),
        escape(&run.status),
        run.epochs.len(),
        escape(&best),
        stopped
    );
    out.push_str(&card(&format!("{} → {}", pct(before), pct(after)), "test success, before → after"));
    out.push_str(&card(&pct(run.best_score()), "best training score"));
    out.push_str(&card(&run.best_functions.len().to_string(), "learned functions"));
    out.push_str(&card(&format!("${:.4}", run.usage.usd), "total cost"));
    out.push_str(&card(&format!("{}", run.usage.input_tokens + run.usage.output_tokens), "tokens"));
    out.push_str("</div>\n");
    if let Some(info) = &run.info {
        let pretty = serde_json::to_string_pretty(info).unwrap_or_default();
        out.push_str(&format!(
            "<details><summary>Configuration (run.json)</summary><pre>{}</pre></details>\n",
            escape(&pretty)
        ));
    }
    for w in &run.warnings {
        out.push_str(&format!("<p class=\"muted\">warning: {}</p>\n", escape(w)));
    }
    out
}

fn epoch_table(run: &Run) -> String {
    // A validation column only for runs with a validation split.
    let has_val = run.epochs.iter().any(|e| e.val.is_some());
    let val_head = if has_val { "<th>validation</th>" } else { "" };
    let mut out = format!(
        "<h2 id=\"epochs\">Epochs</h2>\n<table class=\"epochs\"><thead><tr><th>epoch</th><th>score</th><th>correct</th>{val_head}<th>decision</th>\
         <th>applied</th><th>rejected</th><th>cost</th><th>functions</th></tr></thead><tbody>\n",
    );
    for e in &run.epochs {
        let class = match e.decision {
            None => "muted",
            Some(_) if e.accepted() => "accept",
            Some(_) => "rollback",
        };
        let best = if Some(e.epoch) == run.best_epoch { " ★" } else { "" };
        let ci = e.tally.map_or(String::new(), |t| t.ci_text());
        let val = match (has_val, e.val) {
            (false, _) => String::new(),
            (true, None) => "<td class=\"num\">–</td>".into(),
            (true, Some(v)) => format!(
                "<td class=\"num\">{} ({}{})</td>",
                v.rated().map_or("–".into(), |r| format!("{r:.3}")),
                v.scored_text(),
                v.ci_text()
            ),
        };
        out.push_str(&format!(
            "<tr><td class=\"num\">{:03}{best}</td><td class=\"num\">{}</td><td class=\"num\">{}{}</td>{val}\
             <td class=\"{class}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">${:.4}</td><td>{}</td></tr>\n",
            e.epoch,
            e.score.map_or("–".into(), |s| format!("{s:.3}")),
            e.tally.map_or("–".into(), |t| t.scored_text()),
            escape(&ci),
            escape(&e.decision_text("running")),
            e.actions_applied,
            e.actions_rejected,
            e.cost(),
            escape(&e.functions.join(", "))
        ));
    }
    out.push_str("</tbody></table>\n");
    out
}

/// The candidates of steps with several proposals: the chosen one and the rejected, with their scores.
fn candidates_section(run: &Run) -> String {
    let candidates = crate::run_dir::RunDir::at(&run.dir).read_candidates(run.epochs.len());
    if candidates.is_empty() {
        return String::new();
    }
    let mut out = String::from("<h3>Candidates (--proposals)</h3>\n<ul>\n");
    for (epoch, list) in &candidates {
        out.push_str(&format!(
            "<li>epoch {epoch:03}: {}</li>\n",
            escape(&crate::record::candidates_text(list))
        ));
    }
    out.push_str("</ul>\n");
    out
}

fn eval_section(run: &Run) -> String {
    let mut out = String::from("<h2 id=\"eval\">Test success before and after</h2>\n");
    if run.before.is_empty() && run.after.is_empty() {
        let line = |t: Option<Score>| {
            t.map_or("–".into(), |t| format!("{}/{} ({})", t.correct, t.scored(), pct(t.rated())))
        };
        if run.eval_before.is_none() && run.eval_after.is_none() {
            out.push_str("<p class=\"muted\">No evaluation in this run.</p>\n");
        } else {
            out.push_str(&format!(
                "<p>before {} · after {}</p>\n",
                escape(&line(run.eval_before)),
                escape(&line(run.eval_after))
            ));
        }
        return out;
    }
    // Group by subject; problems without one fall in "(none)". "all" comes first.
    let by_subject = |records: &[Record]| {
        let mut m: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for r in records {
            let Some(ok) = r.outcome.verdict() else { continue };
            for key in ["all".to_string(), r.subject.clone().unwrap_or_else(|| "(none)".into())] {
                let slot = m.entry(key).or_default();
                slot.0 += ok as usize;
                slot.1 += 1;
            }
        }
        m
    };
    let before = by_subject(&run.before);
    let after = by_subject(&run.after);
    let mut labels: Vec<String> =
        before.keys().chain(after.keys()).cloned().collect::<BTreeSet<_>>().into_iter().collect();
    labels.retain(|l| l != "all");
    labels.insert(0, "all".into());
    // With a single subject, "all" says it already.
    if labels.len() == 2 {
        labels.truncate(1);
    }
    let groups: Vec<BarGroup> = labels
        .iter()
        .map(|l| BarGroup { label: l.clone(), before: before.get(l).copied(), after: after.get(l).copied() })
        .collect();
    out.push_str(&svg::rate_bars(&groups));
    let errored = |rs: &[Record]| rs.iter().filter(|r| r.errored().is_some()).count();
    out.push_str(&format!(
        "<p class=\"muted\">Errored problems (infrastructure failures) are left out of the rates: {} before, {} after.</p>\n",
        errored(&run.before),
        errored(&run.after)
    ));
    out
}

fn problem_item(r: &Record, class: &str) -> String {
    let text: String = r.problem.chars().take(160).collect();
    let more = if r.problem.chars().count() > 160 { "…" } else { "" };
    format!(
        "<li class=\"{class}\"><code>{}</code> {}{more} <span class=\"muted\">(answer {}, reference {})</span></li>\n",
        escape(&r.id),
        escape(&text),
        escape(r.answer.as_deref().unwrap_or("–")),
        escape(&r.reference)
    )
}

/// The problems that went from wrong to right (fixed) and right to wrong (broken), as list items.
/// Errored problems are not compared: an outage says nothing about the functions.
fn verdict_changes(prev: &[Record], cur: &[Record]) -> (usize, String, usize, String) {
    let before: BTreeMap<&str, bool> =
        prev.iter().filter_map(|r| Some((r.id.as_str(), r.outcome.verdict()?))).collect();
    let (mut n_fixed, mut fixed, mut n_broke, mut broke) = (0, String::new(), 0, String::new());
    for r in cur {
        match (before.get(r.id.as_str()), r.outcome.verdict()) {
            (Some(false), Some(true)) => {
                n_fixed += 1;
                fixed.push_str(&problem_item(r, "fixed"));
            }
            (Some(true), Some(false)) => {
                n_broke += 1;
                broke.push_str(&problem_item(r, "broke"));
            }
            _ => {}
        }
    }
    (n_fixed, fixed, n_broke, broke)
}

fn changes_block(title: &str, prev: &[Record], cur: &[Record]) -> Option<String> {
    let (n_fixed, fixed, n_broke, broke) = verdict_changes(prev, cur);
    if n_fixed + n_broke == 0 {
        return None;
    }
    let mut out = format!(
        "<h3>{}: <span class=\"fixed\">{n_fixed} fixed</span>, <span class=\"broke\">{n_broke} broken</span></h3>\n",
        escape(title)
    );
    for (n, items) in [(n_fixed, fixed), (n_broke, broke)] {
        if n > 0 {
            out.push_str(&format!("<ul class=\"problems\">{items}</ul>\n"));
        }
    }
    Some(out)
}

/// Problems whose verdict changed between each epoch and the best one before it (the registry the
/// epoch's was built from: a rolled-back epoch is nobody's base), and on the test set before → after.
fn fixed_broke_section(run: &Run) -> String {
    let mut out = String::from("<h2 id=\"changes\">Problems fixed and broken</h2>\n");
    let mut any = false;
    let mut best: Option<&Epoch> = None;
    for e in &run.epochs {
        if let Some(base) = best {
            let title = format!("Epoch {:03} vs best epoch {:03}", e.epoch, base.epoch);
            if let Some(block) = changes_block(&title, &base.records, &e.records) {
                out.push_str(&block);
                any = true;
            }
        }
        if best.is_none() || e.accepted() {
            best = Some(e);
        }
    }
    if let Some(block) = changes_block("Test set, after vs before", &run.before, &run.after) {
        out.push_str(&block);
        any = true;
    }
    if !any {
        out.push_str("<p class=\"muted\">No problem changed verdict.</p>\n");
    }
    out
}

/// Each epoch's registry against the best one before it: the registry the optimizer started from.
fn function_changes_section(run: &Run) -> String {
    let mut out = String::from("<h2 id=\"functions\">Function changes per epoch</h2>\n");
    let mut base: Option<&Registry> = None;
    let mut base_epoch: Option<usize> = None;
    for e in &run.epochs {
        let Some(reg) = &e.registry else { continue };
        match base {
            None => {
                out.push_str(&format!("<h3>Epoch {:03}: initial registry</h3>\n", e.epoch));
                if reg.functions.is_empty() {
                    out.push_str("<p class=\"muted\">No functions.</p>\n");
                }
                for f in &reg.functions {
                    out.push_str(&function_details(f, "initial"));
                }
            }
            Some(prev) => out.push_str(&epoch_diff(e, prev, base_epoch.unwrap_or(0), reg)),
        }
        if e.accepted() || base.is_none() {
            base = Some(reg);
            base_epoch = Some(e.epoch);
        }
    }
    if base.is_none() {
        out.push_str("<p class=\"muted\">No epoch registry found.</p>\n");
    }
    out
}

fn epoch_diff(e: &Epoch, prev: &Registry, prev_epoch: usize, reg: &Registry) -> String {
    let decision = escape(&e.decision.map_or("running".into(), |d| d.to_string()));
    let class = match e.decision {
        None => "muted",
        Some(_) if e.accepted() => "accept",
        Some(_) => "rollback",
    };
    let mut out = format!(
        "<h3>Epoch {:03} (<span class=\"{class}\">{decision}</span>) vs best epoch {:03}</h3>\n",
        e.epoch, prev_epoch
    );
    let diff = diff_registries(prev, reg);
    if diff.is_empty() {
        out.push_str("<p class=\"muted\">No change.</p>\n");
    }
    for f in &diff.added {
        out.push_str(&function_details(f, "added"));
    }
    for f in &diff.removed {
        out.push_str(&format!(
            "<p><span class=\"broke\">removed</span> <code>{}</code></p>\n",
            escape(&f.name)
        ));
    }
    for r in &diff.revised {
        out.push_str(&format!(
            "<details open><summary><span class=\"muted\">revised</span> <code>{}</code></summary>\n",
            escape(&signature(&r.new))
        ));
        if r.old.description != r.new.description {
            out.push_str(&diff_block(&r.old.description, &r.new.description));
        }
        if r.parameters_changed {
            out.push_str(&format!(
                "<p>parameters: <code>{}</code> → <code>{}</code></p>",
                escape(&signature(&r.old)),
                escape(&signature(&r.new))
            ));
        }
        if r.packages_changed {
            out.push_str(&format!(
                "<p>packages: {} → {}</p>",
                escape(&r.old.packages.join(", ")),
                escape(&r.new.packages.join(", "))
            ));
        }
        if r.old.code != r.new.code {
            out.push_str(&diff_block(&r.old.code, &r.new.code));
        }
        out.push_str("</details>\n");
    }
    out
}

fn function_details(f: &crate::functions::FunctionDef, what: &str) -> String {
    let packages = if f.packages.is_empty() {
        String::new()
    } else {
        format!(" · packages: {}", escape(&f.packages.join(", ")))
    };
    format!(
        "<details><summary><span class=\"fixed\">{what}</span> <code>{}</code></summary><p>{}{packages}</p>{}</details>\n",
        escape(&signature(f)),
        escape(&f.description),
        code_block(&f.code)
    )
}

/// The optimizer's actions as logged, grouped by the epoch whose registry their step built.
fn actions_section(run: &Run) -> String {
    let mut out = String::from("<h2 id=\"actions\">Optimizer actions</h2>\n");
    let mut any = false;
    for e in run.epochs.iter().filter(|e| !e.actions.is_empty()) {
        any = true;
        out.push_str(&format!("<h3>Step that built epoch {:03}</h3>\n<ul class=\"problems\">\n", e.epoch));
        for a in &e.actions {
            let class = if a.outcome == ActionOutcome::Applied { "fixed" } else { "broke" };
            let verdict = a.outcome;
            let reason = a.reason.as_deref().map(|r| format!(" — {}", escape(r))).unwrap_or_default();
            out.push_str(&format!(
                "<li><span class=\"{class}\">{verdict}</span> {} <code>{}</code>{reason}</li>\n",
                escape(&a.action),
                escape(a.function.as_deref().unwrap_or("?"))
            ));
        }
        out.push_str("</ul>\n");
    }
    if !any {
        out.push_str("<p class=\"muted\">No optimizer action was logged.</p>\n");
    }
    out
}

fn learned_section(run: &Run) -> String {
    let mut out = String::from("<h2 id=\"learned\">Learned functions (best registry)</h2>\n");
    match &run.best_registry {
        None => out.push_str("<p class=\"muted\">No best/registry.json yet.</p>\n"),
        Some(reg) if reg.functions.is_empty() => {
            out.push_str("<p class=\"muted\">No functions were kept.</p>\n")
        }
        Some(reg) => {
            for f in &reg.functions {
                out.push_str(&format!(
                    "<h3><code>{}</code></h3>\n<p>{}</p>\n",
                    escape(&signature(f)),
                    escape(&f.description)
                ));
                out.push_str(&code_block(&f.code));
            }
        }
    }
    out
}

fn usage_section(run: &Run) -> String {
    let mut out = String::from(
        "<h2 id=\"usage\">Tokens and cost</h2>\n<table><thead><tr><th>part</th><th>calls</th><th>input tokens</th>\
         <th>output tokens</th><th>cost</th></tr></thead><tbody>\n",
    );
    let row = |label: &str, u: &Usage| {
        format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">${:.4}</td></tr>\n",
            escape(label),
            u.calls,
            u.input_tokens,
            u.output_tokens,
            u.usd
        )
    };
    let sum = |rs: &[Record]| {
        let mut u = Usage::default();
        rs.iter().for_each(|r| u.add(&r.usage));
        u
    };
    let (mut train, mut optimizer) = (Usage::default(), Usage::default());
    run.epochs.iter().for_each(|e| {
        train.add(&e.usage);
        optimizer.add(&e.optimizer_usage);
    });
    out.push_str(&row("training conversations", &train));
    out.push_str(&row("optimizer steps", &optimizer));
    out.push_str(&row("evaluation before", &sum(&run.before)));
    out.push_str(&row("evaluation after", &sum(&run.after)));
    out.push_str(&row("run total", &run.usage));
    out.push_str("</tbody></table>\n");
    out
}
