//! The inspect fixtures, written by the product's own types (`agentopt::record`, `RunDir`, `Registry`),
//! so they cannot drift from what the trainer writes: two registries, a dataset and two runs —
//! `demo` (completed: an accepted, a rolled-back and an accepted epoch, an errored problem, optimizer
//! actions applied and rejected, evaluations before and after) and `partial` (killed in epoch 1: no
//! summary, a torn last event line). LLM-written text carries markup the HTML report must escape.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use agentopt::agent::AgentConfig;
use agentopt::functions::{FunctionDef, Registry};
use agentopt::llm::{Message, ToolCall, Usage};
use agentopt::optimizer::OptimizerConfig;
use agentopt::optimizer::actions::Action;
use agentopt::record::{
    ConversationRecord, DataSpec, End, EpochEntry, EvalSummary, Event, FileRef, GradedBy, ModelsSpec,
    Outcome, RunInfo, Score, Split, Status, Summary, TrainSettings,
};
use agentopt::run_dir::{self, Phase, RunDir};
use agentopt::trainer::rule::{Decision, RuleState, Stop};
use serde_json::{Value, json};

const QUAD_V1: &str = "import math


def _helper(a, b, c):
    return b * b - 4 * a * c


def quadratic_roots(a, b, c):
    \"\"\"Real roots of a*x**2 + b*x + c.\"\"\"
    d = _helper(a, b, c)
    if d < 0:
        return []
    r = math.sqrt(d)
    return sorted({(-b - r) / (2 * a), (-b + r) / (2 * a)})
";

const QUAD_V2: &str = "import cmath


def _helper(a, b, c):
    return b * b - 4 * a * c


def quadratic_roots(a, b, c):
    \"\"\"All roots of a*x**2 + b*x + c, complex ones included.\"\"\"
    d = _helper(a, b, c)
    r = cmath.sqrt(d)
    roots = [(-b - r) / (2 * a), (-b + r) / (2 * a)]
    return [z.real if abs(z.imag) < 1e-12 else z for z in roots]
";

const DIVISORS: &str = "def count_divisors(n):
    # Trial division up to sqrt(n).
    count = 0
    i = 1
    while i * i <= n:
        if n % i == 0:
            count += 1 if i * i == n else 2
        i += 1
    return count
";

// A helper with the same name as quadratic_roots' but another meaning: the python export must keep
// each function's own. The docstring carries markup: the HTML report must escape it.
const GCD: &str = "from functools import reduce
from math import gcd


def _helper(xs):
    return [abs(int(x)) for x in xs]


def gcd_list(numbers):
    \"\"\"gcd of all numbers. Not </pre><script>alert('x')</script> markup.\"\"\"
    return reduce(gcd, _helper(numbers))
";

fn function(name: &str, description: &str, parameters: Value, code: &str, packages: &[&str]) -> FunctionDef {
    FunctionDef {
        name: name.into(),
        description: description.into(),
        parameters,
        packages: packages.iter().map(|p| p.to_string()).collect(),
        code: code.into(),
    }
}

fn abc() -> Value {
    json!({"type": "object", "properties": {
        "a": {"type": "number", "description": "x**2 coefficient"},
        "b": {"type": "number", "description": "x coefficient"},
        "c": {"type": "number", "description": "constant"}}, "required": ["a", "b", "c"]})
}

fn quad1() -> FunctionDef {
    function("quadratic_roots", "Real roots of a quadratic a*x^2 + b*x + c, sorted.", abc(), QUAD_V1, &[])
}

fn quad2() -> FunctionDef {
    function(
        "quadratic_roots",
        "Roots of a quadratic a*x^2 + b*x + c, complex included.",
        abc(),
        QUAD_V2,
        &[],
    )
}

fn divisors() -> FunctionDef {
    let n = json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
    function("count_divisors", "Number of positive divisors of n.", n, DIVISORS, &[])
}

