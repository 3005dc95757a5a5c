//! The numbers a run reports, tried as a demanding user would (issue #21): errored problems never
//! decide an epoch, overlapping splits are refused, a model that fails every request stops the
//! command, spending survives interrupts, killed runs say so, and the files and messages are plain.
//! The real binary against a scripted OpenAI-compatible server.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Reply, Server, text};

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

fn agentopt(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir)
        .env_remove("OAI_CONFIG_LIST")
        .env_remove("OPENAI_API_KEY")
        .env("AGENTOPT_PYTHON", python())
        .timeout(Duration::from_secs(120));
    cmd
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

/// Boxes 1+1 style sums right only for problems marked "(easy)".
fn answer(body: &Value) -> Reply {
    if support::is_optimizer(body) {
        return text("TERMINATE");
    }
    let problem = support::problem(body);
    if problem.contains("(easy)") {
        let sum: i64 =
            problem.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<i64>().ok()).sum();
        return text(format!("\\boxed{{{sum}}}"));
    }
    text("\\boxed{0}")
}

fn three_problems(dir: &Path) {
    support::dataset(
        &dir.join("train.jsonl"),
        &[("a", "What is 1+1? (easy)", "2"), ("b", "What is 2+5?", "7"), ("c", "What is 3+3? (easy)", "6")],
    );
    support::dataset(&dir.join("test.jsonl"), &[("x", "What is 4+4? (easy)", "8")]);
}

fn train(server: &Server, run: &str) -> Vec<String> {
    let mut args: Vec<String> =
        ["train", "--train", "train.jsonl", "--test", "test.jsonl", "--no-cache", "--run", run, "--config"]
            .map(String::from)
            .to_vec();
    args.push(server.config.display().to_string());
    args
}

/// Item 1: the same registry, with the problem it got wrong errored in epoch 1, must not beat epoch
/// 0 (its own rate, 2/2 against 2/3, would); the decision compares the problems both scored, and
/// `runs show` and the report say what errored.
#[tokio::test(flavor = "multi_thread")]
async fn an_errored_problem_cannot_win_an_epoch() {
    let dir = tempfile::tempdir().unwrap();
    three_problems(dir.path());
    let seen_b = Arc::new(AtomicUsize::new(0));
    let counter = seen_b.clone();
    let server = Server::start(dir.path(), Duration::ZERO, move |body| {
        // Problem b is answered wrong in epoch 0 and errors in epoch 1 (the registry is unchanged).
        if !support::is_optimizer(body)
            && support::problem(body).contains("2+5")
            && counter.fetch_add(1, Ordering::SeqCst) == 1
        {
            return Reply::Status(400, r#"{"error": {"message": "injected"}}"#.into());
        }
        answer(body)
    })
    .await;
    let out = agentopt(dir.path())
        .args(train(&server, "e"))
        .args(["--epochs", "2", "--no-eval", "--concurrency", "1", "--json"])
        .output()
        .unwrap();
    let summary = support::json_summary(&out);
    let epoch1 = &summary["history"][1];
    assert_eq!((epoch1["correct"].clone(), epoch1["errored"].clone()), (json!(2), json!(1)), "{summary}");
    assert_eq!(epoch1["score"], 1.0);
    assert_eq!(epoch1["decision"], "rollback", "{summary}");
    assert_eq!(
        epoch1["versus_best"],
        json!({"problems": 2, "trial_correct": 2, "best_correct": 2, "wins": 0, "losses": 0})
    );
    assert_eq!(summary["best_epoch"], 0);

    let show = agentopt(dir.path()).args(["runs", "show", "e"]).output().unwrap();
    assert!(show.status.success(), "{}", stderr(&show));
    assert!(stdout(&show).contains("2/2, 1 errored"), "{}", stdout(&show));
    let report = agentopt(dir.path()).args(["runs", "report", "e"]).output().unwrap();
    assert!(report.status.success(), "{}", stderr(&report));
    let html = std::fs::read_to_string(dir.path().join("runs/e/report.html")).unwrap();
    assert!(html.contains("2/2, 1 errored"));
}

/// Item 3: training on the test set is refused, naming the problems, unless asked for.
#[tokio::test(flavor = "multi_thread")]
async fn overlapping_splits_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    three_problems(dir.path());
    // Same text as training problem b under another id.
    support::dataset(
        &dir.path().join("leaky.jsonl"),
        &[("y", "what is 2+5?", "7"), ("z", "What is 9+9?", "18")],
    );
    let server = Server::start(dir.path(), Duration::ZERO, answer).await;
    let config = server.config.display().to_string();
    for args in [
        vec!["train", "train.jsonl", "--train", "train.jsonl"],
        vec!["train", "--train", "train.jsonl", "--test", "train.jsonl"],
        vec!["train", "--train", "train.jsonl", "--test", "leaky.jsonl"],
    ] {
        let out =
            agentopt(dir.path()).args(&args).args(["--no-cache", "--config", &config]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("also in the test set"), "{}", stderr(&out));
        assert!(stderr(&out).contains("--allow-overlap"), "{}", stderr(&out));
    }
    let named = agentopt(dir.path())
        .args(["train", "--train", "train.jsonl", "--test", "leaky.jsonl", "--config", &config])
        .output()
        .unwrap();
    assert!(stderr(&named).contains("b = y"), "{}", stderr(&named));
    assert!(!dir.path().join("runs").read_dir().map(|mut d| d.next().is_some()).unwrap_or(false));
    let allowed = agentopt(dir.path())
        .args([
            "train",
            "--train",
            "train.jsonl",
            "--test",
            "leaky.jsonl",
            "--allow-overlap",
            "--epochs",
            "1",
        ])
        .args(["--no-cache", "--run", "leak", "--json", "--config", &config])
        .output()
        .unwrap();
    support::json_summary(&allowed);
    assert_eq!(read(&dir.path().join("runs/leak/run.json"))["data"]["allow_overlap"], true);
}

