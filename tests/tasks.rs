//! Tasks and metrics end to end: the real binary against a scripted server on the small task sets
//! shipped in datasets/tasks/ (capitals, a table in a field, multiple choice, a GSM8K sample): the
//! general task with each built-in metric, opening templates, a `python:` metric in the sandbox, a
//! `judge:` metric, GSM8K with `numeric`, training a general task, and `eval --run` reusing the task.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, call, text};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped(name: &str) -> PathBuf {
    root().join("datasets/tasks").join(name)
}

fn agentopt(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir)
        .env_remove("OAI_CONFIG_LIST")
        .env("AGENTOPT_PYTHON", root().join(".venv/bin/python"))
        .timeout(Duration::from_secs(180));
    cmd
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The system message of a request.
fn system(body: &Value) -> String {
    body["messages"][0]["content"].as_str().unwrap_or("").to_string()
}

fn opening(body: &Value) -> String {
    body["messages"][1]["content"].as_str().unwrap_or("").to_string()
}

fn is_judge(body: &Value) -> bool {
    system(body).starts_with("You are a careful, strict grader")
}

/// Evaluates `data` with `flags` against a server answering each problem by `answer(opening)`;
/// returns eval's `--json` line and the records.
async fn eval(
    dir: &Path,
    data: &Path,
    flags: &[&str],
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (Value, Vec<Value>, Server) {
    let server = Server::start(dir, Duration::ZERO, move |body| {
        if is_judge(body) {
            let prompt = body["messages"][1]["content"].as_str().unwrap_or("");
            let reference =
                prompt.split("Reference answer:\n").nth(1).unwrap_or("").split("\n\n").next().unwrap();
            let candidate = prompt.rsplit("Candidate answer:\n").next().unwrap_or("");
            if candidate.contains("GARBLED") {
                return text("I think it is fine.");
            }
            let correct = candidate.to_lowercase().contains(&reference.to_lowercase());
            return text(format!("```json\n{{\"correct\": {correct}, \"reason\": \"compared\"}}\n```"));
        }
        text(answer(&opening(body)))
    })
    .await;
    let out_file = dir.join("records.jsonl");
    let mut cmd = agentopt(dir);
    cmd.args(["eval", "--json", "--concurrency", "4", "--config"])
        .arg(&server.config)
        .arg("--test")
        .arg(data)
        .arg("--out")
        .arg(&out_file)
        .args(flags);
    let out = support::output_off_runtime(cmd).await;
    let summary = support::json_summary(&out);
    (summary, lines(&out_file), server)
}

/// The question of a shipped problem, from an opening that ends with it (or names it after "Question: ").
fn question(opening: &str) -> &str {
    let q = opening.split("Question: ").nth(1).unwrap_or(opening);
    q.split("\n\n").next().unwrap_or(q).trim()
}

fn answers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(q, a)| (q.to_string(), a.to_string())).collect()
}

#[tokio::test]
async fn general_task_with_the_text_metrics() {
    let replies = answers(&[
        ("What is the capital of France?", "The capital of France is Paris.\nAnswer: paris.\nTERMINATE"),
        ("What is the capital of Japan?", "Answer: Tokyo\nTERMINATE"),
        ("What is the capital of the United States?", "Washington. TERMINATE"),
        ("What is the capital of Australia?", "Answer: Sydney\nTERMINATE"),
        ("What is the capital of Canada?", "Ottawa"),
        ("What is the capital of Brazil?", "\\boxed{Brasília} TERMINATE"),
        ("What is the capital of Kenya?", "Answer: Nairobi"),
        ("What is the capital of Switzerland?", "It is Berne, the federal city.\nTERMINATE"),
    ]);
    let reply = move |q: &str| replies.get(question(q)).cloned().unwrap_or_else(|| format!("?? {q}"));
    let dir = tempfile::tempdir().unwrap();
    let data = shipped("capitals.jsonl");
    // normalized: case and the full stop folded; a list reference accepts any item. Canada's and
    // Kenya's replies never say TERMINATE (no answer at the turn limit but an explicit one counts).
    let (s, records, _server) = eval(dir.path(), &data, &["--task", "general"], reply.clone()).await;
    let by_id = |records: &[Value], id: &str| records.iter().find(|r| r["id"] == id).cloned().unwrap();
    assert_eq!(by_id(&records, "cap1")["answer"], "paris.");
    assert_eq!(by_id(&records, "cap3")["score"], 1.0, "a list reference accepts `Washington`");
    assert_eq!(by_id(&records, "cap4")["correct"], false);
    assert_eq!(by_id(&records, "cap5")["answer"], Value::Null, "no TERMINATE, no explicit answer");
    assert_eq!(by_id(&records, "cap7")["answer"], "Nairobi", "an `Answer:` line counts at the turn limit");
    assert_eq!(by_id(&records, "cap8")["correct"], false, "a sentence is not `Berne` when normalized");
    assert_eq!(
        (s["correct"].as_u64(), s["total"].as_u64(), s["errored"].as_u64()),
        (Some(5), Some(8), Some(0))
    );
    assert_eq!(s["rate"], 5.0 / 8.0);
    // exact: `paris.` is not `Paris`.
    let dir = tempfile::tempdir().unwrap();
    let (s, _, _server) =
        eval(dir.path(), &data, &["--task", "general", "--metric", "exact"], reply.clone()).await;
    assert_eq!(s["correct"], 4, "{s}");
    // contains: Berne is in the sentence.
    let dir = tempfile::tempdir().unwrap();
    let (s, records, _server) =
        eval(dir.path(), &data, &["--task", "general", "--metric", "contains"], reply).await;
    assert_eq!(by_id(&records, "cap8")["correct"], true);
    assert_eq!(s["correct"], 6, "{s}");
}

