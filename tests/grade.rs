//! The answer checker end to end: the equivalence table (both directions), the math-verify timeout,
//! and the `agentopt grade` command line.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentopt::grading::{Grader, Verdict};
use agentopt::record::GradedBy;
use assert_cmd::Command;
use serde_json::Value;

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() { venv } else { agentopt::exec::find_python() }
}

fn table() -> Vec<(String, String, bool)> {
    let text = include_str!("data/equivalence.jsonl");
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["given"].as_str().unwrap().into(), v["reference"].as_str().unwrap().into(), v["equal"] == true)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivalence_table_both_directions() {
    let grader = Grader::new(python());
    let cases = table();
    assert!(cases.len() >= 80, "the table holds {} cases", cases.len());
    let mut checks = tokio::task::JoinSet::new();
    for (given, reference, want) in cases {
        for (g, r) in [(given.clone(), reference.clone()), (reference, given)] {
            let grader = grader.clone();
            checks.spawn(async move {
                let v = grader.check(&g, &r).await;
                (g, r, want, v)
            });
        }
    }
    let mut failures = Vec::new();
    while let Some(result) = checks.join_next().await {
        let (g, r, want, v) = result.unwrap();
        if v.equal != want || matches!(v.decided_by, GradedBy::Timeout | GradedBy::Unavailable) {
            failures.push(format!("{g:?} vs {r:?}: want equal={want}, got {v:?}"));
        }
    }
    failures.sort();
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn fast_path_decides_without_python() {
    // A missing interpreter proves these never reach math-verify.
    let grader = Grader::new(PathBuf::from("/nonexistent/python"));
    let check = |g: &'static str, r: &'static str| {
        let grader = grader.clone();
        async move { grader.check(g, r).await }
    };
    let v = |equal: bool, by: &str| Verdict { equal, decided_by: by.parse().unwrap() };
    assert_eq!(check("5", "5").await, v(true, "exact"));
    assert_eq!(check("5", "7").await, v(false, "numeric"));
    assert_eq!(check("\\frac12", "0.5").await, v(true, "numeric"));
    assert_eq!(check("x = 3", "3").await, v(true, "normalized"));
    assert_eq!(check("x = \\frac72", "3.5").await, v(true, "numeric"));
    assert_eq!(check("(1,2)", "(2,1)").await, v(false, "structure"));
    assert_eq!(check("\\{1,2\\}", "\\{2,1\\}").await, v(true, "structure"));
    assert_eq!(check("\\text{(B)}", "B").await, v(true, "normalized"));
    let prose = "I tried several approaches to this problem.\nNone of them worked out, and I could not find \
                 the value, so I will stop here without giving a final answer.";
    assert_eq!(check(prose, "5").await, v(false, "no_answer"));
    assert_eq!(check("\\boxed{}", "5").await, v(false, "no_answer"));
    assert_eq!(check("x^2", "y^2").await, v(false, "unavailable"));
}

#[tokio::test]
async fn a_hung_case_is_killed_and_the_next_one_still_works() {
    let grader = Grader::with_timeout(python(), Duration::from_secs(3));
    let symbolic = Verdict { equal: true, decided_by: GradedBy::MathVerify };
    // Warm a worker so the deadline measures the case, not Python's start-up.
    assert_eq!(grader.check("2x+1", "1+2x").await, symbolic);
    let start = Instant::now();
    // sympy grinds on this factorial forever; only the kill ends it.
    let v = grader.check("(10^{10^{8}})!", "\\sqrt{7}").await;
    assert_eq!(v, Verdict { equal: false, decided_by: GradedBy::Timeout });
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    assert_eq!(grader.check("x^2", "x \\cdot x").await, symbolic);
}

fn agentopt() -> Command {
    let mut cmd = Command::cargo_bin("agentopt").unwrap();
    cmd.env("AGENTOPT_PYTHON", python());
    cmd
}

#[test]
fn cli_grades_one_pair() {
    agentopt().args(["grade", "\\frac{2}{4}", "0.5"]).assert().success().stdout("equal\n");
    agentopt().args(["grade", "5", "7"]).assert().success().stdout("not equal\n");
    let out = agentopt().args(["grade", "--json", "x=3", "3"]).assert().success().get_output().stdout.clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"given": "x=3", "reference": "3", "equal": true, "decided_by": "normalized"})
    );
}

#[test]
fn cli_grades_a_file_of_cases_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.jsonl");
    let mut lines = Vec::new();
    for (i, (g, r, _)) in table().into_iter().enumerate() {
        lines.push(serde_json::json!({"given": g, "reference": r, "n": i, "note": "kept"}).to_string());
    }
    lines.insert(3, String::new()); // blank lines are skipped
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = agentopt().args(["grade", "--cases"]).arg(&path).assert().success().get_output().stdout.clone();
    let out = String::from_utf8(out).unwrap();
    let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Each line comes back as written, with the verdict appended.
    let inputs: Vec<&String> = lines.iter().filter(|l| !l.is_empty()).collect();
    for (input, output) in inputs.iter().zip(out.lines()) {
        assert!(output.starts_with(&input[..input.len() - 1]), "{input} -> {output}");
    }
    let want = table();
    assert_eq!(rows.len(), want.len());
    for (i, (row, (g, r, equal))) in rows.iter().zip(want).enumerate() {
        assert_eq!((row["n"].as_u64(), row["note"].as_str()), (Some(i as u64), Some("kept")));
        assert_eq!((row["given"].as_str(), row["reference"].as_str()), (Some(g.as_str()), Some(r.as_str())));
        assert_eq!(row["equal"], equal, "{row}");
        assert!(row["decided_by"].is_string());
    }
}

#[test]
fn cli_names_the_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "{\"given\": \"1\", \"reference\": \"1\"}\n{\"given\": \"2\"}\n").unwrap();
    let out = agentopt().args(["grade", "--cases"]).arg(&path).assert().code(2).get_output().clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.jsonl` line 2") && err.contains("`reference`"), "{err}");
    std::fs::write(&path, "not json\n").unwrap();
    let out = agentopt().args(["grade", "--cases"]).arg(&path).assert().code(2).get_output().clone();
    assert!(String::from_utf8(out.stderr).unwrap().contains("line 1: not valid JSON"));
}

/// Every MATH500 reference against its own solution's last box and against re-spellings of itself
/// (inside a sentence, `\dfrac`, no spaces): all must be equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn math500_references_equal_their_respellings() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/math/test.jsonl");
    let path = if path.exists() { path } else { PathBuf::from("/work/shared/datasets/math/test.jsonl") };
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping: MATH500 is not available");
        return;
    };
    let grader = Grader::new(python());
    let mut checks = tokio::task::JoinSet::new();
    for line in text.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let answer = row["answer"].as_str().unwrap().to_string();
        let variants = [
            row["solution"].as_str().unwrap().to_string(),
            format!("The final answer is $\\boxed{{{answer}}}$."),
            answer.replace("\\frac", "\\dfrac"),
            answer.replace(' ', ""),
        ];
        for given in variants {
            let (grader, reference) = (grader.clone(), answer.clone());
            checks.spawn(async move { (grader.check(&given, &reference).await, given, reference) });
        }
    }
    let mut failures = Vec::new();
    while let Some(done) = checks.join_next().await {
        let (verdict, given, reference) = done.unwrap();
        if !verdict.equal {
            failures.push(format!("{given:?} vs {reference:?}: {verdict:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
