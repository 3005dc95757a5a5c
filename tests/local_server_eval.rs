//! The real `agentopt eval` binary against a real OpenAI-compatible server no one here wrote
//! (llama-cpp-python's, on the default GGUF): every assistant turn of two tiny problems is answered by
//! the server through the project's OpenAI backend, so nothing is errored. Accuracy is not checked (a
//! 270M base model). The config entry caps replies with `max_tokens`: the base model otherwise writes
//! until its request times out. Needs `scripts/setup-test-server.sh` (run by scripts/test.sh).

use std::path::Path;
use std::time::{Duration, Instant};

use agentopt::bench::llama_server;
use serde_json::{Value, json};

#[tokio::test]
async fn eval_binary_scores_two_problems_through_the_real_server() {
    let gguf = agentopt::llm::local::default_model_path().expect("default weights (scripts/setup.sh)");
    let python = agentopt::exec::find_python();
    let format = Some(llama_server::BASE_MODEL_CHAT_FORMAT);
    let server = llama_server::start(&python, &gguf, 4096, format, Duration::from_secs(120)).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("OAI_CONFIG_LIST.json");
    let list = json!([{"model": "gemma-3-270m", "base_url": server.base_url, "api_type": "openai",
                       "api_key": "not-needed", "timeout": 60, "max_tokens": 64}]);
    std::fs::write(&config, list.to_string()).unwrap();
    let test = dir.path().join("test.jsonl");
    let problems = [
        json!({"problem": "What is $2 + 3$?", "answer": "5"}),
        json!({"problem": "What is $4 \\times 6$?", "answer": "24"}),
    ];
    let lines: Vec<String> = problems.iter().map(Value::to_string).collect();
    std::fs::write(&test, lines.join("\n") + "\n").unwrap();

    let started = Instant::now();
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        let (config, test) = (config.clone(), test.clone());
        move || {
            let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
            assert_cmd::Command::cargo_bin("agentopt")
                .unwrap()
                .current_dir(&dir)
                .env_remove("OAI_CONFIG_LIST")
                .env_remove("OPENAI_API_KEY")
                .env("AGENTOPT_PYTHON", python)
                .args(["eval", "--json", "--no-cache", "--concurrency", "1", "--exec-timeout", "5"])
                .arg("--test")
                .arg(&test)
                .arg("--config")
                .arg(&config)
                .arg("--runs-dir")
                .arg(dir.join("runs"))
                .arg("--out")
                .arg(dir.join("records.jsonl"))
                .timeout(Duration::from_secs(400))
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let took = started.elapsed();
    drop(server);

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?} after {took:?}\nstdout: {stdout}\nstderr: {stderr}", out.status);
    let line = stdout.lines().last().unwrap_or_else(|| panic!("no output; stderr: {stderr}"));
    let score: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let records = std::fs::read_to_string(dir.path().join("records.jsonl")).unwrap_or_default();
    assert_eq!(score["total"], 2, "{score}\n{records}");
    assert_eq!(score["errored"], 0, "the server must answer every call: {score}\n{records}");
    assert!(score["correct"].as_u64().is_some_and(|c| c <= 2), "{score}");
    let rate = score["rate"].as_f64().unwrap_or(-1.0);
    assert!((0.0..=1.0).contains(&rate), "{score}");
    assert!(score["usage"]["input_tokens"].as_u64().unwrap_or(0) > 0, "usage from the server: {score}");
    eprintln!("eval through llama_cpp.server took {took:?}: {score}");
}
