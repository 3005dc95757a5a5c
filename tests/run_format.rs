//! The run directory as a contract: a run written by the previous format (tests/fixtures/format-1,
//! made by the binary before `format_version`) is read by today's types — every file, every line —
//! and shown, reported and compared by the real binary; a line that is not what its file holds is a
//! warning naming the file and line, never silently dropped.

use std::path::{Path, PathBuf};

use agentopt::record::{Event, GradedBy, Outcome};
use agentopt::run_dir::{Phase, RunDir};
use agentopt::trainer::rule::Decision;
use agentopt::trainer::state::Progress;
use assert_cmd::Command;
use serde_json::Value;

fn format_1() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1")
}

/// A copy of the format-1 folder (runs/v1 and its datasets) to work in.
fn copy() -> tempfile::TempDir {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&format_1(), tmp.path());
    tmp
}

fn agentopt(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").env_remove("OAI_CONFIG_LIST");
    cmd
}

fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("stdout is one JSON document")
}

#[test]
fn every_file_of_a_format_1_run_reads_into_todays_types() {
    let run = RunDir::at(&format_1().join("runs/v1"));
    let info = run.read_info().unwrap();
    assert_eq!((info.format_version, info.split.train.len(), info.split.val.len()), (1, 3, 2));
    let summary = run.read_summary().unwrap().expect("a completed run has a summary");
    let mut warnings = Vec::new();
    let events = run.read_events(&mut warnings).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(events.len(), 37, "every line is an event");
    // The optimizer's step events carry their epoch as a field.
    assert!(events.iter().any(|e| matches!(e, Event::ActionRejected { epoch: 1, attempt: 1, .. })));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ActionApplied { epoch: 1, action, .. } if action.name() == "add"))
    );
    // Resume's replay rebuilds exactly the history the summary holds.
    let progress = Progress::replay(&events);
    assert_eq!(progress.history, summary.history);
    assert_eq!(progress.steps_done, vec![1, 2]);
    let decisions: Vec<Decision> = summary.history.iter().map(|h| h.decision).collect();
    assert_eq!(decisions, [Decision::Accept, Decision::Accept, Decision::Rollback]);

    let mut phases = vec![Phase::Before, Phase::After];
    for n in 0..3 {
        phases.extend([Phase::Epoch(n), Phase::Val(n)]);
    }
    for phase in phases {
        let records = run.read_records(phase).unwrap();
        assert!(!records.is_empty(), "{phase}");
        // Format 1 did not record subjects or levels.
        assert!(records.iter().all(|r| r.subject.is_none() && r.level.is_none()), "{phase}");
    }
    let before = run.read_records(Phase::Before).unwrap();
    assert_eq!(before[0].outcome, Outcome::Incorrect { score: 0.0 });
    assert_eq!((before[1].outcome.clone(), before[1].graded_by), (Outcome::Correct, GradedBy::Exact));
    assert_eq!(before[1].executions.len(), 1, "the Python block it ran");
}

#[test]
fn the_binary_shows_reports_and_compares_a_format_1_run() {
    let dir = copy();
    let shown = json_of(agentopt(dir.path()).args(["runs", "show", "v1", "--json"]));
    assert_eq!(shown["warnings"], serde_json::json!([]));
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["best_epoch"], 1);
    assert_eq!(shown["epochs"][2]["decision"], "rollback");
    assert_eq!(shown["epochs"][1]["actions"][0]["outcome"], "rejected");
    assert_eq!(shown["epochs"][1]["actions"][1]["function"], "add");
    assert_eq!(shown["epochs"][1]["val"]["total"], 2);

    agentopt(dir.path()).args(["runs", "report", "v1"]).assert().success();
    let html = std::fs::read_to_string(dir.path().join("runs/v1/report.html")).unwrap();
    // Subjects come from the datasets run.json names: format-1 records lack them.
    assert!(html.contains("Prealgebra"), "the per-subject bars");

    let compared =
        agentopt(dir.path()).args(["eval", "--compare", "v1@before", "v1", "--json"]).assert().success();
    let stdout = String::from_utf8_lossy(&compared.get_output().stdout).to_string();
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["fixed"].as_array().map(Vec::len), Some(1), "{last}");
}

#[test]
fn a_line_that_is_not_an_event_is_a_warning_naming_file_and_line() {
    let dir = copy();
    let events = dir.path().join("runs/v1/events.jsonl");
    let mut text = std::fs::read_to_string(&events).unwrap();
    text.push_str(
        "{\"event\": \"decision\", \"epoch\": 3}\n{\"event\": \"run_started\", \"resumed\": true}\n",
    );
    std::fs::write(&events, text).unwrap();
    let shown = json_of(agentopt(dir.path()).args(["runs", "show", "v1", "--json"]));
    let warnings = shown["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = warnings[0].as_str().unwrap();
    assert!(warning.contains("events.jsonl` line 38") && warning.contains("missing field"), "{warning}");
    let out = agentopt(dir.path()).args(["runs", "show", "v1"]).assert().success().get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 38"), "the text view warns on stderr:\n{stderr}");
}