#[tokio::test]
async fn opening_templates_fill_dataset_fields_and_numeric_and_choice_score() {
    let dir = tempfile::tempdir().unwrap();
    let replies = answers(&[
        ("Which city has the largest population?", "Cairo has 21,323,000 people.\nAnswer: Cairo\nTERMINATE"),
        ("Which city has the largest area?", "Answer: Kinshasa\nTERMINATE"),
        ("What is the combined population of Lagos and Luanda?", "Answer: 23,718,000 people\nTERMINATE"),
        ("How many square kilometres larger is Cairo than Lagos?", "Answer: 1914 km²\nTERMINATE"),
        ("In which country is Luanda?", "Answer: Angola\nTERMINATE"),
        (
            "What is the population of Kinshasa per square kilometre, rounded to the nearest whole number?",
            "Answer: about 1,500\nTERMINATE",
        ),
    ]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let reply = move |opening: &str| {
        log.lock().unwrap().push(opening.to_string());
        replies.get(question(opening)).cloned().unwrap_or_default()
    };
    let opening = shipped("cities_opening.txt");
    let flags = ["--task", "general", "--metric", "numeric:0.01", "--opening", opening.to_str().unwrap()];
    let (s, records, _server) = eval(dir.path(), &shipped("cities.jsonl"), &flags, reply).await;
    let openings = seen.lock().unwrap().clone();
    assert!(
        openings.iter().all(|o| o.contains("| Kinshasa | DR Congo | 14,970,000 | 9,965 |")),
        "{openings:?}"
    );
    assert!(openings.iter().all(|o| !o.contains("{table}") && !o.contains("{problem}")));
    // numeric:0.01 — 1,500 is within 1% of 1502; names are no numbers (no_answer: wrong).
    let scores: Vec<(String, bool)> = records
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["correct"].as_bool().unwrap()))
        .collect();
    let right: Vec<&str> = scores.iter().filter(|(_, ok)| *ok).map(|(id, _)| id.as_str()).collect();
    assert_eq!(right, ["tab3", "tab4", "tab6"], "{records:?}");
    assert_eq!(s["correct"], 3);
    // The table is kept in the record, as every other field of the line.
    assert!(records[0]["fields"]["table"].as_str().unwrap().contains("Lagos"));

    // choice: the letter, however it is written.
    let dir = tempfile::tempdir().unwrap();
    let letters = answers(&[
        ("Which gas do plants take in for photosynthesis?", "Answer: (B)\nTERMINATE"),
        ("What is the largest planet of the solar system?", "Answer: C. Jupiter\nTERMINATE"),
        ("Which number is prime?", "The answer is C. TERMINATE"),
        ("Who wrote 'Pride and Prejudice'?", "Answer: B\nTERMINATE"),
        ("What is the boiling point of water at sea level in °C?", "**Answer:** b\nTERMINATE"),
    ]);
    let reply = move |opening: &str| {
        let q = opening.lines().next().unwrap_or("");
        assert!(opening.contains("(A) "), "the choices field is in the opening: {opening}");
        letters.get(q).cloned().unwrap_or_default()
    };
    let opening = shipped("choice_opening.txt");
    let flags = ["--task", "general", "--metric", "choice", "--opening", opening.to_str().unwrap()];
    let (s, _, _server) = eval(dir.path(), &shipped("choice.jsonl"), &flags, reply).await;
    assert_eq!((s["correct"].as_u64(), s["total"].as_u64()), (Some(4), Some(5)), "{s}");
}