fn gcd_list() -> FunctionDef {
    let numbers = json!({"type": "object", "properties": {
        "numbers": {"type": "array", "items": {"type": "integer"}}, "verbose": {"type": "boolean"}},
        "required": ["numbers"]});
    function(
        "gcd_list",
        "Greatest common divisor of a list of integers <b>&</b>.",
        numbers,
        GCD,
        &["functools"],
    )
}

fn registry(functions: Vec<FunctionDef>) -> Registry {
    Registry { functions }
}

/// (id, subject, problem, reference)
const PROBLEMS: [(&str, &str, &str, &str); 6] = [
    ("p1", "Algebra", "Find the roots of x^2 - 3x + 2 = 0.", "1, 2"),
    ("p2", "Algebra", "Solve x^2 + 1 = 0 over the complex numbers.", "i, -i"),
    ("p3", "Number Theory", "How many divisors does 36 have?", "9"),
    ("p4", "Number Theory", "What is gcd(84, 126)?", "42"),
    ("p5", "Algebra", "Solve 2x + 3 = 7. <script>alert(1)</script>", "2"),
    ("p6", "Number Theory", "What is the smallest prime greater than 20?", "23"),
];

fn record(id: &str, correct: bool, errored: Option<&str>, usd: f64) -> ConversationRecord {
    let (_, subject, problem, reference) = PROBLEMS.iter().find(|p| p.0 == id).copied().unwrap();
    let outcome = match errored {
        Some(reason) => Outcome::Errored { reason: reason.into() },
        None => Outcome::scored(f64::from(u8::from(correct))),
    };
    ConversationRecord {
        index: id[1..].parse::<usize>().unwrap() - 1,
        id: id.into(),
        problem: problem.into(),
        subject: Some(subject.into()),
        level: Some(2),
        reference: reference.into(),
        answer: Some(if correct { reference.into() } else { "0".into() }),
        outcome,
        graded_by: if errored.is_some() { GradedBy::Errored } else { GradedBy::Exact },
        end: if errored.is_some() { End::Errored } else { End::Answered },
        turns: 2,
        functions: vec![],
        messages: vec![Message::user(problem)],
        executions: vec![],
        usage: Usage { calls: 2, input_tokens: 300, output_tokens: 50, usd },
        duration_ms: 12,
        timing: Default::default(),
        fields: Default::default(),
        delegated: vec![],
    }
}

fn info(name: &str, status: Status, train: &[&str], test: &[&str]) -> RunInfo {
    let ids = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect();
    RunInfo {
        version: 1,
        format_version: agentopt::record::FORMAT_VERSION,
        name: name.into(),
        status,
        created_at: "2026-11-23T16:00:00Z".into(),
        updated_at: "2026-11-23T16:05:00Z".into(),
        data: DataSpec {
            data: Some(FileRef { path: "datasets/math.jsonl".into(), sha256: "00".into() }),
            train: None,
            test: None,
            train_size: Some(train.len()),
            test_size: Some(test.len()),
            val: None,
            val_size: None,
            subjects: vec![],
            seed: 0,
            allow_overlap: true,
        },
        split: Split { train: ids(train), test: ids(test), val: vec![] },
        models: ModelsSpec {
            config: None,
            config_inline: false,
            model: Some("gpt-4o-mini".into()),
            optimizer_model: None,
            cache_seed: Some(0),
            cache_dir: ".cache/agentopt".into(),
            assistant: json!({}),
            optimizer: json!({}),
        },
        training: TrainSettings {
            epochs: 4,
            patience: 2,
            concurrency: 8,
            max_usd: None,
            no_eval: false,
            export: None,
            exec_timeout: 30.0,
            unsafe_no_sandbox: false,
            initial_functions: None,
            agent: AgentConfig::default(),
            optimizer: OptimizerConfig::default(),
            accept: Default::default(),
            select: Default::default(),
            proposals: 1,
        },
        task: Default::default(),
    }
}

