//! The human-in-the-loop hook of the conversation loop (`agentopt chat`): a `HumanGate` sees every
//! assistant reply before the proxy answers it and may let the proxy go on, answer in its place, or end
//! the conversation. Without a gate the loop is exactly the training loop. Also the pure rules of AG2's
//! `human_input_mode` (when to ask, what an input line means), shared by every gate.

use async_trait::async_trait;

use super::End;
use super::proxy::ReplyKind;
use crate::exec::Execution;
use crate::llm::Message;

/// AG2's `human_input_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Ask before every proxy reply.
    Always,
    /// Ask only when the assistant wants to end.
    Terminate,
    /// Never ask; run until the end or the turn limit.
    Never,
}

impl Mode {
    /// Whether the human is asked about this reply.
    pub fn asks(self, wants_end: bool) -> bool {
        match self {
            Mode::Always => true,
            Mode::Terminate => wants_end,
            Mode::Never => false,
        }
    }
}

/// What the human typed, read from one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An empty line: let the proxy do what it proposed (run the code, end the chat).
    Proceed,
    /// `exit` (or the end of input): stop now.
    Exit,
    /// Anything else goes to the assistant instead of the proxy's reply.
    Feedback(String),
}

impl Input {
    pub fn parse(line: &str) -> Input {
        match line.trim() {
            "" => Input::Proceed,
            "exit" => Input::Exit,
            text => Input::Feedback(text.to_string()),
        }
    }
}

/// A gate's decision about one assistant reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The proxy replies as it would without a human (runs the code, ends on an answer, …).
    Auto,
    /// This text is the reply, as a user message; nothing proposed is run.
    Reply(String),
    /// The conversation ends here.
    End(End),
}

/// Consulted by the conversation loop; see `Agent::converse`.
#[async_trait]
pub trait HumanGate: Send {
    /// Called with each assistant reply as it arrives, before the proxy answers it.
    async fn decide(&mut self, reply: &Message, kind: &ReplyKind) -> Step;
    /// What the proxy's reply ran and the messages it answered with.
    fn after(&mut self, executions: &[Execution], replies: &[Message]);
    /// A delegated conversation at `depth` starts on `task`; its replies come next.
    fn enter(&mut self, _depth: usize, _task: &str) {}
    /// The delegated conversation at `depth` ended; `result` goes back to its caller.
    fn leave(&mut self, _depth: usize, _result: &str) {}
    /// Where the assistant's replies should stream as they are generated, if anywhere.
    fn streamer(&self) -> Option<crate::llm::stream::Sink> {
        None
    }
}

/// What the loop does with an assistant reply once the gate (if any) has decided.
pub(super) enum Gated {
    /// Handle the reply as the proxy would.
    Proceed(ReplyKind),
    /// The human's reply is already in the conversation.
    Replied,
    End(End),
}

