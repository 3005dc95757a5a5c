//! `agentopt eval --compare A B`: two evaluations of the same problems compared problem by problem —
//! which problems B fixed and broke relative to A, each side's rate with its 95% interval, and the
//! exact sign test on the problems that changed (ties and problems errored on either side left out).

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use serde_json::json;

use super::bad_input;
use crate::record::{ConversationRecord, Score};
use crate::run_dir::{self, Phase, RunDir};
use crate::stats::sign_test_one_sided;

/// One side: what was named, where its records came from, and the records.
struct Side {
    path: std::path::PathBuf,
    records: Vec<ConversationRecord>,
}

/// The paired comparison of two sides.
#[derive(Debug, PartialEq)]
pub struct Comparison {
    /// Problems scored on both sides (by id).
    pub paired: usize,
    /// Scored higher by B / by A, in A's order: (id, A's score, B's score).
    pub fixed: Vec<(String, f64, f64)>,
    pub broken: Vec<(String, f64, f64)>,
    pub only_a: usize,
    pub only_b: usize,
    /// Problems errored on one side or both.
    pub errored: usize,
}

impl Comparison {
    pub fn of(a: &[ConversationRecord], b: &[ConversationRecord]) -> Comparison {
        let by_id: std::collections::HashMap<&str, &ConversationRecord> =
            b.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut c = Comparison { paired: 0, fixed: vec![], broken: vec![], only_a: 0, only_b: 0, errored: 0 };
        for ra in a {
            let Some(rb) = by_id.get(ra.id.as_str()) else {
                c.only_a += 1;
                continue;
            };
            let (Some(sa), Some(sb)) = (ra.score(), rb.score()) else {
                c.errored += 1;
                continue;
            };
            c.paired += 1;
            if sb > sa + 1e-9 {
                c.fixed.push((ra.id.clone(), sa, sb));
            } else if sa > sb + 1e-9 {
                c.broken.push((ra.id.clone(), sa, sb));
            }
        }
        let in_a: std::collections::HashSet<&str> = a.iter().map(|r| r.id.as_str()).collect();
        c.only_b = b.iter().filter(|r| !in_a.contains(r.id.as_str())).count();
        c
    }

    /// One-sided p-value of B being better than A.
    pub fn p_better(&self) -> f64 {
        sign_test_one_sided(self.fixed.len(), self.broken.len())
    }

    /// Two-sided p-value of a difference either way.
    pub fn p_two_sided(&self) -> f64 {
        let (f, b) = (self.fixed.len(), self.broken.len());
        (2.0 * sign_test_one_sided(f.max(b), f.min(b))).min(1.0)
    }
}

