//! Benchmark sections that run the real `agentopt eval` against the scripted latency server: wall time
//! against the latency floor, framework work per assistant turn, peak memory with 1,000 conversations
//! in flight, and the model calls a cache re-run avoids.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::harness::{Outcome, Workspace};
use super::round3;
use super::server::{self, LatencyServer, Script};

const CALLS: usize = server::CALLS_PER_CONVERSATION;
/// A benchmark eval that takes longer than this is hung.
const LIMIT: Duration = Duration::from_secs(300);
const MIB: f64 = 1024.0 * 1024.0;

fn secs(d: Duration) -> f64 {
    round3(d.as_secs_f64())
}

/// The best any scheduler can do: one conversation's calls in sequence, or all calls spread over
/// `concurrency` lanes, whichever is longer.
pub fn floor(problems: usize, concurrency: usize, latency: Duration) -> Duration {
    let sequential = latency * CALLS as u32;
    let spread = latency.mul_f64((problems * CALLS) as f64 / concurrency.max(1) as f64);
    sequential.max(spread)
}

/// Starts a server and a workspace of `n` problems, runs `eval` once.
async fn one_run(
    latency: Duration,
    script: Script,
    n: usize,
    concurrency: usize,
) -> Result<(Outcome, u64), String> {
    let server = LatencyServer::start(latency, script, (n * CALLS * 2) as u64 + 16)
        .await
        .map_err(|e| format!("cannot start the benchmark server: {e}"))?;
    let workspace = Workspace::new(&server, n)?;
    let outcome = workspace.eval(concurrency, &["--no-cache"], LIMIT).await?;
    check_all_correct(&outcome, n)?;
    Ok((outcome, server.calls()))
}

fn check_all_correct(outcome: &Outcome, n: usize) -> Result<(), String> {
    let correct = outcome.summary["correct"].as_u64().unwrap_or(0) as usize;
    if correct != n {
        return Err(format!("expected {n} correct answers, got {}", outcome.summary));
    }
    Ok(())
}

/// Wall time of `eval` at several concurrencies, 200 ms per model call, against the floor.
pub async fn latency(quick: bool) -> Value {
    let latency = Duration::from_millis(200);
    // (label, script, problems, concurrency)
    // Quick mode runs fewer code problems: each starts a Python worker, which dominates on few cores.
    let code = |full: usize| if quick { full / 4 } else { full };
    let mut plan = vec![
        ("code_c1", Script::Code, code(16), 1),
        ("code_c8", Script::Code, code(64), 8),
        ("code_c32", Script::Code, code(64), 32),
        ("code_c64", Script::Code, code(64), 64),
        ("plain_c32", Script::Plain, 64, 32),
    ];
    if !quick {
        plan.push(("plain_c8", Script::Plain, 64, 8));
    }
    let mut figures = Map::new();
    for (label, script, n, concurrency) in plan {
        let row = match one_run(latency, script, n, concurrency).await {
            Ok((outcome, calls)) => {
                let floor = floor(n, concurrency, latency);
                json!({
                    "problems": n, "concurrency": concurrency, "model_calls": calls,
                    "wall_s": secs(outcome.wall), "floor_s": secs(floor),
                    "ratio": round3(outcome.wall.as_secs_f64() / floor.as_secs_f64()),
                    "cpu_s": secs(outcome.cpu),
                })
            }
            Err(e) => json!({"error": e}),
        };
        figures.insert(label.into(), row);
    }
    Value::Object(figures)
}

