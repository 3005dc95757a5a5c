//! Honest numbers end to end (the real binary, a scripted server): `--accept significant` rolls back a
//! gain of one problem that `strict` keeps and keeps a gain the sign test supports; every rate in
//! summary.json carries its 95% interval; `eval --compare` pairs two evaluations problem by problem.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, call, text};

fn agentopt(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir)
        .env_remove("OAI_CONFIG_LIST")
        .env("AGENTOPT_PYTHON", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
        .timeout(Duration::from_secs(120));
    cmd
}

const ADD: &str = "def add(a, b):\n    return a + b\n";

/// Solves "easy" problems alone and every problem once `add` is offered; the optimizer adds `add`
/// in its first step and then stops.
async fn server(dir: &Path) -> Server {
    Server::start(dir, Duration::ZERO, |body| {
        if support::is_optimizer(body) {
            let offered_add = body.to_string().contains("def add(a, b)");
            if support::messages(body).len() == 2 && !offered_add {
                return call(
                    "add_function",
                    json!({"name": "add", "description": "Adds two integers.",
                           "arguments": "{\"a\": {\"type\": \"integer\"}, \"b\": {\"type\": \"integer\"}}",
                           "packages": "", "code": ADD}),
                );
            }
            return text("TERMINATE");
        }
        let last = support::last(body);
        if last["role"] == "tool" {
            return text(format!("\\boxed{{{}}}", last["content"].as_str().unwrap_or("").trim()));
        }
        let problem = support::problem(body);
        let expr = problem.trim_start_matches("What is ").split('?').next().unwrap().to_string();
        let (a, b) = expr.split_once('+').unwrap();
        let (a, b): (i64, i64) = (a.trim().parse().unwrap(), b.trim().parse().unwrap());
        if support::tools(body).contains(&"add".to_string()) {
            return call("add", json!({"a": a, "b": b}));
        }
        text(if problem.contains("easy") { format!("\\boxed{{{}}}", a + b) } else { "\\boxed{0}".into() })
    })
    .await
}

/// `hard` problems then `easy` ones, `What is A+B?` with A from `first` (so sets never overlap).
fn problems(dir: &Path, name: &str, first: usize, hard: usize, easy: usize) -> PathBuf {
    let rows: Vec<(String, String, String)> = (0..hard + easy)
        .map(|i| {
            let (tag, a) = (if i < hard { "" } else { " (easy)" }, first + i);
            (format!("{name}{i}"), format!("What is {a}+{}?{tag}", a + 10), (2 * a + 10).to_string())
        })
        .collect();
    let refs: Vec<(&str, &str, &str)> =
        rows.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
    let path = dir.join(format!("{name}.jsonl"));
    support::dataset(&path, &refs);
    path
}

async fn train(dir: &Path, server: &Server, train: &Path, test: &Path, run: &str, accept: &str) -> Value {
    let mut cmd = agentopt(dir);
    cmd.args(["train", "--json", "--epochs", "2", "--run", run, "--accept", accept, "--config"])
        .arg(&server.config)
        .arg("--train")
        .arg(train)
        .arg("--test")
        .arg(test);
    support::json_summary(&support::output_off_runtime(cmd).await)
}

