//! The repository benchmark behind `agentopt bench`: independent sections, each measuring one part and
//! returning its figures as JSON. Add a section by adding a module and a line in `sections`.

use serde_json::Value;

pub mod agent;
pub mod eval;
pub mod exec;
mod harness;
pub mod llama_server;
pub mod local;
pub mod server;
pub mod throttle;

/// One section's figures: `{"name": {...figures...}}` once collected.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: &'static str,
    /// What is measured, for the human output.
    pub title: &'static str,
    pub figures: Value,
}

/// Every section's name and what it measures, in the order they run.
pub const SECTIONS: &[(&str, &str)] = &[
    ("exec", "sandboxed Python execution"),
    ("agent", "conversation loop overhead per assistant turn (instant model and executor)"),
    (
        "eval_latency",
        "`agentopt eval` wall time vs the floor (200 ms per model call; 3 calls per problem, \
         `code_*`: 2 Python blocks each)",
    ),
    (
        "scale",
        "`agentopt eval` of 512 code problems at `--concurrency 128` (quick: 128 at 64) against the floor, \
         sessions per second, and each conversation's time by part",
    ),
    ("turn_overhead", "framework work per assistant turn (instant server, code-free replies)"),
    ("memory", "peak RSS of `agentopt eval` (code-free replies) and of one Python worker"),
    ("cache", "model calls avoided by the reply cache on a re-run"),
    (
        "throttle",
        "`agentopt eval` against a provider over capacity for the first quarter of its calls (429 + \
         Retry-After): conversations in flight early, late in the throttled stage, after recovery",
    ),
    ("local_model", "tokens/s of the in-process llama.cpp model vs llama-cpp-python's server (same GGUF)"),
];

async fn figures(name: &str, quick: bool) -> Value {
    match name {
        "exec" => exec::run(quick).await,
        "agent" => agent::run(quick).await,
        "eval_latency" => eval::latency(quick).await,
        "scale" => eval::scale(quick).await,
        "turn_overhead" => eval::overhead(quick).await,
        "memory" => eval::memory().await,
        "cache" => eval::cache(quick).await,
        "throttle" => throttle::run(quick).await,
        "local_model" => local::run(quick).await,
        other => serde_json::json!({"error": format!("no benchmark section `{other}`")}),
    }
}

/// Runs the sections named in `only` (all when empty) in turn: they share the machine, and running
/// them in parallel would skew them.
pub async fn run_all(quick: bool, only: &[String]) -> Vec<Section> {
    let mut sections = Vec::new();
    for &(name, title) in SECTIONS {
        if only.is_empty() || only.iter().any(|o| o == name) {
            sections.push(Section { name, title, figures: figures(name, quick).await });
        }
    }
    sections
}

/// Summary statistics of latencies in milliseconds.
pub fn latency_stats(samples_ms: &mut [f64]) -> Value {
    if samples_ms.is_empty() {
        return serde_json::json!({"n": 0});
    }
    samples_ms.sort_by(f64::total_cmp);
    let pick = |q: f64| samples_ms[((samples_ms.len() - 1) as f64 * q).round() as usize];
    let mean = samples_ms.iter().sum::<f64>() / samples_ms.len() as f64;
    serde_json::json!({
        "n": samples_ms.len(),
        "p50_ms": round3(pick(0.5)),
        "p95_ms": round3(pick(0.95)),
        "mean_ms": round3(mean),
        "max_ms": round3(samples_ms[samples_ms.len() - 1]),
    })
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_pick_percentiles() {
        let mut samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let stats = latency_stats(&mut samples);
        assert_eq!(stats["p50_ms"], 51.0);
        assert_eq!(stats["p95_ms"], 95.0);
        assert_eq!(stats["n"], 100);
    }
}