/// `eval` of 512 code problems at `--concurrency 128` (floor 2.4 s; quick: 128 at 64): the ratio to
/// the floor, sessions started per second, and where the conversations' time went, from the records'
/// `timing` (model, session start, execution, grading, and the rest: the loop and waiting for a core).
pub async fn scale(quick: bool) -> Value {
    let latency = Duration::from_millis(200);
    let (n, concurrency) = if quick { (128, 64) } else { (512, 128) };
    let result: Result<Value, String> = async {
        let server = LatencyServer::start(latency, Script::Code, (n * CALLS * 2) as u64 + 16)
            .await
            .map_err(|e| format!("cannot start the benchmark server: {e}"))?;
        let workspace = Workspace::new(&server, n)?;
        let outcome = workspace.eval(concurrency, &["--no-cache", "--out", "scale.jsonl"], LIMIT).await?;
        check_all_correct(&outcome, n)?;
        let records: Vec<crate::record::ConversationRecord> =
            crate::run_dir::read_lines(&workspace.path().join("scale.jsonl")).map_err(|e| e.to_string())?;
        let floor = floor(n, concurrency, latency);
        let wall = outcome.wall.as_secs_f64();
        Ok(json!({
            "problems": n, "concurrency": concurrency,
            "wall_s": secs(outcome.wall), "floor_s": secs(floor),
            "ratio": round3(wall / floor.as_secs_f64()),
            "sessions_per_s": round3(records.iter().filter(|r| !r.executions.is_empty()).count() as f64 / wall),
            "cpu_s": secs(outcome.cpu),
            "per_conversation_ms": breakdown(&records),
        }))
    }
    .await;
    result.unwrap_or_else(|e| json!({"error": e}))
}

/// Mean milliseconds per conversation in each part of its time, and the p95 of its session start.
fn breakdown(records: &[crate::record::ConversationRecord]) -> Value {
    let n = records.len().max(1) as f64;
    let mean = |f: &dyn Fn(&crate::record::ConversationRecord) -> u64| {
        round3(records.iter().map(|r| f(r) as f64).sum::<f64>() / n)
    };
    let mut starts: Vec<f64> = records.iter().map(|r| r.timing.session_start_ms as f64).collect();
    let start_stats = super::latency_stats(&mut starts);
    json!({
        "total": mean(&|r| r.duration_ms),
        "model": mean(&|r| r.timing.model_ms),
        "session_start": mean(&|r| r.timing.session_start_ms),
        "session_start_p95": start_stats["p95_ms"],
        "execution": mean(&|r| r.timing.execution_ms),
        "grading": mean(&|r| r.timing.grading_ms),
        "other": mean(&|r| {
            let t = &r.timing;
            r.duration_ms.saturating_sub(t.model_ms + t.session_start_ms + t.execution_ms + t.grading_ms)
        }),
    })
}

/// Framework work per assistant turn with a server that answers at once: the difference between a
/// small and a large run (start-up cancels out), per extra turn, one conversation at a time.
pub async fn overhead(quick: bool) -> Value {
    let (small, large) = if quick { (10, 110) } else { (10, 410) };
    let run = |n| one_run(Duration::ZERO, Script::Plain, n, 1);
    match (run(small).await, run(large).await) {
        (Ok((a, _)), Ok((b, _))) => {
            let turns = ((large - small) * CALLS) as f64;
            let per_turn = |x: Duration, y: Duration| round3(y.saturating_sub(x).as_secs_f64() * 1e6 / turns);
            json!({
                "extra_turns": turns,
                "cpu_us_per_turn": per_turn(a.cpu, b.cpu),
                "wall_us_per_turn": per_turn(a.wall, b.wall),
                "startup_wall_s": secs(a.wall),
            })
        }
        (Err(e), _) | (_, Err(e)) => json!({"error": e}),
    }
}

/// Peak RSS of `eval` with 1,000 conversations in flight at once (code-free replies, 200 ms per
/// call so they overlap), next to a one-problem run; and what one warm Python worker costs.
pub async fn memory() -> Value {
    let latency = Duration::from_millis(200);
    let mut figures = Map::new();
    for (label, n) in [("one_conversation", 1), ("concurrent_1000", 1000)] {
        let row = match one_run(latency, Script::Plain, n, n).await {
            Ok((outcome, _)) => json!({
                "conversations": n, "peak_rss_mb": round3(outcome.max_rss as f64 / MIB),
                "wall_s": secs(outcome.wall), "floor_s": secs(floor(n, n, latency)),
            }),
            Err(e) => json!({"error": e}),
        };
        figures.insert(label.into(), row);
    }
    figures.insert("python_worker".into(), python_worker().await);
    figures.insert("bench_process_peak_rss_mb".into(), json!(round3(own_peak_rss() as f64 / MIB)));
    Value::Object(figures)
}