fn proposed(epoch: usize, id: &str, tool: &str, name: &str) -> Event {
    let call = ToolCall { id: id.into(), name: tool.into(), arguments: json!({"name": name}).to_string() };
    Event::ActionProposed { epoch, candidate: None, call }
}

fn applied(epoch: usize, action: Action) -> Event {
    Event::ActionApplied { epoch, candidate: None, action }
}

fn write_records(run: &RunDir, phase: Phase, records: &[ConversationRecord]) {
    run_dir::write_lines(&run.conversations(phase), records).unwrap();
}

fn demo(runs: &Path) {
    let run = RunDir::create(runs, "demo").unwrap();
    let all = ["p1", "p2", "p3", "p4", "p5", "p6"];
    run_dir::write_json(&run.run_json(), &info("demo", Status::Completed, &all[..4], &all)).unwrap();
    let registries = [
        registry(vec![quad1(), divisors()]),
        registry(vec![quad2()]),
        registry(vec![quad1(), divisors(), gcd_list()]),
    ];
    // Which problems each epoch got right (p2 never; p6 errors in epoch 1).
    let right: [&[&str]; 3] = [&["p1", "p3"], &["p1"], &["p1", "p3", "p4"]];
    let decisions = [Decision::Accept, Decision::Rollback, Decision::Accept];
    let mut events = vec![Event::RunStarted { resumed: false }];
    let before: Vec<ConversationRecord> =
        [("p1", true), ("p3", false), ("p4", false), ("p5", true), ("p6", false)]
            .iter()
            .map(|(id, ok)| record(id, *ok, None, 0.001))
            .chain([record("p2", false, Some("timeout"), 0.001)])
            .collect();
    let after: Vec<ConversationRecord> = ["p1", "p3", "p4", "p5", "p6", "p2"]
        .iter()
        .map(|id| record(id, !matches!(*id, "p6" | "p2"), None, 0.001))
        .collect();
    write_records(&run, Phase::Before, &before);
    events.push(Event::EvalDone { phase: Phase::Before, score: Score::of(&before) });
    let step_usage = Usage { calls: 3, input_tokens: 2000, output_tokens: 400, usd: 0.005 };
    let steps = |epoch: usize| -> Vec<Event> {
        match epoch {
            1 => vec![
                proposed(1, "c1", "revise_function", "quadratic_roots"),
                applied(1, Action::Revise { function: quad2() }),
                applied(1, Action::Remove { name: "count_divisors".into() }),
                proposed(1, "c2", "add_function", "foo"),
                Event::ActionRejected {
                    epoch: 1,
                    candidate: None,
                    tool: "add_function".into(),
                    error: "code does not define `foo` <img src=x>".into(),
                    attempt: 1,
                },
            ],
            2 => vec![
                proposed(2, "c3", "add_function", "gcd_list"),
                applied(2, Action::Add { function: gcd_list() }),
            ],
            _ => vec![],
        }
    };
    let mut history = Vec::new();
    for (n, registry) in registries.iter().enumerate() {
        if n > 0 {
            events.push(Event::StepStarted { epoch: n });
            events.extend(steps(n));
            events.push(Event::StepDone {
                epoch: n,
                applied: 2,
                functions: registry.names(),
                usage: step_usage,
            });
        }
        registry.save(&run.epoch_registry(n)).unwrap();
        let mut records: Vec<ConversationRecord> =
            all[..4].iter().map(|id| record(id, right[n].contains(id), None, 0.001)).collect();
        if n == 1 {
            records.push(record("p6", false, Some("llm: 503 after 5 retries"), 0.0));
        }
        write_records(&run, Phase::Epoch(n), &records);
        for r in &records {
            events.push(Event::ConversationDone {
                phase: Phase::Epoch(n),
                index: r.index,
                id: r.id.clone(),
                correct: r.is_correct(),
                errored: r.errored().map(str::to_string),
                turns: r.turns,
            });
        }
        let score = Score::of(&records);
        let state = RuleState { best_epoch: Some(if n == 2 { 2 } else { 0 }), best_score: 0.5, stale: 0 };
        events.push(Event::Decision {
            epoch: n,
            score,
            versus_best: None,
            decision: decisions[n],
            state,
            functions: registry.names(),
            p_value: None,
            val: None,
        });
        let decided = agentopt::record::summary::Decided {
            versus_best: None,
            decision: decisions[n],
            p_value: None,
            val: None,
        };
        history.push(EpochEntry::new(n, &score, decided, registry.names()));
    }
    registries[2].save(&run.best_registry()).unwrap();
    events.push(Event::TrainingStopped { reason: Stop::LastEpoch, best_epoch: 2 });
    write_records(&run, Phase::After, &after);
    events.push(Event::EvalDone { phase: Phase::After, score: Score::of(&after) });
    events.push(Event::RunFinished { status: Status::Completed });
    for e in &events {
        run.append_event(e).unwrap();
    }
    let summary = Summary {
        run: "demo".into(),
        status: Status::Completed,
        epochs_run: 3,
        stopped_early: false,
        stop_reason: Some(Stop::LastEpoch),
        best_epoch: Some(2),
        best_score: Some(0.75),
        history,
        eval: EvalSummary { before: Some(Score::of(&before)), after: Some(Score::of(&after)) },
        functions: registries[2].names(),
        usage: Usage { calls: 60, input_tokens: 9000, output_tokens: 1500, usd: 0.0421 },
    };
    run_dir::write_json(&run.summary(), &summary).unwrap();
}