pub fn run(specs: &[String], runs_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let [a, b] = specs else {
        return Err(bad_input(anyhow!("--compare takes two evaluations: A B")));
    };
    let (a, b) = (side(a, runs_dir)?, side(b, runs_dir)?);
    let c = Comparison::of(&a.records, &b.records);
    if c.paired == 0 {
        return Err(bad_input(anyhow!(
            "`{}` and `{}` have no problem scored on both sides (by id): nothing to compare",
            a.path.display(),
            b.path.display()
        )));
    }
    let (sa, sb) = (Score::of(&a.records), Score::of(&b.records));
    let ids = |v: &[(String, f64, f64)]| v.iter().map(|(id, ..)| id.clone()).collect::<Vec<_>>();
    if json {
        println!(
            "{}",
            json!({
                "a": {"path": a.path, "score": sa}, "b": {"path": b.path, "score": sb},
                "paired": c.paired, "fixed": ids(&c.fixed), "broken": ids(&c.broken),
                "unchanged": c.paired - c.fixed.len() - c.broken.len(),
                "only_a": c.only_a, "only_b": c.only_b, "errored": c.errored,
                "p_value": c.p_better(), "p_two_sided": c.p_two_sided(),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    let line = |name: &str, side: &Side, s: &Score| {
        let ci = crate::stats::ci95_text(s.ci95, 3);
        println!(
            "{name}: {:.3} ({}/{} correct, {} errored{ci})  {}",
            s.rate,
            s.correct,
            s.total - s.errored,
            s.errored,
            side.path.display()
        );
    };
    line("A", &a, &sa);
    line("B", &b, &sb);
    println!(
        "paired:  {} problems scored on both sides ({} only in A, {} only in B, {} errored on a side)",
        c.paired, c.only_a, c.only_b, c.errored
    );
    println!(
        "changed: {} fixed by B, {} broken by B, {} unchanged",
        c.fixed.len(),
        c.broken.len(),
        c.paired - c.fixed.len() - c.broken.len()
    );
    if !(c.fixed.is_empty() && c.broken.is_empty()) {
        let rows: Vec<Vec<String>> = c
            .fixed
            .iter()
            .map(|r| (r, "fixed"))
            .chain(c.broken.iter().map(|r| (r, "broken")))
            .map(|((id, x, y), what)| {
                vec![id.clone(), format!("{x:.2}"), format!("{y:.2}"), what.to_string()]
            })
            .collect();
        print!("\n{}", crate::inspect::table::render(&["problem", "A", "B", "change"], &rows));
    }
    println!(
        "\nsign test on the changed problems: B better than A, one-sided p = {:.4}; a difference either way, two-sided p = {:.4}",
        c.p_better(),
        c.p_two_sided()
    );
    Ok(ExitCode::SUCCESS)
}

/// A record file, or a run's records: `RUN` (its evaluation after training), `RUN@before`,
/// `RUN@after`, `RUN@N` (epoch N's training records).
fn side(spec: &str, runs_dir: &Path) -> anyhow::Result<Side> {
    let path = Path::new(spec);
    if path.is_file() {
        let records = run_dir::read_lines(path).map_err(bad_input)?;
        return Ok(Side { path: path.to_path_buf(), records });
    }
    let (name, which) = spec.rsplit_once('@').unwrap_or((spec, "after"));
    let phase = match which {
        "after" => Phase::After,
        "before" => Phase::Before,
        n => Phase::Epoch(n.parse().map_err(|_| {
            bad_input(anyhow!("--compare `{spec}`: after `@` write before, after or an epoch number"))
        })?),
    };
    let run = RunDir::open(runs_dir, name)
        .map_err(|e| bad_input(anyhow!("--compare `{spec}`: not a record file, and {e}")))?;
    let path = run.conversations(phase);
    if !path.is_file() {
        return Err(bad_input(anyhow!(
            "--compare `{spec}`: the run has no {phase} records (`{}`)",
            path.display()
        )));
    }
    let records = run_dir::read_lines(&path).map_err(bad_input)?;
    Ok(Side { path, records })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, score: f64, errored: bool) -> ConversationRecord {
        let mut r: ConversationRecord = serde_json::from_value(serde_json::json!({
            "index": 0, "id": id, "problem": "q", "reference": "1", "answer": null, "correct": score >= 1.0,
            "score": score, "decided_by": "exact", "end": "answered", "turns": 1, "functions": [],
            "messages": [], "executions": [], "usage": {"calls": 0, "input_tokens": 0, "output_tokens": 0, "usd": 0.0},
            "duration_ms": 0
        }))
        .unwrap();
        if errored {
            r.outcome = crate::record::Outcome::Errored { reason: "boom".into() };
        }
        r
    }

    #[test]
    fn pairs_by_id_and_tests_the_changed_problems() {
        let a = [
            rec("p1", 0.0, false),
            rec("p2", 1.0, false),
            rec("p3", 0.0, false),
            rec("p4", 0.0, true),
            rec("p5", 1.0, false),
        ];
        let b = [
            rec("p3", 1.0, false),
            rec("p1", 1.0, false),
            rec("p2", 0.0, false),
            rec("p4", 1.0, false),
            rec("p6", 1.0, false),
        ];
        let c = Comparison::of(&a, &b);
        assert_eq!((c.paired, c.only_a, c.only_b, c.errored), (3, 1, 1, 1));
        assert_eq!(c.fixed.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["p1", "p3"]);
        assert_eq!(c.broken.len(), 1);
        // 2 fixed, 1 broken: P(X ≥ 2 | n = 3) = 4/8.
        assert!((c.p_better() - 0.5).abs() < 1e-12);
        assert!((c.p_two_sided() - 1.0).abs() < 1e-12);
    }
}
