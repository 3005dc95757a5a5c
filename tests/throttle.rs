//! `agentopt eval` against a provider that is over capacity for a while (the benchmark's latency
//! server with a `Throttle`): the conversations in flight come down while it answers 429, go back up
//! once it has recovered, and every problem still completes.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentopt::bench::server::{self, LatencyServer, Script, Throttle, stage_figures};
use serde_json::json;

const PROBLEMS: usize = 120;
const CALLS: u64 = server::CALLS_PER_CONVERSATION as u64;
const CAPACITY: usize = 3;
/// The provider is over capacity for the first 30 conversations' worth of calls.
const THROTTLED_FOR: u64 = 30 * CALLS;
const CONCURRENCY: usize = 12;

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

fn workspace(dir: &Path, server: &LatencyServer) {
    let lines: Vec<String> = (0..PROBLEMS)
        .map(|i| {
            let (problem, answer) = server::problem(i);
            json!({"id": format!("p{i}"), "problem": problem, "answer": answer}).to_string()
        })
        .collect();
    std::fs::write(dir.join("test.jsonl"), lines.join("\n") + "\n").unwrap();
    let config =
        json!([{"model": "m", "api_key": "sk-test", "api_type": "openai", "base_url": server.base_url()}]);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn eval_backs_off_while_throttled_and_recovers() {
    let throttle = Throttle {
        capacity: CAPACITY,
        until_answered: THROTTLED_FOR,
        retry_after: Duration::from_millis(200),
    };
    let server =
        LatencyServer::start_throttled(Duration::from_millis(40), Script::Plain, 20_000, Some(throttle))
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path(), &server);
    let mut eval = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    eval.current_dir(dir.path())
        .env_remove("OAI_CONFIG_LIST")
        .env("AGENTOPT_PYTHON", python())
        .args(["eval", "--test", "test.jsonl", "--config", "config.json", "--no-cache", "--json"])
        .args(["--concurrency", &CONCURRENCY.to_string()])
        .timeout(Duration::from_secs(180));
    let summary = support::json_summary(&support::output_off_runtime(eval).await);
    assert_eq!(summary["correct"], PROBLEMS, "every throttled call was eventually answered: {summary}");

    let arrivals = server.arrivals();
    let rejected = arrivals.iter().filter(|a| a.rejected).count();
    let answered = arrivals.len() - rejected;
    assert_eq!(answered as u64, PROBLEMS as u64 * CALLS);
    // It started at the configured concurrency and was throttled for it.
    assert!(stage_figures(&arrivals, ..CALLS).0 > CAPACITY * 2, "{arrivals:?}");
    assert!(rejected > 0);
    // Down: in the second half of the throttled stage, at most half as many conversations run and
    // few calls are refused any more.
    let (late_peak, late_rejected) = stage_figures(&arrivals, THROTTLED_FOR / 2..THROTTLED_FOR);
    assert!(late_peak <= CONCURRENCY / 2, "{late_peak} conversations late in the throttled stage");
    assert!(late_rejected <= 8, "{late_rejected} refusals late in the throttled stage; {rejected} in all");
    // Up: once the provider recovered, the concurrency climbed well above its old capacity.
    let (recovered, _) = stage_figures(&arrivals, THROTTLED_FOR..);
    assert!(recovered >= 2 * CAPACITY, "peak after recovery {recovered}");
}