#[tokio::test]
async fn a_significance_rule_rolls_back_a_one_problem_gain_and_keeps_a_supported_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let test = problems(dir.path(), "s", 100, 3, 1);
    // One hard problem among easy ones: the function solves one more.
    let small_gain = problems(dir.path(), "g", 200, 1, 3);
    let strict = train(dir.path(), &server, &small_gain, &test, "strict", "strict").await;
    assert_eq!(strict["history"][1]["decision"], "accept");
    assert!(strict["history"][1].get("p_value").is_none(), "no p-value under strict");
    let significant = train(dir.path(), &server, &small_gain, &test, "sig", "significant").await;
    let h = &significant["history"][1];
    assert_eq!((h["decision"].as_str(), h["p_value"].as_f64()), (Some("rollback"), Some(0.5)), "{h}");
    assert_eq!((h["versus_best"]["wins"].as_u64(), h["versus_best"]["losses"].as_u64()), (Some(1), Some(0)));
    // Five hard problems: five wins, p = 1/32 < 0.05.
    let large_gain = problems(dir.path(), "l", 300, 5, 1);
    let significant = train(dir.path(), &server, &large_gain, &test, "sig5", "significant:0.05").await;
    let h = &significant["history"][1];
    assert_eq!(h["decision"], "accept", "{h}");
    assert!((h["p_value"].as_f64().unwrap() - 1.0 / 32.0).abs() < 1e-12);
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("runs/sig5/run.json")).unwrap())
            .unwrap();
    assert_eq!(info["training"]["accept"], json!({"rule": "significant", "alpha": 0.05}));
    // A bad rule is bad input.
    let out = agentopt(dir.path()).args(["train", "--accept", "significant:7"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ALPHA must be a number between 0 and 1"));

    // Every rate carries its Wilson interval: before 1/4, after 4/4.
    let before = &significant["eval"]["before"];
    let [lo, hi] = [before["ci95"][0].as_f64().unwrap(), before["ci95"][1].as_f64().unwrap()];
    assert!((lo - 0.0456).abs() < 1e-3 && (hi - 0.6994).abs() < 1e-3, "{before}");
    assert_eq!(significant["eval"]["after"]["ci95"][1], 1.0);
    assert!(significant["history"].as_array().unwrap().iter().all(|h| h["ci95"].is_array()));
    let shown = agentopt(dir.path()).args(["runs", "show", "sig5"]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(shown.contains("eval before: 1/4 correct (0.250), 0 errored, 95% CI 0.046–0.699"), "{shown}");

    // eval --compare: the run's evaluations before and after, paired by problem.
    let mut cmd = agentopt(dir.path());
    cmd.args(["eval", "--compare", "sig5@before", "sig5", "--json"]);
    let compared = support::json_summary(&support::output_off_runtime(cmd).await);
    assert_eq!(compared["paired"], 4);
    assert_eq!(compared["fixed"], json!(["s0", "s1", "s2"]));
    assert_eq!(compared["broken"], json!([]));
    assert!((compared["p_value"].as_f64().unwrap() - 0.125).abs() < 1e-12, "{compared}");
    // Human output, on record files.
    let runs = dir.path().join("runs/sig5/eval");
    let out = agentopt(dir.path())
        .args(["eval", "--compare"])
        .arg(runs.join("before.jsonl"))
        .arg(runs.join("after.jsonl"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("changed: 3 fixed by B, 0 broken by B, 1 unchanged"), "{text}");
    assert!(text.contains("one-sided p = 0.1250"), "{text}");
    let out = agentopt(dir.path()).args(["eval", "--compare", "nope@after", "sig5"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// With `add`: right on plain problems, one off on "(tricky)" ones (which it solves alone).
async fn tricky_server(dir: &Path) -> Server {
    tricky_server_after(dir, Duration::ZERO).await
}

async fn tricky_server_after(dir: &Path, delay: Duration) -> Server {
    Server::start(dir, delay, |body| {
        if support::is_optimizer(body) {
            if support::messages(body).len() == 2 && !body.to_string().contains("def add(a, b)") {
                return call(
                    "add_function",
                    json!({"name": "add", "description": "Adds two integers.",
                           "arguments": "{\"a\": {\"type\": \"integer\"}, \"b\": {\"type\": \"integer\"}}",
                           "packages": "", "code": ADD}),
                );
            }
            return text("TERMINATE");
        }
        let problem = support::problem(body);
        let tricky = problem.contains("tricky");
        let last = support::last(body);
        if last["role"] == "tool" {
            let n: i64 = last["content"].as_str().unwrap_or("0").trim().parse().unwrap_or(0);
            return text(format!("\\boxed{{{}}}", if tricky { n + 1 } else { n }));
        }
        let expr = problem.trim_start_matches("What is ").split('?').next().unwrap().to_string();
        let (a, b) = expr.split_once('+').unwrap();
        let (a, b): (i64, i64) = (a.trim().parse().unwrap(), b.trim().parse().unwrap());
        if support::tools(body).contains(&"add".to_string()) {
            return call("add", json!({"a": a, "b": b}));
        }
        text(if tricky { format!("\\boxed{{{}}}", a + b) } else { "\\boxed{0}".into() })
    })
    .await
}

#[tokio::test]
async fn a_validation_split_decides_epochs_the_optimizer_never_sees() {
    let dir = tempfile::tempdir().unwrap();
    let server = tricky_server(dir.path()).await;
    let write = |name: &str, rows: &[(&str, &str, &str)]| support::dataset_in(dir.path(), name, rows);
    let train = write(
        "train.jsonl",
        &[("t0", "What is 1+2?", "3"), ("t1", "What is 2+2?", "4"), ("t2", "What is 3+5?", "8")],
    );
    let val =
        write("val.jsonl", &[("v0", "What is 10+1? (tricky)", "11"), ("v1", "What is 20+2? (tricky)", "22")]);
    let test = write("test.jsonl", &[("s0", "What is 7+7?", "14")]);
    let run = |name: &'static str, select: Option<&'static str>| {
        let mut cmd = agentopt(dir.path());
        cmd.args(["train", "--json", "--epochs", "2", "--run", name, "--config"])
            .arg(&server.config)
            .arg("--train")
            .arg(&train)
            .arg("--val")
            .arg(&val)
            .arg("--test")
            .arg(&test);
        if let Some(select) = select {
            cmd.args(["--select", select]);
        }
        support::output_off_runtime(cmd)
    };
    // Selected on validation (the default with --val): `add` gains 3 training problems but loses both
    // validation ones, so it is rolled back.
    let on_val = support::json_summary(&run("on-val", None).await);
    let h = on_val["history"].as_array().unwrap();
    assert_eq!((h[0]["val"]["rate"].as_f64(), h[1]["val"]["rate"].as_f64()), (Some(1.0), Some(0.0)));
    assert_eq!((h[1]["score"].as_f64(), h[1]["decision"].as_str()), (Some(1.0), Some("rollback")));
    assert_eq!(on_val["best_epoch"], 0);
    // Selected on training, the same trial is kept.
    let on_train = support::json_summary(&run("on-train", Some("train")).await);
    assert_eq!(on_train["history"][1]["decision"], "accept");
    assert!(on_train["history"][1]["val"].is_object(), "validation is still scored and reported");
    // The optimizer never saw a validation problem.
    let bodies = server.bodies().await;
    assert!(bodies.iter().filter(|b| support::is_optimizer(b)).all(|b| !b.to_string().contains("tricky")));
    // Nor its score: the best registry's rate it is shown is the training one (0/3), not validation's (2/2).
    let state =
        bodies.iter().find(|b| support::is_optimizer(b)).unwrap()["messages"][1]["content"].to_string();
    assert!(state.contains("training success rate 0.000"), "{state}");
    assert!(dir.path().join("runs/on-val/epochs/001/val.jsonl").exists());
    let shown = agentopt(dir.path()).args(["runs", "show", "on-val"]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(shown.contains("| val ") || shown.contains(" val "), "{shown}");
    assert!(shown.contains("0.000 (0/2)"), "{shown}");
    let out = agentopt(dir.path()).args(["runs", "report", "on-val"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(dir.path().join("runs/on-val/report.html")).unwrap();
    assert!(
        html.contains("<th>validation</th>") && html.contains("0.000 (0/2, 95% CI 0.000–0.658)"),
        "{html}"
    );

    // --val-size draws from DATA after the test set; --select val without a split is refused.
    let data = write(
        "data.jsonl",
        &[
            ("d0", "What is 1+1?", "2"),
            ("d1", "What is 1+3?", "4"),
            ("d2", "What is 1+4?", "5"),
            ("d3", "What is 1+5?", "6"),
            ("d4", "What is 1+6?", "7"),
            ("d5", "What is 1+7?", "8"),
        ],
    );
    let mut cmd = agentopt(dir.path());
    cmd.args([
        "train",
        "--json",
        "--epochs",
        "1",
        "--run",
        "drawn",
        "--val-size",
        "2",
        "--test-size",
        "1",
        "--config",
    ])
    .arg(&server.config)
    .arg(&data);
    support::json_summary(&support::output_off_runtime(cmd).await);
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("runs/drawn/run.json")).unwrap())
            .unwrap();
    let split = &info["split"];
    assert_eq!((split["val"].as_array().unwrap().len(), split["test"].as_array().unwrap().len()), (2, 1));
    assert_eq!(split["train"].as_array().unwrap().len(), 3);
    assert_eq!(info["training"]["select"], "val");
    for (flags, expected) in [
        (vec!["--select", "val"], "--select val needs a validation split"),
        (vec!["--val-size", "9", "--test-size", "1"], "--val-size 9: only 5 problems"),
        (vec!["--val-size", "1", "--train"], "--val-size draws the validation split from DATA"),
    ] {
        let mut cmd = agentopt(dir.path());
        cmd.args(["train", "--config"]).arg(&server.config).args(&flags);
        if flags.last() == Some(&"--train") {
            cmd.arg(&train);
        } else {
            cmd.arg(&data);
        }
        let out = support::output_off_runtime(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expected),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_with_validation_killed_mid_validation_resumes_to_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let server = tricky_server_after(dir.path(), Duration::from_millis(30)).await;
    let write = |name: &str, rows: &[(&str, &str, &str)]| support::dataset_in(dir.path(), name, rows);
    let train = write("train.jsonl", &[("t0", "What is 1+2?", "3"), ("t1", "What is 2+2?", "4")]);
    let val = write(
        "val.jsonl",
        &[
            ("v0", "What is 10+1? (tricky)", "11"),
            ("v1", "What is 20+2?", "22"),
            ("v2", "What is 30+3?", "33"),
        ],
    );
    let args = |name: &str| -> Vec<String> {
        let mut a: Vec<String> =
            ["train", "--json", "--epochs", "3", "--concurrency", "1", "--no-cache", "--run", name]
                .map(String::from)
                .to_vec();
        a.extend(["--accept".into(), "significant:0.3".into(), "--no-eval".into(), "--config".into()]);
        a.push(server.config.display().to_string());
        a.extend(["--train".into(), train.display().to_string(), "--val".into(), val.display().to_string()]);
        a
    };
    let whole = support::output_off_runtime({
        let mut c = agentopt(dir.path());
        c.args(args("whole"));
        c
    })
    .await;
    let whole_summary = support::json_summary(&whole);
    let events = dir.path().join("runs/killed/events.jsonl");
    // Kill -9 once a validation conversation of epoch 1 is done (the phase is half way).
    support::kill_when(dir.path(), &args("killed"), &events, "epoch 1's validation", |text| {
        text.lines().any(|l| l.contains("\"conversation_done\"") && l.contains("{\"val\":1}"))
    })
    .await;
    let mut cmd = agentopt(dir.path());
    cmd.args(["resume", "killed", "--json"]);
    let resumed = support::json_summary(&support::output_off_runtime(cmd).await);
    let strip = |mut v: Value| {
        for key in ["usage", "run", "run_dir", "exported"] {
            v.as_object_mut().unwrap().remove(key);
        }
        v
    };
    assert_eq!(strip(whole_summary.clone()), strip(resumed), "summaries differ");
    assert!(
        whole_summary["history"][1]["p_value"].is_number() && whole_summary["history"][1]["val"].is_object()
    );
    let (a, b) = (dir.path().join("runs/whole"), dir.path().join("runs/killed"));
    for e in 0..whole_summary["epochs_run"].as_u64().unwrap() {
        for file in [format!("epochs/{e:03}/conversations.jsonl"), format!("epochs/{e:03}/val.jsonl")] {
            assert_eq!(
                support::normalized(&a.join(&file)),
                support::normalized(&b.join(&file)),
                "{file} differs"
            );
        }
    }
    // Each conversation completed exactly once across the kill.
    support::assert_each_conversation_once(&events);
}

const BAD_ADD: &str = "def add(a, b):\n    return a - b\n";

/// The optimizer proposes a right `add` for odd seeds and a wrong one for even seeds.
async fn proposals_server(dir: &Path, delay: Duration) -> Server {
    Server::start(dir, delay, |body| {
        if support::is_optimizer(body) {
            if support::messages(body).len() == 2 {
                // Each candidate is its own sample: the seed decides what this one proposes.
                let code = if body["seed"].as_u64().unwrap_or(0) % 2 == 1 { ADD } else { BAD_ADD };
                return call(
                    "add_function",
                    json!({"name": "add", "description": "Adds two integers.",
                           "arguments": "{\"a\": {\"type\": \"integer\"}, \"b\": {\"type\": \"integer\"}}",
                           "packages": "", "code": code}),
                );
            }
            return text("TERMINATE");
        }
        let last = support::last(body);
        if last["role"] == "tool" {
            return text(format!("\\boxed{{{}}}", last["content"].as_str().unwrap_or("").trim()));
        }
        let problem = support::problem(body);
        let expr = problem.trim_start_matches("What is ").split('?').next().unwrap().to_string();
        let (a, b) = expr.split_once('+').unwrap();
        let (a, b): (i64, i64) = (a.trim().parse().unwrap(), b.trim().parse().unwrap());
        if support::tools(body).contains(&"add".to_string()) {
            return call("add", json!({"a": a, "b": b}));
        }
        text("\\boxed{0}")
    })
    .await
}

#[tokio::test]
async fn several_proposals_are_scored_and_the_best_becomes_the_trial() {
    let dir = tempfile::tempdir().unwrap();
    let server = proposals_server(dir.path(), Duration::ZERO).await;
    let train = problems(dir.path(), "p", 400, 3, 0);
    let mut cmd = agentopt(dir.path());
    cmd.args([
        "train",
        "--json",
        "--epochs",
        "2",
        "--run",
        "k2",
        "--proposals",
        "2",
        "--no-eval",
        "--config",
    ])
    .arg(&server.config)
    .arg("--train")
    .arg(&train);
    let summary = support::json_summary(&support::output_off_runtime(cmd).await);
    assert_eq!(
        (summary["history"][1]["score"].as_f64(), summary["history"][1]["decision"].as_str()),
        (Some(1.0), Some("accept"))
    );
    let run = dir.path().join("runs/k2");
    let candidates: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("epochs/001/candidates.json")).unwrap())
            .unwrap();
    let listed: Vec<(u64, f64, bool)> = candidates
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["candidate"].as_u64().unwrap(),
                c["score"]["rate"].as_f64().unwrap(),
                c["chosen"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(0, 0.0, false), (1, 1.0, true)]);
    let registry = std::fs::read_to_string(run.join("epochs/001/registry.json")).unwrap();
    assert!(registry.contains("return a + b"), "{registry}");
    // Two independent optimizer calls reached the server (distinct seeds, sampled: no shared cache entry).
    let bodies = server.bodies().await;
    let firsts: Vec<&Value> =
        bodies.iter().filter(|b| support::is_optimizer(b) && support::messages(b).len() == 2).collect();
    let mut seeds: Vec<u64> = firsts.iter().map(|b| b["seed"].as_u64().unwrap()).collect();
    seeds.sort();
    assert_eq!(seeds, [0, 1]);
    assert!(firsts.iter().all(|b| b["temperature"] == 1.0));
    // Every call counts, candidates' conversations included.
    assert_eq!(summary["usage"]["calls"].as_u64(), Some(bodies.len() as u64));
    // The chosen candidate's conversations are the epoch's: read back, not run again.
    let events: Vec<Value> = std::fs::read_to_string(run.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |pred: &dyn Fn(&Value) -> bool| events.iter().filter(|e| pred(e)).count();
    assert_eq!(count(&|e| e["event"] == "candidate_scored"), 2);
    assert_eq!(count(&|e| e["event"] == "candidate_chosen" && e["candidate"] == 1), 1);
    assert_eq!(count(&|e| e["event"] == "conversation_done" && e["phase"] == json!({"epoch": 1})), 0);
    assert_eq!(
        support::normalized(&run.join("epochs/001/conversations.jsonl")),
        support::normalized(&run.join("epochs/001/candidates/1/conversations.jsonl"))
    );
    let shown = agentopt(dir.path()).args(["runs", "show", "k2"]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(shown.contains("epoch 001: #0 0.000 [add], #1 1.000 [add] (chosen)"), "{shown}");
    agentopt(dir.path()).args(["runs", "report", "k2"]).assert().success();
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("Candidates (--proposals)") && html.contains("#1 1.000 [add] (chosen)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_with_proposals_killed_while_scoring_candidates_resumes_to_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let server = proposals_server(dir.path(), Duration::from_millis(30)).await;
    let train = problems(dir.path(), "p", 500, 4, 0);
    let args = |name: &str| -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "--json",
            "--epochs",
            "2",
            "--proposals",
            "3",
            "--concurrency",
            "1",
            "--no-eval",
            "--no-cache",
            "--run",
            name,
        ]
        .map(String::from)
        .to_vec();
        a.extend([
            "--config".into(),
            server.config.display().to_string(),
            "--train".into(),
            train.display().to_string(),
        ]);
        a
    };
    let whole = support::output_off_runtime({
        let mut c = agentopt(dir.path());
        c.args(args("whole"));
        c
    })
    .await;
    let whole_summary = support::json_summary(&whole);
    let events = dir.path().join("runs/killed/events.jsonl");
    // Kill -9 in the middle of the second candidate's scoring.
    support::kill_when(dir.path(), &args("killed"), &events, "candidate 1's scoring", |text| {
        text.lines().any(|l| l.contains("\"conversation_done\"") && l.contains("{\"candidate\":[1,1]}"))
    })
    .await;
    let before = server.bodies().await.len();
    let mut cmd = agentopt(dir.path());
    cmd.args(["resume", "killed", "--json"]);
    let resumed = support::json_summary(&support::output_off_runtime(cmd).await);
    let strip = |mut v: Value| {
        for key in ["usage", "run", "run_dir", "exported"] {
            v.as_object_mut().unwrap().remove(key);
        }
        v
    };
    assert_eq!(strip(whole_summary), strip(resumed), "summaries differ");
    // The candidates proposed before the kill were not asked for again.
    let asked_again = server.bodies().await[before..]
        .iter()
        .filter(|b| support::is_optimizer(b) && support::messages(b).len() == 2)
        .count();
    assert_eq!(asked_again, 0);
    let (a, b) = (dir.path().join("runs/whole"), dir.path().join("runs/killed"));
    for file in ["epochs/001/candidates.json", "epochs/001/registry.json", "epochs/001/conversations.jsonl"]
        .into_iter()
        .map(String::from)
        .chain((0..3).map(|c| format!("epochs/001/candidates/{c}/conversations.jsonl")))
    {
        assert_eq!(
            support::normalized(&a.join(&file)),
            support::normalized(&b.join(&file)),
            "{file} differs"
        );
    }
    support::assert_each_conversation_once(&events);
}