#[tokio::test]
async fn bad_task_flags_are_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("opening.txt");
    let cases: [(&str, &[&str], &str); 5] = [
        ("Use {tabel}: {problem}", &[], "field `{tabel}` is not in problem `tab1`"),
        ("The answer is {answer}", &[], "is the reference answer"),
        ("{problem}", &["--metric", "numeric:abc"], "the tolerance must be a number"),
        ("{problem}", &["--metric", "python:missing.py:f"], "cannot read `missing.py`"),
        ("{problem}", &["--metric", "judge:no-such-model"], "judge:no-such-model"),
    ];
    for (text, extra, expected) in cases {
        std::fs::write(&template, text).unwrap();
        let config = dir.path().join("list.json");
        std::fs::write(&config, r#"[{"model": "m", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}]"#)
            .unwrap();
        let out = agentopt(dir.path())
            .args(["eval", "--task", "general", "--config"])
            .arg(&config)
            .arg("--test")
            .arg(shipped("cities.jsonl"))
            .arg("--opening")
            .arg(&template)
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text} {extra:?}: {stderr}");
        assert!(stderr.contains(expected), "{text} {extra:?}: {stderr}");
    }
}

#[tokio::test]
async fn python_metric_runs_in_the_sandbox_and_its_failures_are_errored() {
    let dir = tempfile::tempdir().unwrap();
    let metric = dir.path().join("my_metric.py");
    std::fs::write(
        &metric,
        "import os\n\ndef score(answer, reference, example):\n    \
         if example['id'] == 'cap2':\n        return 1 / 0\n    \
         if example['id'] == 'cap3':\n        return 1.5\n    \
         if example['id'] == 'cap4':\n        return os.path.exists(example['secret'])\n    \
         if answer is None:\n        return 0\n    \
         return 1.0 if answer.lower() == str(reference).lower() else 0.25\n",
    )
    .unwrap();
    let data = dir.path().join("data.jsonl");
    let rows = [
        json!({"id": "cap1", "problem": "What is the capital of France?", "answer": "Paris"}),
        json!({"id": "cap2", "problem": "What is the capital of Japan?", "answer": "Tokyo"}),
        json!({"id": "cap3", "problem": "What is the capital of Peru?", "answer": "Lima"}),
        // The metric runs sandboxed: the runs directory (where this file sits) is not visible.
        json!({"id": "cap4", "problem": "What is the capital of Chile?", "answer": "Santiago",
               "secret": dir.path().join("runs/x").display().to_string()}),
        json!({"id": "cap5", "problem": "What is the capital of Spain?", "answer": "Madrid"}),
    ];
    std::fs::create_dir_all(dir.path().join("runs")).unwrap();
    std::fs::write(dir.path().join("runs/x"), "planted").unwrap();
    std::fs::write(&data, rows.iter().map(|r| r.to_string() + "\n").collect::<String>()).unwrap();
    let reply = |opening: &str| {
        if opening.contains("France") { "Answer: Paris\nTERMINATE" } else { "Answer: Barcelona\nTERMINATE" }
            .to_string()
    };
    let spec = format!("python:{}:score", metric.display());
    let (s, records, _server) =
        eval(dir.path(), &data, &["--task", "general", "--metric", &spec], reply).await;
    let by_id: HashMap<&str, &Value> = records.iter().map(|r| (r["id"].as_str().unwrap(), r)).collect();
    assert!(by_id["cap2"]["errored"].as_str().unwrap().contains("ZeroDivisionError"), "{:?}", by_id["cap2"]);
    assert!(by_id["cap3"]["errored"].as_str().unwrap().contains("outside [0, 1]"));
    assert_eq!(by_id["cap4"]["score"], 0.0, "the metric cannot see the runs directory");
    assert_eq!((by_id["cap1"]["score"].as_f64(), by_id["cap5"]["score"].as_f64()), (Some(1.0), Some(0.25)));
    // Rate: the mean over the three scored problems; correct counts those scored 1.
    assert_eq!((s["correct"].as_u64(), s["errored"].as_u64()), (Some(1), Some(2)));
    assert!((s["rate"].as_f64().unwrap() - 1.25 / 3.0).abs() < 1e-12, "{s}");
}