/// Item 10: sizes the data cannot give and subjects that match nothing say what there is.
#[tokio::test(flavor = "multi_thread")]
async fn impossible_selections_name_what_the_data_hold() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..10)
        .map(|i| {
            let subject = if i % 2 == 0 { "Geometry" } else { "Algebra" };
            json!({"id": format!("p{i}"), "problem": format!("What is {i}+1?"), "answer": format!("{}", i + 1), "subject": subject}).to_string()
        })
        .collect();
    std::fs::write(dir.path().join("all.jsonl"), lines.join("\n") + "\n").unwrap();
    let server = Server::start(dir.path(), Duration::ZERO, answer).await;
    let config = server.config.display().to_string();
    let big = agentopt(dir.path())
        .args(["train", "all.jsonl", "--train-size", "1000", "--config", &config])
        .output()
        .unwrap();
    assert_eq!(big.status.code(), Some(2), "{}", stderr(&big));
    assert!(stderr(&big).contains("--train-size 1000: only 8 problems"), "{}", stderr(&big));
    let typo = agentopt(dir.path())
        .args(["train", "all.jsonl", "--subject", "geometri", "--config", &config])
        .output()
        .unwrap();
    assert_eq!(typo.status.code(), Some(2), "{}", stderr(&typo));
    assert!(stderr(&typo).contains("Algebra (5), Geometry (5)"), "{}", stderr(&typo));
}

