//! `agentopt duel`: runs a scenario's negotiation `--rounds` times concurrently between the vendor's
//! and the buyer's models, saves every round as it ends, and prints one round's transcript and what
//! the rounds add up to; `agentopt duel report` compares saves per model pairing.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;

use super::bad_input;
use super::train::{connect, model_options};
use crate::cli::{DuelAction, DuelArgs, ModelArgs};
use crate::duel::round::{Outcome, PerSide, RoundRecord};
use crate::duel::save::{self, DuelInfo};
use crate::duel::{Duel, Negotiator, Scenario, Side, Summary, report};
use crate::llm;
use crate::trainer::meter::{Cancel, Meter, Metered};

/// Turns each side gets when neither the flag nor the scenario says.
const DEFAULT_MAX_TURNS: usize = 4;

pub async fn run(args: DuelArgs) -> anyhow::Result<ExitCode> {
    if let Some(DuelAction::Report { saves, out, json }) = &args.action {
        return report_saves(saves, out.as_deref(), *json);
    }
    for (flag, value) in [("--rounds", args.rounds), ("--concurrency", args.concurrency)] {
        if value == 0 {
            return Err(bad_input(anyhow::anyhow!("{flag} must be at least 1")));
        }
    }
    if args.max_turns == Some(0) {
        return Err(bad_input(anyhow::anyhow!("--max-turns must be at least 1")));
    }
    if let Some(usd) = args.max_usd.filter(|u| !(u.is_finite() && *u > 0.0)) {
        return Err(bad_input(anyhow::anyhow!("--max-usd must be a positive amount, not {usd}")));
    }
    let scenario = match &args.scenario {
        Some(path) => Scenario::load(path).map_err(|e| bad_input(anyhow::anyhow!(e)))?,
        None => Scenario::default(),
    };
    let max_turns = args.max_turns.or(scenario.max_turns).unwrap_or(DEFAULT_MAX_TURNS);
    let meter = Arc::new(Meter::new(args.max_usd, Default::default()));
    let vendor = negotiator(&args, args.vendor_model.clone(), &meter)?;
    let buyer = if args.buyer_model == args.vendor_model {
        vendor.clone()
    } else {
        negotiator(&args, args.buyer_model.clone(), &meter)?
    };
    let dir = match &args.save {
        Some(dir) => save::create(dir, false).map_err(|e| bad_input(anyhow::anyhow!(e)))?,
        None => save::create(&args.runs_dir.join("duel").join(crate::run_dir::default_run_name()), true)
            .map_err(|e| anyhow::anyhow!(e))?,
    };
    let mut info = DuelInfo {
        scenario,
        models: PerSide { vendor: vendor.name.clone(), buyer: buyer.name.clone() },
        max_turns,
        rounds: args.rounds,
        seed: args.seed,
        started: crate::run_dir::default_run_name(),
        summary: None,
        spent: None,
        interrupted: false,
    };
    save::write_info(&dir, &info)
        .with_context(|| format!("Failed to write the duel save `{}`", dir.display()))?;
    let duel = Duel::new(info.scenario.clone(), vendor, buyer, max_turns);

    let cancel = Cancel::default();
    cancel.on_ctrl_c("rounds in flight are dropped; finished rounds are saved");
    let live = LiveLine::new(args.rounds, !args.json);
    let mut records: Vec<RoundRecord> = Vec::new();
    let launches = futures::stream::iter(1..=args.rounds)
        // Past the budget no round starts; rounds already running end as errored by it.
        .take_while(|_| std::future::ready(!meter.exhausted() && duel.fatal().is_none()))
        .map(|round| duel.round(round, args.seed.wrapping_add(round as u64 - 1)));
    let mut finished = launches.buffer_unordered(args.concurrency);
    loop {
        tokio::select! {
            next = finished.next() => match next {
                Some(record) => {
                    save::write_round(&dir, &record)
                        .with_context(|| format!("Failed to save round {} under `{}`", record.round, dir.display()))?;
                    records.push(record);
                    live.update(&records);
                }
                None => break,
            },
            _ = cancel.cancelled() => {
                info.interrupted = true;
                break;
            }
        }
    }
    drop(finished);
    live.finish();
    records.sort_by_key(|r| r.round);
    let summary = Summary::of(&records);
    info.summary = Some(summary.clone());
    info.spent = Some(meter.usage());
    save::write_info(&dir, &info).with_context(|| format!("Failed to save `{}`", dir.display()))?;

    if let Some(error) = duel.fatal() {
        anyhow::bail!(
            "{error}: the duel stopped after {} of {} rounds (saved in `{}`)",
            records.len(),
            args.rounds,
            dir.display()
        );
    }
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        value["saved"] = dir.display().to_string().into();
        value["spent_usd"] = meter.usage().usd.into();
        value["interrupted"] = info.interrupted.into();
        println!("{value}");
    } else {
        print_human(&info, &records, &summary, &dir, records.len() < args.rounds && !info.interrupted);
        let spent = meter.usage().usd;
        if spent > summary.total_usage().usd + 1e-12 {
            println!("spent:   ${spent:.4} in all, rounds dropped unfinished included");
        }
    }
    Ok(if info.interrupted {
        ExitCode::from(130)
    } else if summary.errored == summary.rounds {
        // Nothing was measured.
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A side's model: the config entries named `name` (default: the first), metered by the duel's budget.
fn negotiator(args: &DuelArgs, name: Option<String>, meter: &Arc<Meter>) -> anyhow::Result<Negotiator> {
    let shared = ModelArgs {
        config: args.config.clone(),
        model: name.clone(),
        exec_timeout: 10.0,
        no_cache: args.no_cache,
        cache_seed: args.cache_seed,
        runs_dir: args.runs_dir.clone(),
        unsafe_no_sandbox: false,
        json: args.json,
        config_inline: None,
    };
    let options = model_options(&shared, args.config.clone(), name);
    let (_, entries) = llm::connect::selected(&options).map_err(|e| match e {
        llm::Error::Config(_) => bad_input(e),
        e => anyhow::Error::from(e),
    })?;
    let model = connect(&options)?;
    Ok(Negotiator {
        model: Arc::new(Metered { inner: model, meter: meter.clone() }),
        name: entries[0].model.clone(),
    })
}

fn report_saves(saves: &[PathBuf], out: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let pairings = report::pairings(saves).map_err(|e| bad_input(anyhow::anyhow!(e)))?;
    if let Some(out) = out {
        crate::fsio::write_atomic(out, report::html(&pairings).as_bytes())
            .with_context(|| format!("Failed to write the report `{}`", out.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string(&pairings)?);
    } else {
        print!("{}", report::text(&pairings));
        if let Some(out) = out {
            println!("report:  {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One live progress line on stderr at a terminal; nothing otherwise (the summary says it all).
struct LiveLine {
    total: usize,
    on: bool,
}

impl LiveLine {
    fn new(total: usize, wanted: bool) -> LiveLine {
        LiveLine { total, on: wanted && std::io::stderr().is_terminal() }
    }

    fn update(&self, records: &[RoundRecord]) {
        if self.on {
            let agreed = records.iter().filter(|r| r.price().is_some()).count();
            let errored = records.iter().filter(|r| matches!(r.outcome, Outcome::Errored { .. })).count();
            let usd: f64 = records.iter().map(|r| r.total_usage().usd).sum();
            eprint!(
                "\r\x1b[2Kduel: {}/{} rounds, {agreed} agreed, {errored} errored, ${usd:.4}",
                records.len(),
                self.total
            );
            let _ = std::io::stderr().flush();
        }
    }

    fn finish(&self) {
        if self.on {
            eprintln!();
        }
    }
}

fn print_human(info: &DuelInfo, records: &[RoundRecord], s: &Summary, dir: &Path, budget_stopped: bool) {
    let sc = &info.scenario;
    println!(
        "duel: {} — {} ({}) vs {} ({}), {} turns each",
        sc.name, sc.vendor.name, info.models.vendor, sc.buyer.name, info.models.buyer, info.max_turns
    );
    if let Some(first) = records.first() {
        let dim = std::io::stdout().is_terminal() && crate::env::var(crate::env::NO_COLOR).is_none();
        print!("{}", transcript(sc, first, dim));
    }
    for r in records {
        if let Outcome::Errored { side, reason, .. } = &r.outcome {
            println!("round {} errored ({}): {reason}", r.round, sc.party(*side).name);
        }
    }
    println!();
    println!("rounds:  {} ({} agreed, {} no deal, {} errored)", s.rounds, s.agreed, s.no_deal, s.errored);
    println!("agreed:  {}", report::agreement_text(s));
    if s.agreed > 0 {
        let ci = |c: Option<[f64; 2]>| c.map_or(String::new(), |[a, b]| format!(" (95% CI {a:.2}–{b:.2})"));
        println!(
            "price:   mean {:.2}{}, median {:.2}{}",
            s.mean_price.unwrap_or_default(),
            ci(s.mean_price_ci95),
            s.median_price.unwrap_or_default(),
            ci(s.median_price_ci95)
        );
        println!("turns:   {:.1} replies to agreement on average", s.mean_turns.unwrap_or_default());
    }
    let usage = |side: Side| {
        let u = s.usage.get(side);
        format!("{} {} calls, {} + {} tokens", sc.party(side).name, u.calls, u.input_tokens, u.output_tokens)
    };
    println!("usage:   {}; {}; ${:.4}", usage(Side::Vendor), usage(Side::Buyer), s.total_usage().usd);
    if info.interrupted {
        println!("stopped: interrupted after {} of {} rounds", s.rounds, info.rounds);
    } else if budget_stopped {
        println!("stopped: the --max-usd budget was reached after {} of {} rounds", s.rounds, info.rounds);
    }
    println!("saved:   {}", dir.display());
}

/// One round as text: each message with its offer, the speaker's private thoughts (dimmed at a
/// terminal) beneath it, and the outcome.
fn transcript(sc: &Scenario, r: &RoundRecord, dim: bool) -> String {
    let (start, end) = if dim { ("\x1b[2m", "\x1b[0m") } else { ("", "") };
    let mut out = format!("\nround {} (seed {}):\n", r.round, r.seed);
    let offer = |o: Option<f64>| o.map_or(String::new(), |o| format!("  [offer {o}]"));
    out.push_str(&format!("{}: {}{}\n", sc.party(sc.opens).name, sc.opening, offer(sc.opening_offer)));
    for t in &r.turns {
        let name = &sc.party(t.side).name;
        if !t.reply.thoughts.trim().is_empty() {
            out.push_str(&format!("{start}  ({name} thinks: {}){end}\n", t.reply.thoughts.trim()));
        }
        let accepts = if t.reply.accepted { "  [accepts]" } else { "" };
        out.push_str(&format!("{name}: {}{}{accepts}\n", t.reply.message.trim(), offer(t.reply.offer)));
        if let Some(note) = &t.note {
            out.push_str(&format!("  ({note})\n"));
        }
    }
    let end_line = match &r.outcome {
        Outcome::Agreed { price, accepted_by, turns } => {
            format!("deal at {price} after {turns} replies (accepted by {})", sc.party(*accepted_by).name)
        }
        Outcome::NoDeal { turns } => format!("no deal after {turns} replies"),
        Outcome::Errored { side, .. } => format!("errored at {}'s turn", sc.party(*side).name),
    };
    out.push_str(&format!("── {end_line} ──\n"));
    out
}