#[tokio::test]
async fn judge_metric_is_counted_cached_and_its_garbled_verdicts_are_errored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.jsonl");
    let rows = [
        json!({"id": "j1", "problem": "Name the largest ocean.", "answer": "Pacific"}),
        json!({"id": "j2", "problem": "Name a primary colour.", "answer": "red"}),
        json!({"id": "j3", "problem": "Say something.", "answer": "hello"}),
    ];
    std::fs::write(&data, rows.iter().map(|r| r.to_string() + "\n").collect::<String>()).unwrap();
    let reply = |opening: &str| {
        match opening {
            o if o.contains("ocean") => "It is the Pacific Ocean. TERMINATE",
            o if o.contains("colour") => "Green. TERMINATE",
            _ => "GARBLED. TERMINATE",
        }
        .to_string()
    };
    let flags = ["--task", "general", "--metric", "judge:test-model"];
    let (s, records, server) = eval(dir.path(), &data, &flags, reply).await;
    let judged = server.bodies().await.iter().filter(|b| is_judge(b)).count();
    assert_eq!(judged, 3);
    assert_eq!((s["correct"].as_u64(), s["errored"].as_u64()), (Some(1), Some(1)), "{s}");
    let j3 = records.iter().find(|r| r["id"] == "j3").unwrap();
    assert!(j3["errored"].as_str().unwrap().contains("no JSON verdict"), "{j3}");
    // Usage counts the assistant's three calls and the judge's three.
    assert_eq!(s["usage"]["calls"], 6, "{s}");
    // Run again on the same cache: nothing new is asked, of the assistant or of the judge.
    let before = server.bodies().await.len();
    let mut cmd = agentopt(dir.path());
    cmd.args(["eval", "--json", "--config"]).arg(&server.config).arg("--test").arg(&data).args(flags);
    let again = support::json_summary(&support::output_off_runtime(cmd).await);
    assert_eq!(server.bodies().await.len(), before);
    assert_eq!(again["correct"], 1);
}

#[tokio::test]
async fn gsm8k_scores_with_numeric() {
    // The GSM8K sample shipped here, and the full test set where ../shared has it (first 200).
    let mut sets = vec![(shipped("gsm8k_sample.jsonl"), None)];
    let full = root().join("../shared/datasets/gsm8k/test.jsonl");
    if full.exists() {
        sets.push((full, Some("200")));
    }
    for (data, size) in sets {
        let problems = agentopt::dataset::load(&data).unwrap();
        let key: HashMap<String, String> =
            problems.iter().map(|p| (p.problem.clone(), p.answer.clone())).collect();
        let n = size.map_or(problems.len(), |s| s.parse().unwrap());
        // Right with a dollar sign and thousands commas, except every fifth problem (off by one).
        let reply = move |opening: &str| {
            let reference: f64 = key.get(opening).unwrap().parse().unwrap();
            let wrong = (reference as i64) % 5 == 0;
            let given = if wrong { reference + 1.0 } else { reference };
            format!("So the total is ${}. TERMINATE", format_thousands(given))
        };
        let dir = tempfile::tempdir().unwrap();
        let mut flags = vec!["--task", "general", "--metric", "numeric"];
        if let Some(size) = size {
            flags.extend(["--test-size", size]);
        }
        let (s, records, _server) = eval(dir.path(), &data, &flags, reply).await;
        let wrong = problems[..n].iter().filter(|p| p.answer.parse::<f64>().unwrap() as i64 % 5 == 0).count();
        assert_eq!(s["total"].as_u64(), Some(n as u64));
        assert_eq!(s["correct"].as_u64(), Some((n - wrong) as u64), "{}", data.display());
        assert!(records.iter().all(|r| r["decided_by"] == "numeric"));
    }
}

fn format_thousands(x: f64) -> String {
    let whole = x.trunc() as i64;
    let digits = whole.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    let sign = if whole < 0 { "-" } else { "" };
    let frac = x - x.trunc();
    if frac.abs() > 1e-9 {
        format!("{sign}{out}{}", &format!("{frac:.2}")[1..])
    } else {
        format!("{sign}{out}")
    }
}

