//! The terminal side of `agentopt chat`: a `HumanGate` that prints the conversation as it happens (each
//! assistant reply with the code or calls it proposes, then what ran and what the proxy answered) and
//! asks the human by AG2's `human_input_mode` rules, one input line per question.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use super::End;
use super::human::{HumanGate, Input, Mode, Step};
use super::live::{Live, Out};
use super::proxy::{self, ReplyKind};
use crate::exec::{ExecStatus, Execution};
use crate::llm::stream::Sink;
use crate::llm::{Message, Role};

/// The question put to the human about a reply.
pub fn question(kind: &ReplyKind, wants_end: bool) -> &'static str {
    match kind {
        _ if wants_end => "The assistant wants to end. [Enter] end the chat | type feedback to go on | exit",
        ReplyKind::Code(_) => "[Enter] run the code above | type feedback for the assistant instead | exit",
        ReplyKind::ToolCalls => {
            "[Enter] make the call(s) above | type feedback for the assistant instead | exit"
        }
        _ => "[Enter] let the proxy ask it to continue | type a reply | exit",
    }
}

/// Lines of the process's standard input, read on their own thread (a blocked read must never hold
/// up the runtime's shutdown); the channel closes at the end of input.
pub fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The interactive gate.
pub struct Console {
    pub mode: Mode,
    input: mpsc::UnboundedReceiver<String>,
    out: Out,
    /// With `--stream`: the reply shown as it is generated.
    live: Option<Live>,
    /// Echo what was read, so a transcript from piped input shows the human's lines (a terminal
    /// echoes them itself).
    echo: bool,
    /// Turns true on an interrupt (Ctrl-C): the chat ends at the next question or reply, and is saved.
    interrupt: watch::Receiver<bool>,
    /// The delegation depth being shown: sub-conversations are indented one step per level.
    depth: usize,
}

impl Console {
    pub fn new(
        mode: Mode,
        input: mpsc::UnboundedReceiver<String>,
        out: Box<dyn Write + Send>,
        echo: bool,
    ) -> Console {
        let (_, interrupt) = watch::channel(false);
        Console { mode, input, out: Arc::new(Mutex::new(out)), live: None, echo, interrupt, depth: 0 }
    }

    /// Ends the chat when `interrupt` turns true.
    pub fn with_interrupt(mut self, interrupt: watch::Receiver<bool>) -> Console {
        self.interrupt = interrupt;
        self
    }

    /// Shows each assistant reply as it is generated.
    pub fn streaming(mut self) -> Console {
        self.live = Some(Live::new(self.out.clone()));
        self
    }

    fn interrupted(&self) -> bool {
        *self.interrupt.borrow()
    }

    /// A console on stdin, writing the transcript to `out`.
    pub fn stdio(mode: Mode, out: Box<dyn Write + Send>) -> Console {
        Console::new(mode, stdin_lines(), out, !std::io::stdin().is_terminal())
    }

    /// Prints to the transcript, indented by the delegation depth; a closed output must not stop the
    /// chat.
    fn say(&mut self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{}", indent(text, self.depth));
        let _ = out.flush();
    }

    async fn ask(&mut self, question: &str) -> Input {
        {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = write!(out, "{}\n{}> ", indent(question, self.depth), indent("", self.depth));
            let _ = out.flush();
        }
        let line = tokio::select! {
            line = self.input.recv() => line,
            _ = fired(self.interrupt.clone()) => {
                self.say("(interrupted)");
                return Input::Exit;
            }
        };
        match &line {
            Some(l) if self.echo => self.say(l),
            Some(_) => {}
            None => self.say("(end of input)"),
        }
        line.map_or(Input::Exit, |l| Input::parse(&l))
    }
}

/// `text` with every line prefixed by one bar per delegation level.
fn indent(text: &str, depth: usize) -> String {
    if depth == 0 {
        return text.to_string();
    }
    let bar = "│   ".repeat(depth);
    text.split('\n').map(|line| format!("{bar}{line}").trim_end().to_string()).collect::<Vec<_>>().join("\n")
}

/// Resolves when the interrupt fires; never when none can come (its sender is gone).
async fn fired(mut interrupt: watch::Receiver<bool>) {
    if interrupt.wait_for(|&i| i).await.is_err() {
        std::future::pending::<()>().await
    }
}