/// Item 4: a model that refuses every request stops `eval` and `train` at once with the reason and
/// exit 1; a test set whose every problem errored is exit 1 with the reason, not a score of 0/0.
#[tokio::test(flavor = "multi_thread")]
async fn nothing_scored_is_a_failure_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let problems: Vec<(String, String, String)> =
        (1..=8).map(|i| (format!("t{i}"), format!("What is {i}+{i}?"), format!("{}", 2 * i))).collect();
    let refs: Vec<(&str, &str, &str)> =
        problems.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
    support::dataset(&dir.path().join("train.jsonl"), &refs);
    let unauthorized = Server::start(dir.path(), Duration::ZERO, |_| {
        Reply::Status(401, r#"{"error": {"message": "bad key"}}"#.into())
    })
    .await;
    for command in
        [vec!["eval", "--test", "train.jsonl"], vec!["train", "--train", "train.jsonl", "--no-eval"]]
    {
        let out = agentopt(dir.path())
            .args(&command)
            .args(["--no-cache", "--concurrency", "1", "--config"])
            .arg(&unauthorized.config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{command:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("HTTP 401"), "{command:?}: {}", stderr(&out));
    }
    // Fail fast: a refused request or two per command (one may start as the first fails), not one
    // per problem (8 each).
    let requests = unauthorized.bodies().await.len();
    assert!(requests <= 4, "{requests} requests");

    let broken = tempfile::tempdir().unwrap();
    let rejecting = Server::start(broken.path(), Duration::ZERO, |_| {
        Reply::Status(400, r#"{"error": {"message": "too long"}}"#.into())
    })
    .await;
    let out = agentopt(dir.path())
        .args(["eval", "--test", "train.jsonl", "--no-cache", "--json", "--config"])
        .arg(&rejecting.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("every problem errored"), "{}", stderr(&out));
    assert!(stderr(&out).contains("too long"), "{}", stderr(&out));
}

/// Items 5 and 6: a run killed with kill -9 reads as killed with its cut epoch partial; once
/// resumed, its usage counts every request the server received, the cut-off ones included.
#[tokio::test(flavor = "multi_thread")]
async fn spend_and_status_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let problems: Vec<(String, String, String)> = (1..=8)
        .map(|i| (format!("t{i}"), format!("What is {i}+{i}? (easy)"), format!("{}", 2 * i)))
        .collect();
    let refs: Vec<(&str, &str, &str)> =
        problems.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
    support::dataset(&dir.path().join("train.jsonl"), &refs);
    support::dataset(&dir.path().join("test.jsonl"), &[("x", "What is 40+40? (easy)", "80")]);
    let server = Server::start(dir.path(), Duration::from_millis(300), answer).await;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("agentopt"))
        .current_dir(dir.path())
        .env_remove("OAI_CONFIG_LIST")
        .env("AGENTOPT_PYTHON", python())
        .args(train(&server, "k"))
        .args(["--epochs", "2", "--no-eval", "--concurrency", "3"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let events = dir.path().join("runs/k/events.jsonl");
    let started = Instant::now();
    while !std::fs::read_to_string(&events).unwrap_or_default().contains("conversation_done") {
        assert!(started.elapsed() < Duration::from_secs(60), "no conversation completed");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let list = agentopt(dir.path()).args(["runs", "list", "--json"]).output().unwrap();
    assert!(list.status.success(), "{}", stderr(&list));
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed["runs"][0]["status"], "killed", "{listed}");
    let show = agentopt(dir.path()).args(["runs", "show", "k"]).output().unwrap();
    let shown = stdout(&show);
    assert!(shown.contains("partial ("), "{shown}");
    assert!(!shown.contains("accept"), "a cut epoch is not decided: {shown}");

    let resumed = agentopt(dir.path()).args(["resume", "k", "--json"]).output().unwrap();
    let summary = support::json_summary(&resumed);
    assert_eq!(summary["status"], "completed");
    let requests = server.bodies().await.len() as u64;
    let calls = summary["usage"]["calls"].as_u64().unwrap();
    // Every request the server saw is paid for; at most the few sent as the kill landed are
    // counted without having arrived.
    assert!(
        calls >= requests && calls <= requests + 3,
        "usage counts {calls} calls, the server saw {requests}"
    );
    let list = agentopt(dir.path()).args(["runs", "list", "--json"]).output().unwrap();
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed["runs"][0]["status"], "completed");
}

/// Item 7: a budget stop of `eval` is a clean stop in words (exit 0, as `train`'s is).
#[tokio::test(flavor = "multi_thread")]
async fn eval_budget_stop_is_clean_and_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let problems: Vec<(String, String, String)> = (1..=6)
        .map(|i| (format!("t{i}"), format!("What is {i}+{i}? (easy)"), format!("{}", 2 * i)))
        .collect();
    let refs: Vec<(&str, &str, &str)> =
        problems.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
    support::dataset(&dir.path().join("test.jsonl"), &refs);
    let server = Server::start(dir.path(), Duration::ZERO, answer).await;
    // A call costs $0.00014: the budget allows two.
    let out = agentopt(dir.path())
        .args(["eval", "--test", "test.jsonl", "--no-cache", "--concurrency", "1", "--max-usd", "0.0003"])
        .arg("--config")
        .arg(&server.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(shown.contains("stopped:   2 of 6 problems done (the --max-usd budget was reached)"), "{shown}");
    assert!(!shown.contains("Some(") && !stderr(&out).contains("resume"), "{shown}");
}

/// Item 9: files follow the umask, logs carry no colour codes when redirected, `runs report --out`
/// takes a directory and refuses a missing one, a dataset may start with a byte-order mark, and
/// scratch directories of killed processes are cleaned up.
#[tokio::test(flavor = "multi_thread")]
async fn files_and_paths_behave() {
    let dir = tempfile::tempdir().unwrap();
    let bom = format!("\u{feff}{}\n", json!({"id": "a", "problem": "What is 1+1? (easy)", "answer": "2"}));
    std::fs::write(dir.path().join("train.jsonl"), bom).unwrap();
    support::dataset(&dir.path().join("test.jsonl"), &[("x", "What is 4+4? (easy)", "8")]);
    let server = Server::start(dir.path(), Duration::ZERO, answer).await;
    let scratch = tempfile::tempdir().unwrap();
    // A pid above the kernel's limit: a process that cannot be alive.
    let stale = scratch.path().join("agentopt-fork-99999999-abc123");
    std::fs::create_dir_all(stale.join("home")).unwrap();
    let out = agentopt(dir.path())
        .args(train(&server, "f"))
        .args(["--epochs", "1", "-v"])
        .env("TMPDIR", scratch.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains('\u{1b}'), "colour codes in redirected logs: {:?}", stderr(&out));
    assert!(!stale.exists(), "the dead process's scratch directory is still there");

    use std::os::unix::fs::PermissionsExt;
    let reference = dir.path().join("plain");
    std::fs::write(&reference, "x").unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for file in ["runs/f/run.json", "runs/f/summary.json", "runs/f/best/registry.json"] {
        assert_eq!(mode(&dir.path().join(file)), mode(&reference), "{file}");
    }

    std::fs::create_dir(dir.path().join("reports")).unwrap();
    let out = agentopt(dir.path()).args(["runs", "report", "f", "--out", "reports/"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("reports/f.html").is_file());
    let missing = dir.path().join("nowhere/deeper/r.html");
    let out = agentopt(dir.path()).args(["runs", "report", "f", "--out"]).arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!dir.path().join("nowhere").exists());
}
