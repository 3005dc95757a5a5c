//! `agentopt bench [--quick] [--section NAME]... [--json]`: runs the benchmark sections
//! (`crate::bench`) and prints their figures, one section after another (JSON: one object keyed by
//! section name).

use std::process::ExitCode;

use serde_json::Value;

use crate::bench;
use crate::cli::BenchArgs;

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let sections = bench::run_all(args.quick, &args.sections).await;
    let failed = sections.iter().any(|s| s.figures.get("error").is_some());
    if args.json {
        let all: serde_json::Map<String, Value> =
            sections.into_iter().map(|s| (s.name.to_string(), s.figures)).collect();
        println!("{}", serde_json::to_string(&all)?);
    } else {
        for section in &sections {
            println!("{} — {}", section.name, section.title);
            print_figures(&section.figures);
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// One line per figure; latency distributions on one line each.
fn print_figures(figures: &Value) {
    let Some(map) = figures.as_object() else {
        println!("  {figures}");
        return;
    };
    for (key, value) in map {
        match (value.get("p50_ms"), value.get("floor_s")) {
            (Some(p50), _) => println!(
                "  {key:<24} p50 {p50} ms   p95 {} ms   mean {} ms   (n={})",
                value["p95_ms"], value["mean_ms"], value["n"]
            ),
            (None, Some(floor)) if value.get("ratio").is_some() => println!(
                "  {key:<24} wall {} s   floor {floor} s   ratio {}   cpu {} s   ({} problems at concurrency {})",
                value["wall_s"], value["ratio"], value["cpu_s"], value["problems"], value["concurrency"]
            ),
            _ => println!("  {key:<24} {value}"),
        }
    }
}