#[async_trait]
impl HumanGate for Console {
    async fn decide(&mut self, reply: &Message, kind: &ReplyKind) -> Step {
        match &self.live {
            // The text is on screen already: what follows it is left.
            Some(live) if live.showed(reply) => self.say(&show_calls(reply)),
            _ => self.say(&show_reply(reply)),
        }
        if self.interrupted() {
            return Step::End(End::Exited);
        }
        // The task has already read the reply: an answer is the assistant asking to end (code in
        // the same reply runs first, unlike AG2, which would end without running it).
        let wants_end = matches!(kind, ReplyKind::Answer(_));
        if !self.mode.asks(wants_end) {
            return Step::Auto;
        }
        let delegates = reply.tool_calls.iter().any(|c| c.name == super::delegate::TOOL);
        let question = if delegates && !wants_end { DELEGATE_QUESTION } else { question(kind, wants_end) };
        match self.ask(question).await {
            Input::Proceed => Step::Auto,
            Input::Exit => Step::End(End::Exited),
            Input::Feedback(text) => Step::Reply(text),
        }
    }

    fn after(&mut self, executions: &[Execution], replies: &[Message]) {
        self.say(&show_after(executions, replies));
    }

    fn enter(&mut self, depth: usize, task: &str) {
        self.say(&format!("\n┌─ delegated (depth {depth}) ─\n{task}"));
        self.set_depth(depth);
    }

    fn leave(&mut self, depth: usize, result: &str) {
        self.set_depth(depth - 1);
        self.say(&format!("└─ back from depth {depth}: {result}"));
    }

    fn streamer(&self) -> Option<Sink> {
        self.live.as_ref().map(Live::sink)
    }
}

impl Console {
    fn set_depth(&mut self, depth: usize) {
        self.depth = depth;
        if let Some(live) = &self.live {
            live.set_depth(depth);
        }
    }
}

/// The question about a reply that hands a task on.
pub const DELEGATE_QUESTION: &str =
    "[Enter] hand the task to a fresh assistant | type feedback for the assistant instead | exit";

/// An assistant reply as the transcript shows it: its text (code blocks included) and its calls.
pub fn show_reply(reply: &Message) -> String {
    let mut out = String::from("\n── assistant ──");
    if !reply.text().trim().is_empty() {
        out.push('\n');
        out.push_str(reply.text().trim());
    }
    out.push_str(&show_calls(reply));
    out
}

/// The calls of a reply, one line each (each line starting with a newline).
fn show_calls(reply: &Message) -> String {
    reply.tool_calls.iter().map(|call| format!("\n→ call {}({})", call.name, call.arguments)).collect()
}