/// Asks the gate about `reply` (already the last message) and applies a human reply to `messages`.
pub(super) async fn consult(
    gate: Option<&mut (dyn HumanGate + '_)>,
    reply: &Message,
    kind: ReplyKind,
    messages: &mut Vec<Message>,
) -> Gated {
    let Some(gate) = gate else { return Gated::Proceed(kind) };
    match gate.decide(reply, &kind).await {
        Step::Auto => Gated::Proceed(kind),
        Step::End(end) => Gated::End(end),
        Step::Reply(text) => {
            messages.extend(declined_calls(reply));
            messages.push(Message::user(text));
            Gated::Replied
        }
    }
}

/// The tool messages for calls the human chose not to run: the API requires every call be answered.
fn declined_calls(reply: &Message) -> Vec<Message> {
    reply.tool_calls.iter().map(|call| Message::tool(call, DECLINED)).collect()
}

/// The tool result of a call the human did not let run.
pub const DECLINED: &str = "Not run: the user replied instead (see the next message).";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCall;

    #[test]
    fn modes_ask_as_in_ag2() {
        assert!(Mode::Always.asks(false) && Mode::Always.asks(true));
        assert!(!Mode::Terminate.asks(false) && Mode::Terminate.asks(true));
        assert!(!Mode::Never.asks(false) && !Mode::Never.asks(true));
    }

    #[test]
    fn input_lines() {
        assert_eq!(Input::parse("\n"), Input::Proceed);
        assert_eq!(Input::parse("  "), Input::Proceed);
        assert_eq!(Input::parse("exit\r\n"), Input::Exit);
        assert_eq!(Input::parse(" use sympy \n"), Input::Feedback("use sympy".into()));
        assert_eq!(Input::parse("exit now"), Input::Feedback("exit now".into()));
    }

    struct Fixed(Step);

    #[async_trait]
    impl HumanGate for Fixed {
        async fn decide(&mut self, _: &Message, _: &ReplyKind) -> Step {
            self.0.clone()
        }
        fn after(&mut self, _: &[Execution], _: &[Message]) {}
    }

    #[tokio::test]
    async fn feedback_answers_every_declined_call_then_speaks() {
        let mut reply = Message::assistant("");
        reply.tool_calls = vec![
            ToolCall { id: "a".into(), name: "f".into(), arguments: "{}".into() },
            ToolCall { id: "b".into(), name: "g".into(), arguments: "{}".into() },
        ];
        let mut messages = vec![reply.clone()];
        let mut gate = Fixed(Step::Reply("try g only".into()));
        let gated = consult(Some(&mut gate), &reply, ReplyKind::ToolCalls, &mut messages).await;
        assert!(matches!(gated, Gated::Replied));
        let ids: Vec<_> = messages[1..3].iter().map(|m| m.tool_call_id.clone().unwrap()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(messages[3].text(), "try g only");
    }

    /// Replays decisions in order and remembers what it was shown after each proxy reply.
    struct Replay {
        steps: Vec<Step>,
        shown: Vec<(usize, usize)>,
    }

    #[async_trait]
    impl HumanGate for Replay {
        async fn decide(&mut self, _: &Message, _: &ReplyKind) -> Step {
            self.steps.remove(0)
        }
        fn after(&mut self, executions: &[Execution], replies: &[Message]) {
            self.shown.push((executions.len(), replies.len()));
        }
    }

    #[tokio::test]
    async fn the_loop_follows_the_gate() {
        use crate::agent::{Agent, AgentConfig, testing::queue};
        use crate::dataset::Problem;
        use crate::exec::runner::fake::FakeRunner;
        use std::sync::Arc;

        let code = || Message::assistant("```python\nprint(7)\n```");
        let model = Arc::new(queue(vec![code(), code(), Message::assistant("\\boxed{7}"), code()]));
        let agent = Agent {
            model: model.clone(),
            runner: Arc::new(FakeRunner),
            task: Arc::new(crate::task::Task::math(crate::grading::Grader::new("python3".into()))),
            config: AgentConfig::default(),
        };
        let task = Problem::new("c", "task", "7");
        // Feedback instead of running, then run, then refuse the end, then exit before running.
        let steps =
            vec![Step::Reply("no".into()), Step::Auto, Step::Reply("sure?".into()), Step::End(End::Exited)];
        let mut gate = Replay { steps, shown: Vec::new() };
        let r = agent.converse(&Default::default(), 0, &task, Some(&mut gate)).await.unwrap();
        assert_eq!((r.end, r.turns, r.executions.len()), (End::Exited, 4, 1));
        assert_eq!(gate.shown, [(1, 1)]);
        let requests = model.requests();
        assert_eq!(requests[0].messages[0].text(), crate::agent::prompts::ASSISTANT_SYSTEM);
        assert_eq!(requests[1].messages.last().unwrap().text(), "no");
        assert_eq!(requests[2].messages.last().unwrap().text(), "7");
        assert_eq!(requests[3].messages.last().unwrap().text(), "sure?");
        // An exited chat is graded on the last box the assistant wrote.
        assert_eq!(r.answer.as_deref(), Some("7"));
        assert!(r.is_correct());
    }

    #[tokio::test]
    async fn no_gate_and_auto_change_nothing() {
        let reply = Message::assistant("x");
        let mut messages = vec![reply.clone()];
        let gated = consult(None, &reply, ReplyKind::Continue, &mut messages).await;
        assert!(matches!(gated, Gated::Proceed(ReplyKind::Continue)));
        let mut gate = Fixed(Step::Auto);
        let gated = consult(Some(&mut gate), &reply, ReplyKind::Continue, &mut messages).await;
        assert!(matches!(gated, Gated::Proceed(ReplyKind::Continue)) && messages.len() == 1);
        let mut gate = Fixed(Step::End(End::Exited));
        let gated = consult(Some(&mut gate), &reply, ReplyKind::Continue, &mut messages).await;
        assert!(matches!(gated, Gated::End(End::Exited)));
    }
}