/// Killed during epoch 1: run.json still says running, no summary, the last event line torn.
fn partial(runs: &Path) {
    let run = RunDir::create(runs, "partial").unwrap();
    run_dir::write_json(&run.run_json(), &info("partial", Status::Running, &["p1", "p3"], &[])).unwrap();
    registry(vec![]).save(&run.epoch_registry(0)).unwrap();
    let epoch0 = [record("p1", true, None, 0.001), record("p3", false, None, 0.001)];
    write_records(&run, Phase::Epoch(0), &epoch0);
    registry(vec![quad1()]).save(&run.epoch_registry(1)).unwrap();
    write_records(&run, Phase::Epoch(1), &[record("p1", true, None, 0.001)]);
    let state = RuleState { best_epoch: Some(0), best_score: 0.5, stale: 0 };
    run.append_event(&Event::Decision {
        epoch: 0,
        score: Score::of(&epoch0),
        versus_best: None,
        decision: Decision::Accept,
        state,
        functions: vec![],
        p_value: None,
        val: None,
    })
    .unwrap();
    run.append_event(&applied(1, Action::Add { function: quad1() })).unwrap();
    use std::io::Write;
    let mut events = std::fs::OpenOptions::new().append(true).open(run.events()).unwrap();
    events.write_all(b"{\"event\": \"conversation_do").unwrap();
}

fn write(root: &Path) {
    let lines: Vec<String> = PROBLEMS
        .iter()
        .map(|(id, subject, problem, answer)| {
            json!({"id": id, "problem": problem, "answer": answer, "subject": subject, "level": "Level 2"})
                .to_string()
        })
        .collect();
    std::fs::create_dir_all(root.join("datasets")).unwrap();
    std::fs::write(root.join("datasets/math.jsonl"), lines.join("\n") + "\n").unwrap();
    registry(vec![quad1(), divisors()]).save(&root.join("registries/a.json")).unwrap();
    registry(vec![quad2(), gcd_list()]).save(&root.join("registries/b.json")).unwrap();
    let runs = root.join("runs");
    demo(&runs);
    partial(&runs);
}

/// The fixtures folder (`datasets/`, `registries/`, `runs/`), written once per test process into
/// cargo's temporary folder for integration tests.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Those of processes that have ended go: each process writes its own.
        for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("fixtures-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let root = tmp.join(format!("fixtures-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        write(&root);
        root
    })
}