/// What ran (status and time of each execution) and the proxy's answer, as the assistant sees it.
pub fn show_after(executions: &[Execution], replies: &[Message]) -> String {
    let mut out = String::new();
    let mut outputs = Vec::new();
    for e in executions {
        let status = match e.status {
            ExecStatus::Ok => "ok",
            ExecStatus::Error => "error",
            ExecStatus::Timeout => "timed out",
            ExecStatus::Crashed => "crashed",
        };
        out.push_str(&format!("\n── ran: {status} in {} ms ──", e.duration_ms));
        // The proxy's reply may replace outputs with a nudge; the raw output is still worth seeing.
        let (text, _) = proxy::format_execution(e);
        out.push('\n');
        out.push_str(&text);
        outputs.push(text);
    }
    let joined = outputs.join("\n");
    // Replies that only repeat an output above are not shown twice; nudges and "continue" are.
    for m in replies.iter().filter(|m| {
        let t = m.text().trim();
        t != joined.trim() && !outputs.iter().any(|o| o.trim() == t)
    }) {
        let who = match (m.role, &m.name) {
            (Role::Tool, Some(name)) => format!("tool result ({name})"),
            (Role::Tool, None) => "tool result".to_string(),
            _ => "proxy".to_string(),
        };
        out.push_str(&format!("\n── {who} → assistant ──\n{}", m.text().trim_end()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::prompts as texts;
    use crate::agent::testing::Buf;

    fn console(mode: Mode, lines: &[&str]) -> (Console, Buf) {
        let (tx, rx) = mpsc::unbounded_channel();
        for l in lines {
            tx.send(l.to_string()).unwrap();
        }
        let buf = Buf::default();
        (Console::new(mode, rx, Box::new(buf.clone()), true), buf)
    }

    /// A streamed reply is not printed a second time when it is complete: only its calls follow.
    #[tokio::test]
    async fn a_streamed_reply_is_shown_once() {
        let (tx, rx) = mpsc::unbounded_channel::<String>();
        drop(tx);
        let buf = Buf::default();
        let mut c = Console::new(Mode::Never, rx, Box::new(buf.clone()), true).streaming();
        let sink = c.streamer().unwrap();
        sink(crate::llm::stream::Piece::Start);
        for piece in ["Let me ", "call it."] {
            sink(crate::llm::stream::Piece::Text(piece));
        }
        let mut m = Message::assistant("Let me call it.");
        m.tool_calls.push(crate::llm::ToolCall { id: "1".into(), name: "f".into(), arguments: "{}".into() });
        assert_eq!(c.decide(&m, &ReplyKind::ToolCalls).await, Step::Auto);
        let text = buf.text();
        assert_eq!(text, "\n── assistant ──\nLet me call it.\n→ call f({})\n");
        assert_eq!(text, format!("{}\n", show_reply(&m)), "the same as shown whole");
    }

    fn code() -> (Message, ReplyKind) {
        let m = Message::assistant("```python\nprint(1)\n```");
        let k = proxy::classify(&m);
        (m, k)
    }

    #[tokio::test]
    async fn always_asks_and_maps_input() {
        let (mut c, buf) = console(Mode::Always, &["", "use sympy", "exit"]);
        let (m, k) = code();
        assert_eq!(c.decide(&m, &k).await, Step::Auto);
        assert_eq!(c.decide(&m, &k).await, Step::Reply("use sympy".into()));
        assert_eq!(c.decide(&m, &k).await, Step::End(End::Exited));
        // The end of input is an exit too.
        assert_eq!(c.decide(&m, &k).await, Step::End(End::Exited));
        let text = buf.text();
        assert_eq!(text.matches("run the code above").count(), 4);
        assert!(text.contains("print(1)") && text.contains("(end of input)"));
    }

    #[tokio::test]
    async fn terminate_asks_only_at_the_end() {
        let (mut c, _) = console(Mode::Terminate, &["go on please", ""]);
        let (m, k) = code();
        assert_eq!(c.decide(&m, &k).await, Step::Auto);
        let end = Message::assistant("\\boxed{1}");
        let kind = proxy::classify(&end);
        assert_eq!(c.decide(&end, &kind).await, Step::Reply("go on please".into()));
        assert_eq!(c.decide(&end, &kind).await, Step::Auto);
    }

    #[tokio::test]
    async fn an_answer_is_the_wish_to_end() {
        let (mut c, buf) = console(Mode::Terminate, &[""]);
        let (m, k) = code();
        assert_eq!(c.decide(&m, &k).await, Step::Auto);
        let done = ReplyKind::Answer("1".into());
        assert_eq!(c.decide(&Message::assistant("1. TERMINATE"), &done).await, Step::Auto);
        let text = buf.text();
        assert_eq!(text.matches("The assistant wants to end").count(), 1, "{text}");
    }

    #[tokio::test]
    async fn an_interrupt_ends_the_chat_even_while_waiting_for_input() {
        let (tx, rx) = watch::channel(false);
        let (c, _) = console(Mode::Always, &[]);
        let (_keep_input_open, input) = mpsc::unbounded_channel();
        let mut c = Console { input, ..c.with_interrupt(rx) };
        let (m, k) = code();
        let waiting = tokio::spawn(async move { c.decide(&m, &k).await });
        tokio::task::yield_now().await;
        tx.send(true).unwrap();
        assert_eq!(waiting.await.unwrap(), Step::End(End::Exited));
        // Once interrupted, even a chat that never asks ends at the next reply.
        let (c, _) = console(Mode::Never, &[]);
        let (tx, rx) = watch::channel(true);
        let mut c = c.with_interrupt(rx);
        let (m, k) = code();
        assert_eq!(c.decide(&m, &k).await, Step::End(End::Exited));
        drop(tx);
    }

    #[test]
    fn after_shows_status_output_and_reply() {
        let e = Execution {
            code: "print(4)".into(),
            status: ExecStatus::Ok,
            stdout: "4\n".into(),
            stderr: String::new(),
            result: None,
            duration_ms: 3,
            truncated: false,
            shell: None,
        };
        let text = show_after(std::slice::from_ref(&e), &[Message::user("4")]);
        assert!(text.contains("ran: ok in 3 ms ──\n4") && !text.contains("proxy"), "{text}");
        let text = show_after(&[e], &[Message::user(texts::REVISIT)]);
        assert!(text.contains(&format!("proxy → assistant ──\n{}", texts::REVISIT)), "{text}");
        assert!(show_after(&[], &[Message::user("Continue.")]).contains("Continue."));
    }
}