const CAPITAL_OF: &str = "def capital_of(country):\n    capitals = {'france': 'Paris', 'japan': 'Tokyo', \
'peru': 'Lima', 'chile': 'Santiago', 'spain': 'Madrid', 'italy': 'Rome'}\n    \
return capitals.get(country.strip().lower(), 'unknown')\n";

#[tokio::test]
async fn a_learned_function_raises_a_general_tasks_score_and_eval_run_reuses_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, rows: &[(&str, &str, &str)]| support::dataset_in(dir.path(), name, rows);
    let train = write(
        "train.jsonl",
        &[
            ("a", "What is the capital of France?", "Paris"),
            ("b", "What is the capital of Japan?", "Tokyo"),
            ("c", "What is the capital of Peru?", "Lima"),
        ],
    );
    let test = write(
        "test.jsonl",
        &[("x", "What is the capital of Spain?", "Madrid"), ("y", "What is the capital of Italy?", "Rome")],
    );
    let system_file = dir.path().join("system.txt");
    std::fs::write(&system_file, "You answer geography questions. End with TERMINATE.").unwrap();
    let steps = Arc::new(AtomicUsize::new(0));
    let counter = steps.clone();
    let server = Server::start(dir.path(), Duration::ZERO, move |body| {
        if support::is_optimizer(body) {
            // One step: add the function; afterwards, nothing more.
            if support::messages(body).len() == 2 && counter.fetch_add(1, Ordering::SeqCst) == 0 {
                return call(
                    "add_function",
                    json!({"name": "capital_of", "description": "The capital city of a country.",
                           "arguments": "{\"country\": {\"type\": \"string\"}}", "packages": "", "code": CAPITAL_OF}),
                );
            }
            return text("TERMINATE");
        }
        let last = support::last(body);
        if last["role"] == "tool" {
            return text(format!("Answer: {}\nTERMINATE", last["content"].as_str().unwrap_or("").trim()));
        }
        let q = opening(body);
        let country = q.trim_start_matches("What is the capital of ").trim_end_matches('?').to_string();
        if support::tools(body).contains(&"capital_of".to_string()) {
            return call("capital_of", json!({"country": country}));
        }
        text(if country == "France" { "Answer: Paris\nTERMINATE" } else { "I do not know. TERMINATE" })
    })
    .await;
    let mut cmd = agentopt(dir.path());
    cmd.args([
        "train",
        "--json",
        "--run",
        "geo",
        "--epochs",
        "3",
        "--task",
        "general",
        "--metric",
        "normalized",
    ])
    .arg("--system")
    .arg(&system_file)
    .arg("--config")
    .arg(&server.config)
    .arg("--train")
    .arg(&train)
    .arg("--test")
    .arg(&test);
    let summary = support::json_summary(&support::output_off_runtime(cmd).await);
    let history = summary["history"].as_array().unwrap();
    assert_eq!(history[0]["score"], 1.0 / 3.0);
    assert_eq!((history[1]["score"].as_f64(), history[1]["decision"].as_str()), (Some(1.0), Some("accept")));
    assert_eq!(summary["eval"]["before"]["rate"], 0.0);
    assert_eq!(summary["eval"]["after"]["rate"], 1.0);
    let bodies = server.bodies().await;
    let optimizer = bodies.iter().find(|b| support::is_optimizer(b)).unwrap();
    assert!(!system(optimizer).contains("math"), "{}", system(optimizer));
    let state = optimizer["messages"][1]["content"].as_str().unwrap();
    assert!(state.contains("You answer geography questions."), "the optimizer sees the assistant's task");
    assert!(
        bodies
            .iter()
            .filter(|b| !support::is_optimizer(b))
            .all(|b| system(b).starts_with("You answer geography"))
    );
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("runs/geo/run.json")).unwrap())
            .unwrap();
    assert_eq!(
        (run["task"]["kind"].as_str(), run["task"]["metric"].as_str()),
        (Some("general"), Some("normalized"))
    );

    let shown = agentopt(dir.path()).args(["runs", "show", "geo"]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(shown.contains("task: general, metric normalized, system message from "), "{shown}");

    // eval --run: the run's task and metric without repeating them.
    let before = bodies.len();
    let mut cmd = agentopt(dir.path());
    cmd.args(["eval", "--json", "--no-cache", "--run", "geo", "--config"])
        .arg(&server.config)
        .arg("--test")
        .arg(&test);
    let evaluated = support::json_summary(&support::output_off_runtime(cmd).await);
    assert_eq!(evaluated["rate"], 1.0, "{evaluated}");
    let bodies = server.bodies().await;
    assert!(bodies[before..].iter().all(|b| system(b).starts_with("You answer geography")));

    // A flag replaces only its part of the recorded task: the run's system message stays.
    let before = bodies.len();
    let out_file = dir.path().join("contains.jsonl");
    let mut cmd = agentopt(dir.path());
    cmd.args(["eval", "--json", "--no-cache", "--run", "geo", "--metric", "contains", "--config"])
        .arg(&server.config)
        .arg("--test")
        .arg(&test)
        .arg("--out")
        .arg(&out_file);
    let evaluated = support::json_summary(&support::output_off_runtime(cmd).await);
    assert_eq!(evaluated["rate"], 1.0, "{evaluated}");
    // (The tool result is the return value's repr, `'Madrid'`: `contains` folds the quotes.)
    assert!(lines(&out_file).iter().all(|r| r["decided_by"] == "contains"));
    let bodies = server.bodies().await;
    assert!(bodies[before..].iter().all(|b| system(b).starts_with("You answer geography")));
}

