//! `agentopt chat TASK`: one assistant/proxy conversation on the training engine (same loop, sandbox
//! and functions) with a human in the loop by AG2's `--human-input` modes; the record is saved as JSON
//! in the training record format and its path printed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::bad_input;
use super::train::{connect, model_options, sandbox};
use crate::agent::console::Console;
use crate::agent::delegate;
use crate::agent::human::Mode;
use crate::agent::{Agent, AgentConfig, ConversationRecord, End};
use crate::cli::{ChatArgs, HumanInput};
use crate::dataset::Problem;
use crate::functions::Registry;
use crate::llm::ChatModel;
use crate::record::{GradedBy, Outcome};
use crate::task::TaskKind;
use crate::trainer::meter::{Meter, Metered};

pub async fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    if args.max_turns == 0 {
        return Err(bad_input(anyhow::anyhow!("--max-turns must be at least 1")));
    }
    if args.prompt.trim().is_empty() {
        return Err(bad_input(anyhow::anyhow!("TASK is empty: say what to ask the assistant")));
    }
    let (registry, registry_path) = match &args.functions {
        Some(spec) => {
            let path = crate::inspect::resolve_registry(spec, &args.model.runs_dir).map_err(bad_input)?;
            (Registry::load(&path).map_err(bad_input)?, Some(path))
        }
        None => (Registry::default(), None),
    };
    // `--answer` without `--task` implies the math conversation, as before tasks.
    let kind = if args.math || args.answer.is_some() { TaskKind::Math } else { TaskKind::General };
    let task_spec = super::task::spec_from_flags(&args.task, kind)?;
    let problem = Problem::new("chat", &args.prompt, args.answer.as_deref().unwrap_or_default());
    task_spec.check_problems([&problem]).map_err(|e| bad_input(anyhow::anyhow!(e)))?;
    if args.delegate && args.max_depth == 0 {
        return Err(bad_input(anyhow::anyhow!("--max-depth must be at least 1")));
    }
    if args.delegate && registry.get(delegate::TOOL).is_some() {
        return Err(bad_input(anyhow::anyhow!(
            "the registry defines a function `{}`, the name of the delegation tool: rename it, or leave out \
             --delegate",
            delegate::TOOL
        )));
    }
    if let Some(usd) = args.max_usd.filter(|u| !(u.is_finite() && *u > 0.0)) {
        return Err(bad_input(anyhow::anyhow!("--max-usd must be a positive amount, not {usd}")));
    }
    let model_opts = model_options(&args.model, args.model.config.clone(), args.model.model.clone());
    let meter = Arc::new(Meter::new(args.max_usd, Default::default()));
    let model: Arc<dyn ChatModel> = Arc::new(Metered { inner: connect(&model_opts)?, meter: meter.clone() });
    let mut private = super::train::private_paths(&model_opts, &args.model.runs_dir, []);
    private.extend(super::task::private_files(&task_spec));
    let (runner, probe) = sandbox(args.model.exec_timeout, args.model.unsafe_no_sandbox, 1, private)?;
    probe.ready().await?;
    if let Some(path) = &registry_path {
        super::registry_check::check(&*runner, &registry, path).await?;
    }
    let judge = super::task::JudgeModel { options: model_opts.clone(), seed: None };
    let mut task = super::task::build(&task_spec, &runner, judge)
        .await?
        .metered(|inner| Arc::new(Metered { inner, meter: meter.clone() }));
    if task.kind == TaskKind::General && args.task.system.is_none() {
        task.system.push_str(crate::agent::general::SHELL);
    }
    let agent = Agent {
        model,
        runner,
        task: Arc::new(task),
        config: AgentConfig {
            max_turns: args.max_turns,
            shell: true,
            delegate: args.delegate.then_some(args.max_depth),
            ..AgentConfig::default()
        },
    };
    let mode = match args.human_input {
        HumanInput::Always => Mode::Always,
        HumanInput::Terminate => Mode::Terminate,
        HumanInput::Never => Mode::Never,
    };
    // With --json, stdout carries the record alone; the transcript (and questions) go to stderr.
    let transcript: Box<dyn Write + Send> =
        if args.model.json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    let mut console = Console::stdio(mode, transcript).with_interrupt(on_ctrl_c());
    if args.stream {
        console = console.streaming();
    }
    let mut record = agent.converse(&registry, 0, &problem, Some(&mut console)).await?;
    if args.answer.is_none() {
        record.graded_by = GradedBy::NoReference;
        // Nothing to score against: a metric's complaint about the empty reference is no error.
        if record.end != End::Errored {
            record.outcome = Outcome::Incorrect { score: 0.0 };
        }
    }
    let path = match &args.save {
        Some(p) => p.clone(),
        None => default_path(&args.model.runs_dir),
    };
    crate::fsio::write_json_atomic(&path, &record)
        .with_context(|| format!("Failed to save the conversation to `{}`", path.display()))?;
    if args.model.json {
        let mut value = serde_json::to_value(&record)?;
        value["saved"] = path.display().to_string().into();
        println!("{value}");
    } else {
        print_summary(&record, args.answer.is_some(), &path);
    }
    Ok(if record.end == End::Errored { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Turns true on the first Ctrl-C (the chat ends at its next step and is saved); a second one quits.
fn on_ctrl_c() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\ninterrupted: the chat ends after the current step and is saved (Ctrl-C again to quit)"
            );
            let _ = tx.send(true);
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(130);
        }
    });
    rx
}

/// `runs/chat/<UTC time>.json`, with a suffix when a chat already saved there in the same second.
fn default_path(runs_dir: &Path) -> PathBuf {
    let dir = runs_dir.join("chat");
    let stamp = crate::run_dir::default_run_name();
    let mut path = dir.join(format!("{stamp}.json"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = dir.join(format!("{stamp}-{n}.json"));
    }
    path
}

fn print_summary(r: &ConversationRecord, graded: bool, path: &Path) {
    let end = match r.end {
        End::Answered => "the assistant finished",
        End::MaxTurns => "turn limit reached",
        End::Errored => "the model call failed",
        End::Exited => "ended by the human",
    };
    println!("\n── end: {end} after {} assistant turn(s) ──", r.turns);
    if let Some(reason) = r.errored() {
        println!("error:   {reason}");
    }
    if graded {
        let answer = r.answer.as_deref().unwrap_or("(none)");
        let verdict = if r.is_correct() { "correct" } else { "not correct" };
        println!("answer:  {answer}");
        println!("verdict: {verdict} (reference {}; decided by {})", r.reference, r.graded_by);
    } else if let Some(answer) = &r.answer {
        println!("answer:  {answer}");
    }
    if !r.delegated.is_empty() {
        println!("delegated: {} task(s), nested {} deep", count_delegated(r), deepest(r));
    }
    println!(
        "usage:   {} calls, {} input + {} output tokens, ${:.4}",
        r.usage.calls, r.usage.input_tokens, r.usage.output_tokens, r.usage.usd
    );
    println!("saved:   {}", path.display());
}

fn count_delegated(r: &ConversationRecord) -> usize {
    r.delegated.iter().map(|d| 1 + count_delegated(&d.record)).sum()
}

fn deepest(r: &ConversationRecord) -> usize {
    r.delegated.iter().map(|d| d.depth.max(deepest(&d.record))).max().unwrap_or(0)
}
