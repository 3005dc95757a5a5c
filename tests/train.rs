//! End-to-end tests of `agentopt train`, `eval` and `resume`: the real binary against a scripted
//! OpenAI-compatible server, on temp directories, through scenarios with known outcomes.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Reply, Server, call, text};

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// The binary, run in `dir` (so runs/, functions/ and .cache/ land there), with no ambient config.
fn agentopt(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir)
        .env_remove("OAI_CONFIG_LIST")
        .env_remove("OPENAI_API_KEY")
        .env("AGENTOPT_PYTHON", python())
        .timeout(Duration::from_secs(120));
    cmd
}

fn run_json(out: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output; stderr: {}", String::from_utf8_lossy(&out.stderr)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// "What is A+B?" → (A, B).
fn operands(problem: &str) -> (i64, i64) {
    let expr = problem.trim_start_matches("What is ").split('?').next().unwrap();
    let (a, b) = expr.split_once('+').unwrap();
    (a.trim().parse().unwrap(), b.trim().parse().unwrap())
}

/// The scripted assistant: uses `add` when offered (and boxes what it returned), solves "easy"
/// problems alone, gets the others wrong; problems marked BROKEN get an HTTP 400.
fn assistant(body: &Value) -> Reply {
    let problem = support::problem(body);
    if problem.contains("BROKEN") {
        return Reply::Status(400, r#"{"error": {"message": "bad request"}}"#.into());
    }
    let last = support::last(body);
    if last["role"] == "tool" {
        let result = last["content"].as_str().unwrap_or("").trim().to_string();
        return text(format!("The function says {result}, so the answer is \\boxed{{{result}}}."));
    }
    let (a, b) = operands(&problem);
    if support::tools(body).contains(&"add".to_string()) {
        return call("add", json!({"a": a, "b": b}));
    }
    if problem.contains("easy") {
        return text(format!("```python\nprint({a} + {b})\n```"));
    }
    text("I believe the answer is \\boxed{0}.")
}

/// Replies to code output by boxing it (the "easy" path runs real Python in the sandbox).
fn assistant_with_code(body: &Value) -> Reply {
    let last = support::last(body);
    if last["role"] == "user" && body["messages"].as_array().unwrap().len() > 2 {
        let output = last["content"].as_str().unwrap_or("").trim().to_string();
        return text(format!("\\boxed{{{output}}}"));
    }
    assistant(body)
}

fn add_function(code: &str) -> Value {
    json!({"name": "add", "description": "Adds two integers.",
           "arguments": "{\"a\": {\"type\": \"integer\"}, \"b\": {\"type\": \"integer\"}}",
           "packages": "", "code": code})
}

const GOOD_ADD: &str = "def add(a, b):\n    return a + b\n";
const BAD_ADD: &str = "def add(a, b):\n    return a - b\n";

/// Counts optimizer steps: a step's first request has just the system and state messages.
fn step_of(body: &Value, steps: &AtomicUsize) -> (usize, bool) {
    let first = support::messages(body).len() == 2;
    if first {
        (steps.fetch_add(1, Ordering::SeqCst), true)
    } else {
        (steps.load(Ordering::SeqCst) - 1, false)
    }
}

fn datasets(dir: &Path) {
    support::dataset(
        &dir.join("train.jsonl"),
        &[
            ("t1", "What is 1+2? (easy)", "3"),
            ("t2", "What is 20+22?", "42"),
            ("t3", "What is 5+5? (easy)", "10"),
            ("t4", "What is 7+8?", "15"),
        ],
    );
    support::dataset(
        &dir.join("test.jsonl"),
        &[("s1", "What is 2+2? (easy)", "4"), ("s2", "What is 30+3?", "33"), ("s3", "What is 9+9?", "18")],
    );
}

fn train_args(server: &Server) -> Vec<String> {
    ["train", "--train", "train.jsonl", "--test", "test.jsonl", "--config"]
        .iter()
        .map(|s| s.to_string())
        .chain([server.config.display().to_string()])
        .collect()
}

/// Accept, TERMINATE, tie rolled back, early stop, a learned function fixing the test split, export,
/// eval of the learned registry, and no secret in anything written.
#[tokio::test(flavor = "multi_thread")]
async fn learns_a_function_that_fixes_the_test_split() {
    let dir = tempfile::tempdir().unwrap();
    datasets(dir.path());
    let steps = Arc::new(AtomicUsize::new(0));
    let s = steps.clone();
    let server = Server::start(dir.path(), Duration::ZERO, move |body| {
        if !support::is_optimizer(body) {
            return assistant_with_code(body);
        }
        match step_of(body, &s) {
            (0, true) => call("add_function", add_function(GOOD_ADD)),
            _ => text("TERMINATE"),
        }
    })
    .await;
    let out = agentopt(dir.path())
        .args(train_args(&server))
        .args(["--run", "learn", "--epochs", "5", "--patience", "1", "--export", "adder", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let summary = run_json(&out);
    let decisions: Vec<_> = summary["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["score"].as_f64().unwrap(), h["decision"].clone()))
        .collect();
    assert_eq!(decisions, vec![(0.5, json!("accept")), (1.0, json!("accept")), (1.0, json!("rollback"))]);
    assert_eq!(summary["epochs_run"], 3);
    assert_eq!(summary["stopped_early"], true);
    assert_eq!(summary["best_epoch"], 1);
    assert_eq!(summary["functions"], json!(["add"]));
    let before = &summary["eval"]["before"];
    assert_eq!(
        (before["correct"].clone(), before["total"].clone(), before["rate"].clone()),
        (json!(1), json!(3), json!(1.0 / 3.0))
    );
    // Wilson's 95% interval for 1 of 3.
    assert!((before["ci95"][0].as_f64().unwrap() - 0.0615).abs() < 1e-3, "{before}");
    assert!((before["ci95"][1].as_f64().unwrap() - 0.7923).abs() < 1e-3, "{before}");
    assert_eq!(summary["eval"]["after"]["rate"], 1.0);
    assert!(summary["usage"]["usd"].as_f64().unwrap() > 0.0);

    let run = dir.path().join("runs/learn");
    for file in [
        "run.json",
        "events.jsonl",
        "summary.json",
        "best/registry.json",
        "eval/before.jsonl",
        "eval/after.jsonl",
        "epochs/000/registry.json",
        "epochs/000/conversations.jsonl",
        "epochs/002/conversations.jsonl",
    ] {
        assert!(run.join(file).is_file(), "missing {file}");
    }
    assert_eq!(read(&run.join("run.json"))["status"], "completed");
    assert_eq!(read(&run.join("best/registry.json"))["functions"][0]["code"], GOOD_ADD);
    assert_eq!(read(&dir.path().join("functions/adder.json")), read(&run.join("best/registry.json")));
    // The learned function ran in the sandbox: its result came back in a tool message.
    let records = read_lines(&run.join("epochs/001/conversations.jsonl"));
    let ids: Vec<_> = records.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, ["t1", "t2", "t3", "t4"]);
    assert_eq!(records[1]["executions"][0]["result"], "42");
    assert_eq!(records[1]["correct"], true);
    // The optimizer saw real conversations and the per-problem table.
    let bodies = server.bodies().await;
    let first_opt = bodies.iter().find(|b| support::is_optimizer(b)).unwrap();
    let state = first_opt["messages"][1]["content"].as_str().unwrap();
    assert!(
        state.contains("What is 20+22?")
            && state.contains("| 2 | t2 | incorrect | 0 |")
            && !state.contains("42 |"),
        "{state}"
    );
    // No optimizer call after the last epoch: 2 steps (after epochs 0 and 1).
    assert_eq!(steps.load(Ordering::SeqCst), 2);

    // eval: the learned registry and the run's epochs, --json last line.
    let out = agentopt(dir.path())
        .args(["eval", "--test", "test.jsonl", "--run", "learn", "--json", "--config"])
        .arg(&server.config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let score = run_json(&out);
    assert_eq!(
        (score["correct"].clone(), score["total"].clone(), score["errored"].clone(), score["rate"].clone()),
        (json!(3), json!(3), json!(0), json!(1.0))
    );
    for spec in ["learn@0", "runs/learn/epochs/000/registry.json"] {
        let out = agentopt(dir.path())
            .args(["eval", "--test", "test.jsonl", "--functions", spec, "--json", "--config"])
            .arg(&server.config)
            .output()
            .unwrap();
        assert_eq!(run_json(&out)["correct"], 1, "{spec}");
    }
    let out = agentopt(dir.path())
        .args(["eval", "--test", "test.jsonl", "--functions", "adder", "--json", "--config"])
        .arg(&server.config)
        .output()
        .unwrap();
    assert_eq!(run_json(&out)["correct"], 3);

    // Resuming a completed run only reports it.
    let events_before = std::fs::read(run.join("events.jsonl")).unwrap();
    let out = agentopt(dir.path()).args(["resume", "learn", "--json"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(run_json(&out)["best_epoch"], 1);
    assert_eq!(std::fs::read(run.join("events.jsonl")).unwrap(), events_before);

    // Secrets: nowhere under runs/, functions/ or the reply cache.
    let written: Vec<PathBuf> =
        ["runs", "functions", ".cache"].iter().flat_map(|d| support::files(&dir.path().join(d))).collect();
    assert!(written.iter().any(|p| p.starts_with(dir.path().join(".cache"))), "the cache was used");
    for path in written {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(support::SECRET.len()).any(|w| w == support::SECRET.as_bytes()),
            "secret in {}",
            path.display()
        );
    }
}

/// A harmful revision is rolled back; an invalid action is retried with its error shown to the
/// optimizer; a removed function disappears from the assistant's tools.
#[tokio::test(flavor = "multi_thread")]
async fn rolls_back_harm_retries_invalid_actions_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    datasets(dir.path());
    let steps = Arc::new(AtomicUsize::new(0));
    let s = steps.clone();
    let server = Server::start(dir.path(), Duration::ZERO, move |body| {
        if !support::is_optimizer(body) {
            return assistant_with_code(body);
        }
        let last = support::last(body);
        let last_text = last["content"].as_str().unwrap_or("");
        match step_of(body, &s) {
            (0, true) => call("add_function", add_function(GOOD_ADD)),
            (1, true) => {
                let mut args = add_function(BAD_ADD);
                args["description"] = json!("Adds two integers, faster.");
                call("revise_function", args)
            }
            (2, true) => {
                let mut args = add_function(GOOD_ADD);
                args["name"] = json!("1bad");
                call("add_function", args)
            }
            (2, false) if last_text.contains("not a valid function name") => {
                call("remove_function", json!({"name": "add"}))
            }
            _ => text("TERMINATE"),
        }
    })
    .await;
    let out = agentopt(dir.path())
        .args(train_args(&server))
        .args(["--run", "r", "--epochs", "4", "--patience", "3", "--no-eval", "--no-cache", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let summary = run_json(&out);
    let decisions: Vec<_> = summary["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["score"].as_f64().unwrap(), h["decision"].clone()))
        .collect();
    assert_eq!(
        decisions,
        vec![
            (0.5, json!("accept")),
            (1.0, json!("accept")),
            (0.0, json!("rollback")),
            (0.5, json!("rollback"))
        ]
    );
    assert_eq!(summary["best_epoch"], 1);
    assert_eq!(summary["stopped_early"], false);
    let run = dir.path().join("runs/r");
    assert_eq!(read(&run.join("best/registry.json"))["functions"][0]["code"], GOOD_ADD);
    assert_eq!(read(&run.join("epochs/002/registry.json"))["functions"][0]["code"], BAD_ADD);
    assert_eq!(read(&run.join("epochs/003/registry.json"))["functions"], json!([]));

    let bodies = server.bodies().await;
    // The invalid call's error reached the optimizer as the tool reply in its next request.
    let retried = bodies
        .iter()
        .filter(|b| support::is_optimizer(b))
        .find(|b| {
            support::last(b)["role"] == "tool"
                && support::last(b)["content"].as_str().unwrap().contains("not a valid function name")
        })
        .expect("the optimizer saw the validation error");
    assert!(support::last(retried)["content"].as_str().unwrap().contains("attempt 1 of 4"));
    let events = read_lines(&run.join("events.jsonl"));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "action_rejected" && e["error"].as_str().unwrap().contains("1bad"))
    );
    assert!(events.iter().any(|e| e["event"] == "action_applied" && e["action"]["action"] == "remove"));
    // After the removal (the last optimizer request), the assistant is offered no tools at all.
    let last_opt = bodies.iter().rposition(support::is_optimizer).unwrap();
    let later: Vec<_> = bodies[last_opt + 1..].iter().collect();
    assert_eq!(later.len(), 4 + 2, "4 problems, the two easy ones run code first");
    assert!(later.iter().all(|b| support::tools(b).is_empty()));
    // Before it (epoch 2, the harmful revision) the assistant called add and got a - b.
    let records = read_lines(&run.join("epochs/002/conversations.jsonl"));
    assert_eq!(records[1]["executions"][0]["result"], "-2");
}

/// A problem whose model calls fail (HTTP 400) is errored: excluded from the score, counted apart.
#[tokio::test(flavor = "multi_thread")]
async fn errored_problems_are_excluded_not_wrong() {
    let dir = tempfile::tempdir().unwrap();
    support::dataset(
        &dir.path().join("train.jsonl"),
        &[
            ("a", "What is 1+1? (easy)", "2"),
            ("b", "What is 1+2? BROKEN", "3"),
            ("c", "What is 2+2? (easy)", "4"),
        ],
    );
    support::dataset(
        &dir.path().join("test.jsonl"),
        &[("x", "What is 3+3? (easy)", "6"), ("y", "What is 1+0? BROKEN", "1")],
    );
    let server = Server::start(dir.path(), Duration::ZERO, |body| {
        if support::is_optimizer(body) { text("TERMINATE") } else { assistant_with_code(body) }
    })
    .await;
    let out = agentopt(dir.path())
        .args(train_args(&server))
        .args(["--run", "e", "--epochs", "1", "--no-cache", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let summary = run_json(&out);
    let h = &summary["history"][0];
    let records = read_lines(&dir.path().join("runs/e/epochs/000/conversations.jsonl"));
    assert_eq!(
        (h["correct"].clone(), h["total"].clone(), h["errored"].clone(), h["score"].clone()),
        (json!(2), json!(3), json!(1), json!(1.0)),
        "{records:#?}"
    );
    let mut before = summary["eval"]["before"].clone();
    // The interval is over the one scored problem: Wilson's for 1 of 1.
    let ci = before.as_object_mut().unwrap().remove("ci95").unwrap();
    assert!((ci[0].as_f64().unwrap() - 0.2065).abs() < 1e-3 && ci[1] == 1.0, "{ci}");
    assert_eq!(before, json!({"correct": 1, "total": 2, "errored": 1, "rate": 1.0}));
    assert!(records[1]["errored"].as_str().unwrap().contains("400"), "{}", records[1]);
    assert_eq!(records[1]["correct"], false);

    let out = agentopt(dir.path())
        .args(["eval", "--test", "test.jsonl", "--no-cache", "--json", "--config"])
        .arg(&server.config)
        .output()
        .unwrap();
    let score = run_json(&out);
    assert_eq!(
        (score["correct"].clone(), score["errored"].clone(), score["rate"].clone()),
        (json!(1), json!(1), json!(1.0))
    );
}

/// Problems "What is i+i?" for `numbers`, every even one marked easy (solved with real Python).
fn doubling_problems(path: &Path, prefix: &str, numbers: std::ops::RangeInclusive<i64>) {
    let rows: Vec<(String, String, String)> = numbers
        .map(|i| {
            let easy = if i % 2 == 0 { " (easy)" } else { "" };
            (format!("{prefix}{i}"), format!("What is {i}+{i}?{easy}"), format!("{}", 2 * i))
        })
        .collect();
    let rows: Vec<(&str, &str, &str)> =
        rows.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
    support::dataset(path, &rows);
}

/// The assistant with code, and an optimizer that adds `add` whenever the best list lacks it, else
/// stops: each reply is decided by its request alone.
fn adds_add_once(body: &Value) -> Reply {
    if !support::is_optimizer(body) {
        return assistant_with_code(body);
    }
    let state = body["messages"][1]["content"].as_str().unwrap_or("");
    if support::messages(body).len() == 2 && !state.contains("def add") {
        call("add_function", add_function(GOOD_ADD))
    } else {
        text("TERMINATE")
    }
}

/// The results a run writes (not run.json, which names its settings, nor events.jsonl and
/// calls.jsonl, logs in the order things happened), relative to the run directory.
fn result_files(run: &Path) -> Vec<PathBuf> {
    support::files(run)
        .into_iter()
        .map(|p| p.strip_prefix(run).unwrap().to_path_buf())
        .filter(|p| p.extension().is_some_and(|e| e == "json" || e == "jsonl"))
        .filter(|p| !["run.json", "events.jsonl", "calls.jsonl"].iter().any(|log| p == Path::new(log)))
        .collect()
}

/// Asserts that two runs wrote the same results: registries byte for byte, everything else once
/// timings are set aside.
fn assert_same_results(a: &Path, b: &Path) {
    let files = result_files(a);
    assert_eq!(files, result_files(b), "the runs wrote different files");
    assert!(files.len() >= 8, "{files:?}");
    for file in files {
        assert_eq!(
            support::normalized(&a.join(&file)),
            support::normalized(&b.join(&file)),
            "{} differs",
            file.display()
        );
        if file.ends_with("registry.json") {
            let (x, y) = (std::fs::read(a.join(&file)).unwrap(), std::fs::read(b.join(&file)).unwrap());
            assert_eq!(x, y, "{} is not byte-identical", file.display());
        }
    }
}

/// Replies that take 0–60 ms and cost a different amount each complete in an order unrelated to the
/// problems'; the files come out the same at --concurrency 1 and 8, and again from a warm cache.
#[tokio::test(flavor = "multi_thread")]
async fn results_do_not_depend_on_concurrency_or_completion_order() {
    let dir = tempfile::tempdir().unwrap();
    doubling_problems(&dir.path().join("train.jsonl"), "t", 1..=10);
    doubling_problems(&dir.path().join("test.jsonl"), "s", 11..=14);
    let server = Server::start_varied(dir.path(), Duration::from_millis(60), adds_add_once).await;
    let train = |name: &str, settings: &[&str]| {
        let mut args = train_args(&server);
        args.extend(["--run", name, "--epochs", "3", "--patience", "3", "--json"].map(String::from));
        args.extend(settings.iter().map(|s| s.to_string()));
        let out = agentopt(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        run_json(&out)
    };
    let serial = train("serial", &["--concurrency", "1", "--no-cache"]);
    assert_eq!(serial["best_epoch"], 1, "{serial}");
    assert_eq!(serial["eval"]["after"]["rate"], 1.0, "{serial}");
    train("parallel", &["--concurrency", "8", "--no-cache"]);
    let runs = dir.path().join("runs");
    assert_same_results(&runs.join("serial"), &runs.join("parallel"));

    train("fill", &["--concurrency", "8", "--cache-seed", "5"]);
    let calls = server.bodies().await.len();
    let warm = train("warm", &["--concurrency", "8", "--cache-seed", "5"]);
    train("warm_serial", &["--concurrency", "1", "--cache-seed", "5"]);
    let bodies = server.bodies().await;
    let missed: Vec<Value> = bodies[calls.min(bodies.len())..].iter().map(support::last).collect();
    assert_eq!(bodies.len(), calls, "a warm cache still called the model for {missed:#?}");
    assert_eq!(warm["usage"]["calls"], 0, "{warm}");
    assert_same_results(&runs.join("warm"), &runs.join("warm_serial"));
}

/// kill -9 in the middle of a run, then `resume`: the result equals an uninterrupted run, and no
/// completed conversation is run twice.
#[tokio::test(flavor = "multi_thread")]
async fn resume_after_kill_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    doubling_problems(&dir.path().join("train.jsonl"), "t", 1..=6);
    support::dataset(
        &dir.path().join("test.jsonl"),
        &[("s1", "What is 4+4?", "8"), ("s2", "What is 5+1? (easy)", "6")],
    );
    let server = Server::start(dir.path(), Duration::from_millis(40), adds_add_once).await;
    let args = |name: &str| {
        let mut a = train_args(&server);
        a.extend(
            ["--run", name, "--epochs", "3", "--patience", "3", "--concurrency", "2", "--no-cache", "--json"]
                .map(String::from),
        );
        a
    };
    let whole = agentopt(dir.path()).args(args("whole")).output().unwrap();
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));

    // Start the same run, kill -9 it once some conversations of epoch 1 are done.
    let events = dir.path().join("runs/killed/events.jsonl");
    support::kill_when(dir.path(), &args("killed"), &events, "epoch 1", |text| {
        text.lines().filter(|l| l.contains("\"conversation_done\"") && l.contains("\"epoch\":1")).count() >= 2
    })
    .await;
    assert_eq!(read(&dir.path().join("runs/killed/run.json"))["status"], "running");

    let out = agentopt(dir.path()).args(["resume", "killed", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read(&dir.path().join("runs/killed/run.json"))["status"], "completed");
    let (a, b) = (dir.path().join("runs/whole"), dir.path().join("runs/killed"));
    // The killed run paid for the calls the kill cut off: its usage is at least the whole run's, and
    // is the one thing in its summary that may differ.
    let (whole_summary, killed_summary) = (read(&a.join("summary.json")), read(&b.join("summary.json")));
    assert!(killed_summary["usage"]["calls"].as_u64() >= whole_summary["usage"]["calls"].as_u64());
    let without_usage = |mut v: Value| {
        v.as_object_mut().unwrap().remove("usage");
        v.as_object_mut().unwrap().remove("run");
        v
    };
    assert_eq!(without_usage(whole_summary), without_usage(killed_summary), "summary.json differs");
    for file in ["best/registry.json", "eval/before.jsonl", "eval/after.jsonl"]
        .into_iter()
        .map(String::from)
        .chain((0..3).flat_map(|e| {
            [format!("epochs/{e:03}/registry.json"), format!("epochs/{e:03}/conversations.jsonl")]
        }))
    {
        assert_eq!(
            support::normalized(&a.join(&file)),
            support::normalized(&b.join(&file)),
            "{file} differs"
        );
        if file.ends_with("registry.json") {
            let (x, y) = (std::fs::read(a.join(&file)).unwrap(), std::fs::read(b.join(&file)).unwrap());
            assert_eq!(x, y, "{file} is not byte-identical");
        }
    }
    // Each conversation completed exactly once across the kill.
    support::assert_each_conversation_once(&b.join("events.jsonl"));
}

/// Bad input exits 2 with a message naming what is wrong.
#[test]
fn bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    agentopt(dir.path()).args(["train", "missing.jsonl"]).assert().code(2);
    agentopt(dir.path()).args(["resume", "nope"]).assert().code(2).stderr(predicates::str::contains("nope"));
    support::dataset(&dir.path().join("t.jsonl"), &[("a", "What is 1+1?", "2")]);
    agentopt(dir.path())
        .args(["eval", "--test", "t.jsonl", "--functions", "nothing"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("nothing"));
}

/// `--max-usd` stops before the budget is exceeded, leaves a resumable run, and `resume --max-usd`
/// raises the limit and finishes.
#[tokio::test(flavor = "multi_thread")]
async fn budget_stops_cleanly_and_resume_continues() {
    let dir = tempfile::tempdir().unwrap();
    datasets(dir.path());
    let server = Server::start(dir.path(), Duration::ZERO, |body| {
        if support::is_optimizer(body) { text("TERMINATE") } else { assistant_with_code(body) }
    })
    .await;
    // Each call costs 100 input + 20 output tokens at [0.001, 0.002] per 1k: $0.00014.
    let out = agentopt(dir.path())
        .args(train_args(&server))
        .args(["--run", "b", "--epochs", "2", "--no-cache", "--max-usd", "0.001", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = run_json(&out);
    assert_eq!(summary["status"], "budget");
    assert!(summary["usage"]["usd"].as_f64().unwrap() <= 0.001, "{}", summary["usage"]);
    assert_eq!(read(&dir.path().join("runs/b/run.json"))["status"], "budget");

    let out = agentopt(dir.path()).args(["resume", "b", "--max-usd", "1", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = run_json(&out);
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["epochs_run"], 2);
    assert!(summary["eval"]["after"]["total"] == 3);
}

/// Ctrl-C (SIGINT) stops launching work, saves state and exits 130; `resume` then completes the run.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_leaves_a_resumable_run() {
    let dir = tempfile::tempdir().unwrap();
    datasets(dir.path());
    let server = Server::start(dir.path(), Duration::from_millis(150), |body| {
        if support::is_optimizer(body) { text("TERMINATE") } else { assistant_with_code(body) }
    })
    .await;
    let mut args = train_args(&server);
    args.extend(["--run", "c", "--epochs", "2", "--concurrency", "1", "--no-cache"].map(String::from));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("agentopt"))
        .current_dir(dir.path())
        .env_remove("OAI_CONFIG_LIST")
        .env("AGENTOPT_PYTHON", python())
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let events = dir.path().join("runs/c/events.jsonl");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&events).unwrap_or_default().contains("conversation_done") {
        assert!(started.elapsed() < Duration::from_secs(60), "no conversation completed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling a child process we spawned and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(read(&dir.path().join("runs/c/run.json"))["status"], "stopped");
    let out = agentopt(dir.path()).args(["resume", "c", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = run_json(&out);
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["epochs_run"], 2);
}

/// DATA is split deterministically by seed and recorded in run.json; `resume` refuses a dataset that
/// changed since the run started.
#[tokio::test(flavor = "multi_thread")]
async fn split_is_recorded_and_resume_checks_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let problems: Vec<(String, String, String)> =
        (1..=10).map(|i| (format!("p{i}"), format!("What is {i}+1?"), format!("{}", i + 1))).collect();
    let refs: Vec<(&str, &str, &str)> =
        problems.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
    support::dataset(&dir.path().join("all.jsonl"), &refs);
    let server = Server::start(dir.path(), Duration::ZERO, |body| {
        if support::is_optimizer(body) { text("TERMINATE") } else { assistant(body) }
    })
    .await;
    let run = |name: &str, seed: &str| {
        agentopt(dir.path())
            .args([
                "train",
                "all.jsonl",
                "--train-size",
                "4",
                "--test-size",
                "3",
                "--epochs",
                "1",
                "--no-eval",
            ])
            .args(["--seed", seed, "--run", name, "--json", "--config"])
            .arg(&server.config)
            .output()
            .unwrap()
    };
    for (name, seed) in [("a", "7"), ("b", "7"), ("c", "8")] {
        let out = run(name, seed);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let split = |name: &str| read(&dir.path().join(format!("runs/{name}/run.json")))["split"].clone();
    assert_eq!(split("a")["train"].as_array().unwrap().len(), 4);
    assert_eq!(split("a")["test"].as_array().unwrap().len(), 3);
    assert_eq!(split("a"), split("b"), "same seed, same split");
    assert_ne!(split("a"), split("c"), "another seed, another split");
    let info = read(&dir.path().join("runs/a/run.json"));
    assert!(Path::new(info["data"]["data"]["path"].as_str().unwrap()).is_absolute());
    assert_eq!(info["data"]["data"]["sha256"].as_str().unwrap().len(), 64);

    // A run stopped at its budget, then its data edited: resume refuses.
    let out = agentopt(dir.path())
        .args([
            "train",
            "all.jsonl",
            "--epochs",
            "1",
            "--run",
            "d",
            "--no-cache",
            "--max-usd",
            "0.0001",
            "--json",
            "--config",
        ])
        .arg(&server.config)
        .output()
        .unwrap();
    assert_eq!(run_json(&out)["status"], "budget");
    std::fs::write(dir.path().join("all.jsonl"), "{\"problem\": \"changed\", \"answer\": \"1\"}\n").unwrap();
    agentopt(dir.path()).args(["resume", "d"]).assert().code(2).stderr(predicates::str::contains("changed"));
}