#[tokio::test]
async fn chat_scores_with_the_metric_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start(dir.path(), Duration::ZERO, |_| text("The capital is Paris, of course. TERMINATE"))
            .await;
    let save = dir.path().join("chat.json");
    let mut cmd = agentopt(dir.path());
    cmd.args(["chat", "What is the capital of France?", "--human-input", "never", "--task", "general"])
        .args(["--answer", "Paris", "--metric", "contains", "--config"])
        .arg(&server.config)
        .arg("--save")
        .arg(&save);
    let out = support::output_off_runtime(cmd).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let record: Value = serde_json::from_str(&std::fs::read_to_string(&save).unwrap()).unwrap();
    assert_eq!((record["correct"].as_bool(), record["decided_by"].as_str()), (Some(true), Some("contains")));
}

#[tokio::test]
async fn resume_scores_with_the_recorded_task_even_when_its_files_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.jsonl");
    support::dataset(
        &data,
        &[
            ("a", "What is the capital of France?", "Paris"),
            ("b", "What is the capital of Japan?", "Tokyo"),
            ("c", "What is the capital of Peru?", "Lima"),
            ("d", "What is the capital of Chile?", "Santiago"),
        ],
    );
    let metric = dir.path().join("metric.py");
    std::fs::write(&metric, "def half(answer, reference, example):\n    return 0.5 if answer else 0.0\n")
        .unwrap();
    let system_file = dir.path().join("system.txt");
    std::fs::write(&system_file, "Answer in one word, then TERMINATE.").unwrap();
    let server = Server::start(dir.path(), Duration::ZERO, |body| {
        if support::is_optimizer(body) { text("TERMINATE") } else { text("Answer: X\nTERMINATE") }
    })
    .await;
    let spec = format!("python:{}:half", metric.display());
    let mut cmd = agentopt(dir.path());
    // A budget for about three calls: the run stops partway, resumable.
    cmd.args(["train", "--json", "--run", "r", "--epochs", "2", "--concurrency", "1", "--test-size", "1"])
        .args(["--task", "general", "--metric", &spec, "--max-usd", "0.0004", "--config"])
        .arg(&server.config)
        .arg("--system")
        .arg(&system_file)
        .arg(&data);
    let stopped = support::json_summary(&support::output_off_runtime(cmd).await);
    let run_json = std::fs::read_to_string(dir.path().join("runs/r/run.json")).unwrap();
    assert!(run_json.contains("Answer in one word") && run_json.contains("def half"), "{run_json}");
    assert!(stopped["history"].as_array().is_none_or(|h| h.len() < 2), "{stopped}");
    // The files the task came from are gone: run.json holds their texts.
    std::fs::remove_file(&metric).unwrap();
    std::fs::remove_file(&system_file).unwrap();
    let before = server.bodies().await.len();
    let mut cmd = agentopt(dir.path());
    cmd.args(["resume", "r", "--json", "--max-usd", "1"]);
    let done = support::json_summary(&support::output_off_runtime(cmd).await);
    assert_eq!(done["eval"]["after"]["rate"], 0.5, "{done}");
    assert_eq!(done["history"][0]["score"], 0.5);
    let bodies = server.bodies().await;
    assert!(bodies.len() > before);
    assert!(
        bodies[before..]
            .iter()
            .filter(|b| !support::is_optimizer(b))
            .all(|b| system(b) == "Answer in one word, then TERMINATE.")
    );
}
