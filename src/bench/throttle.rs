//! The benchmark section for throttling: `agentopt eval` against a provider over capacity for a while
//! (429 with `Retry-After` beyond a few requests in flight), read off the server's arrival log — the
//! conversations under way early, late in the throttled stage and after recovery, and the 429s.

use std::time::Duration;

use serde_json::{Value, json};

use super::harness::Workspace;
use super::round3;
use super::server::{self, LatencyServer, Script, Throttle, stage_figures};

const CALLS: u64 = server::CALLS_PER_CONVERSATION as u64;

pub async fn run(quick: bool) -> Value {
    let (n, concurrency, capacity) = if quick { (120, 16, 4) } else { (400, 32, 8) };
    // Over capacity for the first quarter of the calls.
    let throttled_for = n as u64 * CALLS / 4;
    let throttle =
        Throttle { capacity, until_answered: throttled_for, retry_after: Duration::from_millis(200) };
    let result: Result<Value, String> = async {
        let latency = Duration::from_millis(50);
        let server =
            LatencyServer::start_throttled(latency, Script::Plain, n as u64 * CALLS * 4, Some(throttle))
                .await
                .map_err(|e| format!("cannot start the benchmark server: {e}"))?;
        let workspace = Workspace::new(&server, n)?;
        let outcome = workspace.eval(concurrency, &["--no-cache"], Duration::from_secs(300)).await?;
        let arrivals = server.arrivals();
        let (start_peak, start_429) = stage_figures(&arrivals, ..CALLS);
        let (late_peak, late_429) = stage_figures(&arrivals, throttled_for / 2..throttled_for);
        let (recovered_peak, _) = stage_figures(&arrivals, throttled_for..);
        Ok(json!({
            "problems": n, "concurrency": concurrency, "provider_capacity": capacity,
            "throttled_calls": throttled_for,
            "http_429": arrivals.iter().filter(|a| a.rejected).count(),
            "correct": outcome.summary["correct"], "errored": outcome.summary["errored"],
            "conversations_at_start": start_peak, "http_429_at_start": start_429,
            "conversations_late_throttled": late_peak, "http_429_late_throttled": late_429,
            "conversations_after_recovery": recovered_peak,
            "wall_s": round3(outcome.wall.as_secs_f64()),
        }))
    }
    .await;
    result.unwrap_or_else(|e| json!({"error": e}))
}
