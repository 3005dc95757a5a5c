//! Benchmark section for the sandbox: warm code-block and function-call latency, session start time,
//! and how many sessions per second start when started concurrently — for sessions forked from the
//! fork server (where it applies) and for sessions in a sandbox of their own.

use std::time::Instant;

use serde_json::{Value, json};

use super::{latency_stats, round3};
use crate::exec::{ExecStatus, Sandbox, SandboxConfig};
use crate::functions::{FunctionDef, Registry};

struct Plan {
    warm_runs: usize,
    session_starts: usize,
    concurrent_sessions: usize,
}

pub async fn run(quick: bool) -> Value {
    let plan = if quick {
        Plan { warm_runs: 200, session_starts: 3, concurrent_sessions: 4 }
    } else {
        Plan { warm_runs: 2000, session_starts: 10, concurrent_sessions: 8 }
    };
    match measure(&plan).await {
        Ok(figures) => figures,
        Err(message) => json!({"error": message}),
    }
}

fn elapsed_ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

fn registry() -> Registry {
    Registry {
        functions: vec![FunctionDef {
            name: "add".into(),
            description: "Adds two numbers.".into(),
            parameters: json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}),
            packages: vec![],
            code: "def add(a, b):\n    return a + b\n".into(),
        }],
    }
}

async fn measure(plan: &Plan) -> Result<Value, String> {
    let sandbox = Sandbox::new(SandboxConfig::default()).map_err(|e| e.to_string())?;
    let registry = registry();
    let mut figures = json!({"isolated": sandbox.is_isolated(), "forked_sessions": sandbox.forks_sessions()});
    if sandbox.forks_sessions() {
        // The fork server's own start: interpreter, bwrap and the whole preload, once per run.
        let start = Instant::now();
        sandbox.session(&registry).await.map_err(|e| e.to_string())?.run_code("import sympy").await;
        figures["fork_server_ready_ms"] = json!(round3(elapsed_ms(start)));
    }
    starts(&sandbox, &registry, plan, &mut figures).await?;
    if sandbox.forks_sessions() {
        let own = Sandbox::new(SandboxConfig { fork_server: false, ..SandboxConfig::default() })
            .map_err(|e| e.to_string())?;
        let mut own_figures = json!({});
        starts(&own, &registry, plan, &mut own_figures).await?;
        figures["own_sandbox"] = own_figures;
    }

    let mut session = sandbox.session(&registry).await.map_err(|e| e.to_string())?;
    for _ in 0..20 {
        session.run_code("print(1+1)").await;
    }
    let mut warm = Vec::with_capacity(plan.warm_runs);
    for _ in 0..plan.warm_runs {
        let start = Instant::now();
        let execution = session.run_code("print(1+1)").await;
        warm.push(elapsed_ms(start));
        if execution.status != ExecStatus::Ok || execution.stdout != "2\n" {
            return Err(format!("print(1+1) misbehaved: {execution:?}"));
        }
    }
    let mut calls = Vec::with_capacity(plan.warm_runs);
    for _ in 0..plan.warm_runs {
        let start = Instant::now();
        let execution = session.call_function("add", r#"{"a": 1, "b": 2}"#).await;
        calls.push(elapsed_ms(start));
        if execution.result.as_deref() != Some("3") {
            return Err(format!("add(1, 2) misbehaved: {execution:?}"));
        }
    }
    session.close().await;
    figures["warm_print_1_plus_1"] = latency_stats(&mut warm);
    figures["function_call"] = latency_stats(&mut calls);
    Ok(figures)
}

/// Session start figures of `sandbox` into `figures`. Ready: the session accepts work (an own
/// sandbox's modules may still be importing in the background). Warm: a first `import sympy` block
/// has finished, i.e. the cost a conversation pays if its model answers at once.
async fn starts(
    sandbox: &Sandbox,
    registry: &Registry,
    plan: &Plan,
    figures: &mut Value,
) -> Result<(), String> {
    let (mut ready, mut warm_start) = (Vec::new(), Vec::new());
    for _ in 0..plan.session_starts {
        let start = Instant::now();
        let mut session = sandbox.session(registry).await.map_err(|e| e.to_string())?;
        ready.push(elapsed_ms(start));
        session.run_code("import sympy, numpy").await;
        warm_start.push(elapsed_ms(start));
        session.close().await;
    }
    let start = Instant::now();
    let sessions =
        futures::future::join_all((0..plan.concurrent_sessions).map(|_| sandbox.session(registry))).await;
    let wall = start.elapsed().as_secs_f64();
    for session in sessions {
        session.map_err(|e| e.to_string())?.close().await;
    }
    figures["session_ready"] = latency_stats(&mut ready);
    figures["session_warm"] = latency_stats(&mut warm_start);
    figures["concurrent_sessions"] = json!(plan.concurrent_sessions);
    figures["sessions_per_second"] = json!(round3(plan.concurrent_sessions as f64 / wall));
    Ok(())
}
