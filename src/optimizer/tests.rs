//! Optimizer-step tests with a scripted model and the fake executor.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::agent::testing::{queue, scripted, tool_calls};
use crate::exec::runner::fake::FakeRunner;
use crate::functions::FunctionDef;
use crate::llm::Role;
use crate::llm::scripted::Scripted;

fn add_args(name: &str, code: &str) -> String {
    json!({"name": name, "description": "d", "arguments": "{\"n\": {\"type\": \"integer\"}}", "packages": "", "code": code})
        .to_string()
}

fn optimizer(model: Arc<Scripted>, actions_per_step: usize) -> Optimizer {
    Optimizer {
        model,
        runner: Arc::new(FakeRunner),
        config: OptimizerConfig { actions_per_step, ..Default::default() },
        brief: Default::default(),
        candidate: None,
    }
}

fn best() -> Registry {
    Registry {
        functions: vec![FunctionDef {
            name: "old".into(),
            description: "d".into(),
            parameters: json!({"type": "object", "properties": {}}),
            packages: vec![],
            code: "def old():\n    return 1".into(),
        }],
    }
}

fn input<'a>(best: &'a Registry, rejected: &'a [Rejected]) -> StepInput<'a> {
    StepInput { epoch: 1, best, best_epoch: 0, best_score: 0.5, rejected, conversations: &[] }
}

#[tokio::test]
async fn applies_then_terminates() {
    let model = Arc::new(queue(vec![
        tool_calls(&[("add_function", &add_args("f", "def f(n):\n    return n"))]),
        Message::assistant("TERMINATE"),
    ]));
    let b = best();
    let rejected = vec![Rejected { epoch: 1, score: 0.25, registry: Registry::default() }];
    let out = optimizer(model.clone(), 3).step(&input(&b, &rejected)).await.unwrap();
    assert_eq!(out.registry.names(), vec!["old", "f"]);
    assert_eq!(out.applied, 1);
    assert_eq!(
        out.events.last(),
        Some(&Event::StepEnded { epoch: 1, candidate: None, reason: "TERMINATE".into() })
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let first = requests[0].messages[1].text();
    assert!(first.contains("Best function list so far") && first.contains("def old()"));
    assert!(first.contains("Tried in epoch 1 (success rate 0.250)"));
    assert_eq!(requests[0].tools.len(), 3);
    // After an applied action the updated list is shown.
    let last = requests[1].messages.last().unwrap();
    assert_eq!(last.role, Role::User);
    assert!(last.text().contains("def f(n)"));
}

#[tokio::test]
async fn invalid_action_is_retried_with_the_error_shown() {
    let model = Arc::new(queue(vec![
        tool_calls(&[("add_function", &add_args("f", "def g(n):\n    return n"))]),
        tool_calls(&[("add_function", &add_args("f", "def f(n):\n    return n"))]),
        Message::assistant("done, no more calls"),
    ]));
    let b = best();
    let out = optimizer(model.clone(), 3).step(&input(&b, &[])).await.unwrap();
    assert_eq!(out.applied, 1);
    let second = &model.requests()[1];
    let tool = second.messages.last().unwrap();
    assert_eq!(tool.role, Role::Tool);
    assert!(tool.text().contains("does not define a callable named `f`"), "{}", tool.text());
    assert!(tool.text().contains("attempt 1 of 4"));
    assert!(out.events.iter().any(|e| matches!(e, Event::ActionRejected { attempt: 1, .. })));
    assert_eq!(
        out.events.last(),
        Some(&Event::StepEnded { epoch: 1, candidate: None, reason: "no tool call".into() })
    );
}

#[tokio::test]
async fn gives_up_after_retries_and_respects_the_limit() {
    let bad = tool_calls(&[("revise_function", &add_args("missing", "def missing(n): pass"))]);
    let model = Arc::new(scripted(0.0, move |_| Ok(bad.clone())));
    let b = best();
    let out = optimizer(model.clone(), 1).step(&input(&b, &[])).await.unwrap();
    assert_eq!(model.requests().len(), 4, "1 try + 3 retries");
    assert_eq!(out.applied, 0);
    assert_eq!(out.registry, b);
    assert!(out.events.iter().any(|e| matches!(e, Event::ActionSkipped { attempts: 4, .. })));

    let model = Arc::new(queue(vec![tool_calls(&[
        ("remove_function", r#"{"name": "old"}"#),
        ("add_function", &add_args("f", "def f(n): return n")),
    ])]));
    let out = optimizer(model.clone(), 1).step(&input(&b, &[])).await.unwrap();
    assert!(out.registry.functions.is_empty());
    assert_eq!(model.requests().len(), 1);
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::StepEnded { reason, .. } if reason == "action limit reached"))
    );
}

#[tokio::test]
async fn model_failure_is_an_error() {
    let model = Arc::new(scripted(0.0, |_| Err(llm::Error::Local("down".into()))));
    let b = best();
    assert!(matches!(optimizer(model, 1).step(&input(&b, &[])).await, Err(Error::Model(_))));
}
