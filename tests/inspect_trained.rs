//! `agentopt runs` and `agentopt functions` on a run directory the real trainer produced against the
//! scripted server (not hand-made fixtures): a rejected action, a harmful function rolled back, a good
//! one accepted, subjects from the dataset (one via MATH's `type` alias), and a progress display.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Reply, Server, call, text};

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

fn agentopt(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir)
        .env_remove("OAI_CONFIG_LIST")
        .env_remove("OPENAI_API_KEY")
        .env("AGENTOPT_PYTHON", python())
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(120));
    cmd
}

fn stdout_of(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json_of(cmd: &mut assert_cmd::Command) -> Value {
    let text = stdout_of(cmd);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// "What is A+B?" → (A, B).
fn operands(problem: &str) -> (i64, i64) {
    let expr = problem.trim_start_matches("What is ").split('?').next().unwrap();
    let (a, b) = expr.split_once('+').unwrap();
    (a.trim().parse().unwrap(), b.trim().parse().unwrap())
}

/// Uses `add` when offered and boxes its result; boxes code output; solves "easy" problems with code
/// and gets the others wrong.
fn assistant(body: &Value) -> Reply {
    let problem = support::problem(body);
    let last = support::last(body);
    if last["role"] == "tool" || (last["role"] == "user" && support::messages(body).len() > 2) {
        let result = last["content"].as_str().unwrap_or("").trim().to_string();
        return text(format!("So the answer is \\boxed{{{result}}}."));
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

fn add_function(description: &str, code: &str) -> Value {
    json!({"name": "add", "description": description,
           "arguments": "{\"a\": {\"type\": \"integer\"}, \"b\": {\"type\": \"integer\"}}",
           "packages": "", "code": code})
}

const GOOD_ADD: &str = "def add(a, b):\n    return a + b\n";
const BAD_ADD: &str = "def add(a, b):\n    return a - b\n";

fn write_lines(path: &Path, lines: &[Value]) {
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(path, text.join("\n") + "\n").unwrap();
}

/// Step 0 revises a function that does not exist (rejected), then adds a subtracting `add` (epoch 1
/// rolled back); step 1 adds the right `add` (epoch 2 accepted).
async fn trained_run(dir: &Path) -> Server {
    write_lines(
        &dir.join("train.jsonl"),
        &[
            json!({"id": "t1", "problem": "What is 1+2? (easy)", "answer": "3", "subject": "Algebra", "level": 1}),
            json!({"id": "t2", "problem": "What is 20+22?", "answer": "42", "subject": "Algebra"}),
            json!({"id": "t3", "problem": "What is 5+5? (easy)", "answer": "10", "subject": "Geometry"}),
            json!({"id": "t4", "problem": "What is 7+8?", "answer": "15", "subject": "Geometry"}),
        ],
    );
    write_lines(
        &dir.join("test.jsonl"),
        &[
            json!({"id": "s1", "problem": "What is 2+2? (easy)", "answer": "4", "subject": "Algebra"}),
            json!({"id": "s2", "problem": "What is 30+3?", "answer": "33", "subject": "Algebra"}),
            json!({"id": "s3", "problem": "What is 9+9?", "answer": "18", "type": "Geometry", "level": "Level 4"}),
        ],
    );
    let steps = Arc::new(AtomicUsize::new(0));
    let server = Server::start(dir, Duration::ZERO, move |body| {
        if !support::is_optimizer(body) {
            return assistant(body);
        }
        let replies = support::messages(body).iter().filter(|m| m["role"] == "assistant").count();
        let step = if replies == 0 {
            steps.fetch_add(1, Ordering::SeqCst)
        } else {
            steps.load(Ordering::SeqCst) - 1
        };
        match (step, replies) {
            (0, 0) => call("revise_function", add_function("Adds.", GOOD_ADD).tap_name("mul")),
            (0, 1) => call("add_function", add_function("Adds two integers, quickly.", BAD_ADD)),
            (1, 0) => call("add_function", add_function("Adds two integers.", GOOD_ADD)),
            _ => text("TERMINATE"),
        }
    })
    .await;
    let out = agentopt(dir)
        .args(["train", "--train", "train.jsonl", "--test", "test.jsonl", "--config"])
        .arg(&server.config)
        .args(["--run", "real", "--epochs", "3", "--patience", "2", "--no-cache", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    // stderr is not a terminal: plain progress lines, no live redraws.
    assert!(stderr.contains("train epoch 1: 4/4 done, 0 correct (0.0%), 0 errored"), "{stderr}");
    assert!(stderr.contains("eval after: 3/3 done, 3 correct (100.0%)"), "{stderr}");
    assert!(!stderr.contains('\r'), "{stderr:?}");
    server
}

trait TapName {
    fn tap_name(self, name: &str) -> Self;
}

impl TapName for Value {
    fn tap_name(mut self, name: &str) -> Value {
        self["name"] = json!(name);
        self
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn inspecting_a_real_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _server = trained_run(dir).await;
    let run = dir.join("runs/real");
    let summary = read(&run.join("summary.json"));
    let decisions: Vec<(f64, &str)> = summary["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["score"].as_f64().unwrap(), h["decision"].as_str().unwrap()))
        .collect();
    assert_eq!(decisions, [(0.5, "accept"), (0.0, "rollback"), (1.0, "accept")], "{summary}");
    let usage = &summary["usage"];
    let usd = usage["usd"].as_f64().unwrap();
    assert!(usd > 0.0);

    // runs list
    let text = stdout_of(agentopt(dir).args(["runs", "list"]));
    let row = format!("real  completed       3  1.000  0.333 -> 1.000   ${usd:.4}");
    assert!(text.contains(&row), "{text}");
    let v = json_of(agentopt(dir).args(["runs", "list", "--json"]));
    let r = &v["runs"][0];
    assert_eq!(
        (r["status"].as_str(), r["epochs_run"].as_u64(), r["best_epoch"].as_u64()),
        (Some("completed"), Some(3), Some(2))
    );
    assert_eq!(r["stop_reason"], "last_epoch");
    assert_eq!(r["eval"]["before"], summary["eval"]["before"]);
    assert_eq!(r["eval"]["after"], summary["eval"]["after"]);
    assert_eq!(r["usage"], summary["usage"]);
    assert_eq!(r["functions"], json!(["add"]));

    // runs show: the epoch table from summary + events (actions per step, costs).
    let v = json_of(agentopt(dir).args(["runs", "show", "real", "--json"]));
    assert_eq!(v["warnings"], json!([]));
    let epochs = v["epochs"].as_array().unwrap();
    let table: Vec<(f64, &str, u64, u64)> = epochs
        .iter()
        .map(|e| {
            (
                e["score"].as_f64().unwrap(),
                e["decision"].as_str().unwrap(),
                e["actions_applied"].as_u64().unwrap(),
                e["actions_rejected"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(table, [(0.5, "accept", 0, 0), (0.0, "rollback", 1, 1), (1.0, "accept", 1, 0)]);
    let a = &epochs[1]["actions"];
    assert_eq!(
        (a[0]["outcome"].as_str(), a[0]["action"].as_str(), a[0]["function"].as_str()),
        (Some("rejected"), Some("revise_function"), Some("mul"))
    );
    assert!(a[0]["reason"].as_str().unwrap().contains("mul"), "{a}");
    assert_eq!(
        (a[1]["outcome"].as_str(), a[1]["action"].as_str(), a[1]["function"].as_str()),
        (Some("applied"), Some("add_function"), Some("add"))
    );
    // Per-epoch usage read from the records and step events adds up to the trainer's total.
    let calls: u64 = epochs
        .iter()
        .map(|e| e["usage"]["calls"].as_u64().unwrap() + e["optimizer_usage"]["calls"].as_u64().unwrap())
        .sum();
    assert!(epochs[1]["optimizer_usage"]["calls"].as_u64().unwrap() >= 2);
    let eval_calls = |file: &str| -> u64 {
        std::fs::read_to_string(run.join(file))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["usage"]["calls"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        calls + eval_calls("eval/before.jsonl") + eval_calls("eval/after.jsonl"),
        usage["calls"].as_u64().unwrap()
    );
    let text = stdout_of(agentopt(dir).args(["runs", "show", "real"]));
    assert!(text.contains("3 epoch(s), best epoch 2, stopped: last_epoch"), "{text}");
    assert!(text.contains("001    0.000  0/4      0.00–0.49  rollback        1         1"), "{text}");
    assert!(text.contains("002*   1.000  4/4      0.51–1.00  accept          1         0"), "{text}");
    assert!(text.contains("eval before: 1/3 correct (0.333), 0 errored"), "{text}");
    assert!(
        text.contains(&format!(
            "usage: {} calls, {} input + {} output tokens, ${usd:.4}",
            usage["calls"], usage["input_tokens"], usage["output_tokens"]
        )),
        "{text}"
    );

    // runs report: real values of this run.
    let report = dir.join("report.html");
    stdout_of(agentopt(dir).args(["runs", "report", "real", "--out"]).arg(&report));
    let html = std::fs::read_to_string(&report).unwrap();
    for needle in [
        "<svg class=\"score-plot\"".to_string(),
        "epoch 1: 0.000 (rolled back)".into(),
        "epoch 2: 1.000".into(),
        "<svg class=\"rate-bars\"".into(),
        // Subjects come from the datasets (s3's through the `type` alias).
        ">Algebra<".into(),
        ">Geometry<".into(),
        "33.3% → 100.0%".into(),
        "Epoch 001 vs best epoch 000: <span class=\"fixed\">0 fixed</span>, <span class=\"broke\">2 broken</span>".into(),
        "<code>t3</code> What is 5+5? (easy)".into(),
        "Test set, after vs before: <span class=\"fixed\">2 fixed</span>, <span class=\"broke\">0 broken</span>".into(),
        "Epoch 001 (<span class=\"rollback\">rollback</span>) vs best epoch 000".into(),
        "Epoch 002 (<span class=\"accept\">accept</span>) vs best epoch 000".into(),
        // The rolled-back function, highlighted: its plain tokens run together.
        "a - b".into(),
        "<span class=\"broke\">rejected</span> revise_function <code>mul</code>".into(),
        "<span class=\"fixed\">applied</span> add_function <code>add</code>".into(),
        format!("${usd:.4}"),
        format!(
            "<tr><td>run total</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            usage["calls"], usage["input_tokens"], usage["output_tokens"]
        ),
    ] {
        assert!(html.contains(&needle), "report lacks {needle:?}");
    }
    assert!(!html.contains(">(none)<"), "every problem has a subject");
    assert!(!html.contains(support::SECRET));

    // functions list / show / diff / export on the run.
    let text = stdout_of(agentopt(dir).args(["functions", "list", "real"]));
    assert!(text.contains("add(a: integer, b: integer)") && text.contains("Adds two integers."), "{text}");
    let v = json_of(agentopt(dir).args(["functions", "list", "real@1", "--json"]));
    assert_eq!(v["functions"][0]["description"], "Adds two integers, quickly.");
    let text = stdout_of(agentopt(dir).args(["functions", "show", "real", "add"]));
    assert!(text.contains(GOOD_ADD.trim_end()), "{text}");
    let v = json_of(agentopt(dir).args(["functions", "diff", "real@0", "real@best", "--json"]));
    assert_eq!(v["diff"]["added"][0]["name"], "add");
    let text = stdout_of(agentopt(dir).args(["functions", "diff", "real@1", "real@best"]));
    assert!(
        text.contains("revised  add (code, description)")
            && text.contains("-    return a - b\n+    return a + b"),
        "{text}"
    );

    let module = dir.join("learned.py");
    stdout_of(
        agentopt(dir).args(["functions", "export", "real", "--format", "python", "--out"]).arg(&module),
    );
    let out = StdCommand::new(python())
        .args(["-c", "import json, learned; print(json.dumps([learned.add(20, 22), learned.__all__]))"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!([42, ["add"]]));
}
