//! Conversation-loop tests with a scripted model and the fake executor.

use std::sync::Arc;

use super::*;
use crate::agent::testing::{queue, scripted, tool_calls};
use crate::exec::runner::fake::FakeRunner;
use crate::functions::FunctionDef;
use crate::llm::scripted::Scripted;

fn problem(text: &str, answer: &str) -> Problem {
    Problem::new("p1", text, answer)
}

fn agent(model: Arc<Scripted>) -> Agent {
    Agent {
        model,
        runner: Arc::new(FakeRunner),
        task: Arc::new(crate::task::Task::math(crate::grading::Grader::new("python3".into()))),
        config: AgentConfig::default(),
    }
}

fn registry() -> Registry {
    Registry {
        functions: vec![FunctionDef {
            name: "add".into(),
            description: "adds".into(),
            parameters: serde_json::json!({"type": "object", "properties": {}}),
            packages: vec![],
            code: "def add(a, b):\n    return a + b".into(),
        }],
    }
}

#[tokio::test]
async fn code_then_answer_is_graded() {
    let model = Arc::new(queue(vec![
        Message::assistant("Idea.\n```python\nprint(4)\n```"),
        Message::assistant("So the answer is \\boxed{4}."),
    ]));
    let record =
        agent(model.clone()).solve(&Registry::default(), 0, &problem("What is 2+2?", "4")).await.unwrap();
    assert!(record.is_correct());
    assert_eq!(record.end, End::Answered);
    assert_eq!(record.turns, 2);
    assert_eq!(record.answer.as_deref(), Some("4"));
    assert_eq!(record.executions.len(), 1);
    assert_eq!(record.usage.calls, 2);
    let requests = model.requests();
    // The opening holds the problem verbatim; no tools are offered for an empty registry.
    assert!(requests[0].messages[1].text().ends_with("Problem:\nWhat is 2+2?"));
    assert!(requests[0].tools.is_empty() && requests[0].tool_choice.is_none());
    // The code's output is the proxy's reply.
    assert_eq!(requests[1].messages.last().unwrap().text(), "4");
}

#[tokio::test]
async fn tool_calls_are_answered_by_tool_messages() {
    let model = Arc::new(queue(vec![
        tool_calls(&[("add", r#"{"a": 1, "b": 2}"#), ("missing", "{}")]),
        Message::assistant("\\boxed{3}"),
    ]));
    let record = agent(model.clone()).solve(&registry(), 0, &problem("1+2?", "3")).await.unwrap();
    assert!(record.is_correct());
    let requests = model.requests();
    assert_eq!(requests[0].tools.len(), 1);
    assert_eq!(requests[0].tool_choice, Some(ToolChoice::Auto));
    let msgs = &requests[1].messages;
    let tools: Vec<_> = msgs.iter().filter(|m| m.role == Role::Tool).collect();
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0].tool_call_id.as_deref(), Some("call_0"));
    assert!(tools[0].text().contains("add:"));
    assert!(tools[1].text().contains("Function missing not found."));
}

#[tokio::test]
async fn continue_reply_and_turn_limit() {
    let model = Arc::new(scripted(0.0, |_| {
        Ok(Message::assistant("hmm, maybe \\boxed{5}?\n```python\nprint(1)\n```"))
    }));
    let mut a = agent(model.clone());
    a.config.max_turns = 3;
    let record = a.solve(&Registry::default(), 0, &problem("?", "5")).await.unwrap();
    assert_eq!(record.end, End::MaxTurns);
    assert_eq!(record.turns, 3);
    // The last box written counts at the turn limit.
    assert!(record.is_correct());

    let model = Arc::new(queue(vec![Message::assistant("thinking"), Message::assistant("\\boxed{1}")]));
    let record = agent(model.clone()).solve(&Registry::default(), 0, &problem("?", "2")).await.unwrap();
    assert!(!record.is_correct());
    assert_eq!(model.requests()[1].messages.last().unwrap().text(), prompts::CONTINUE);
}

#[tokio::test]
async fn failing_model_marks_errored_not_wrong() {
    let model = Arc::new(scripted(0.0, |_| {
        Err(llm::Error::Rejected { model: "m".into(), status: 400, body: "bad".into() })
    }));
    let record = agent(model).solve(&Registry::default(), 0, &problem("?", "2")).await.unwrap();
    assert_eq!(record.end, End::Errored);
    assert!(record.errored().unwrap().contains("HTTP 400"));
    assert!(!record.is_correct());

    let model = Arc::new(scripted(0.0, |_| Err(llm::Error::Budget { limit: 1.0 })));
    assert!(matches!(
        agent(model).solve(&Registry::default(), 0, &problem("?", "2")).await,
        Err(Error::Budget)
    ));
}

#[tokio::test]
async fn repeated_failures_get_the_revisit_nudge() {
    let n = std::sync::atomic::AtomicUsize::new(0);
    let model = Arc::new(scripted(0.0, move |_| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Message::assistant(format!("```python\nraise ValueError({i})\n```")))
    }));
    let mut a = agent(model.clone());
    a.config.max_turns = 5;
    a.solve(&Registry::default(), 0, &problem("?", "2")).await.unwrap();
    let last = model.requests().pop().unwrap();
    assert_eq!(last.messages.last().unwrap().text(), prompts::REVISIT);
}