/// Memory of one sandboxed worker after its preload (what each conversation running code adds): peak
/// RSS, and — since a forked worker shares the fork server's pages — its proportional share (PSS) and
/// the pages it holds alone.
async fn python_worker() -> Value {
    let sandbox = match crate::exec::Sandbox::new(crate::exec::SandboxConfig::default()) {
        Ok(s) => s,
        Err(e) => return json!({"error": e.to_string()}),
    };
    let registry = crate::functions::Registry::default();
    // A typical worker: once the full fork server is ready, one forked from it (sympy already
    // imported; spelled so that asking does not make the worker import it).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut session = loop {
        let mut session = match sandbox.session(&registry).await {
            Ok(s) => s,
            Err(e) => return json!({"error": e.to_string()}),
        };
        let probe = session.run_code("import sys\nprint(('sym' + 'py') in sys.modules)").await;
        if !sandbox.forks_sessions() || probe.stdout == "True\n" || std::time::Instant::now() > deadline {
            break session;
        }
        session.close().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let code = "import resource, sympy, numpy\n\
                kb = {l.split(':')[0]: int(l.split()[1]) for l in open('/proc/self/smaps_rollup') \
                if l.rstrip().endswith('kB')}\n\
                print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, kb['Pss'], \
                kb['Private_Clean'] + kb['Private_Dirty'])";
    let execution = session.run_code(code).await;
    session.close().await;
    let numbers: Vec<f64> = execution.stdout.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    match numbers.as_slice() {
        [peak, pss, private] => json!({
            "forked": sandbox.forks_sessions(),
            "peak_rss_mb": round3(peak / 1024.0),
            "pss_mb": round3(pss / 1024.0),
            "private_mb": round3(private / 1024.0),
        }),
        _ => json!({"error": format!("unexpected output: {execution:?}")}),
    }
}

/// This process's own peak RSS (`VmHWM`), in bytes.
pub fn own_peak_rss() -> u64 {
    peak_rss_of("/proc/self/status")
}

/// `VmHWM` of a `/proc/<pid>/status` file, in bytes (0 when unreadable).
pub fn peak_rss_of(status_file: &str) -> u64 {
    let status = std::fs::read_to_string(status_file).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// The same eval twice with the reply cache on: the second run must make no model call.
pub async fn cache(quick: bool) -> Value {
    let n = if quick { 16 } else { 64 };
    let result: Result<Value, String> = async {
        let server = LatencyServer::start(Duration::ZERO, Script::Code, (n * CALLS * 3) as u64)
            .await
            .map_err(|e| format!("cannot start the benchmark server: {e}"))?;
        let workspace = Workspace::new(&server, n)?;
        let first = workspace.eval(8, &["--out", "first.jsonl"], LIMIT).await?;
        let calls_first = server.calls();
        let second = workspace.eval(8, &["--out", "second.jsonl"], LIMIT).await?;
        let calls_second = server.calls() - calls_first;
        check_all_correct(&second, n)?;
        let same = records(&workspace, "first.jsonl") == records(&workspace, "second.jsonl");
        Ok(json!({
            "problems": n,
            "calls_first_run": calls_first, "calls_second_run": calls_second,
            "calls_avoided": calls_first - calls_second,
            "wall_first_s": secs(first.wall), "wall_second_s": secs(second.wall),
            "same_records": same,
        }))
    }
    .await;
    result.unwrap_or_else(|e| json!({"error": e}))
}

/// An `eval --out` file's records without timings and usage (which legitimately differ: cached
/// replies cost nothing); an unreadable file reads as no records.
fn records(workspace: &Workspace, name: &str) -> Vec<crate::record::ConversationRecord> {
    let mut records: Vec<crate::record::ConversationRecord> =
        crate::run_dir::read_lines(&workspace.path().join(name)).unwrap_or_default();
    for r in &mut records {
        r.duration_ms = 0;
        r.timing = Default::default();
        r.usage = Default::default();
        r.executions.iter_mut().for_each(|e| e.duration_ms = 0);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_is_the_longer_of_sequence_and_spread() {
        let ms = Duration::from_millis(200);
        assert_eq!(floor(64, 32, ms), Duration::from_millis(1200));
        assert_eq!(floor(4, 32, ms), Duration::from_millis(600));
        assert_eq!(floor(64, 1, ms), Duration::from_millis(38400));
    }
}
