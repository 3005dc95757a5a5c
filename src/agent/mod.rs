//! The assistant ↔ proxy conversation (SPEC §5): one problem, the registry's functions offered as
//! tools, code run in a persistent session, the final answer scored by the task's metric (`task`: the
//! MathChat prompt and its `\boxed{}` answer by default). A failed model call is recorded as
//! `errored`, never as a wrong answer.

pub mod ag2;
pub mod console;
pub mod delegate;
pub mod general;
pub mod human;
pub mod live;
pub mod prompts;
pub mod proxy;
#[cfg(test)]
pub mod testing;
pub mod warm;

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::dataset::Problem;
use crate::exec::{self, ExecStatus, Execution};
pub use crate::exec::{CodeSession, Runner};
use crate::functions::Registry;
use crate::llm::{self, ChatModel, ChatRequest, Message, Role, ToolChoice, Usage};
pub use crate::record::{ConversationRecord, End};
use crate::record::{GradedBy, Outcome, Timing};
use crate::task::{Task, metric};
use human::{Gated, HumanGate};
use proxy::{Lang, ProxyState, ReplyKind};

/// AG2's MathChat limit on assistant turns.
pub const MAX_TURNS: usize = 15;

/// Sampling settings for the assistant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentConfig {
    pub max_turns: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Also run ```sh / ```bash blocks (chat does; training's MathChat proxy runs Python only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shell: bool,
    /// Offer the `call` tool (hand a task to a fresh copy of the assistant), nested at most this
    /// deep (`chat --delegate --max-depth N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate: Option<usize>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            max_turns: MAX_TURNS,
            temperature: Some(0.0),
            max_tokens: None,
            seed: None,
            shell: false,
            delegate: None,
        }
    }
}

/// Why a conversation produced no record (the problem is not completed and runs again on resume).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("budget reached")]
    Budget,
    #[error("Failed to start a code session")]
    Exec(#[from] exec::Error),
    #[error("Failed to start a code session for the metric")]
    MetricExec(#[source] exec::Error),
    /// A model error no other problem would escape (`llm::Error::fails_every_request`).
    #[error(transparent)]
    Model(llm::Error),
}

/// What a conversation needs; cheap to clone into concurrent tasks.
#[derive(Clone)]
pub struct Agent {
    pub model: Arc<dyn ChatModel>,
    pub runner: Arc<dyn Runner>,
    /// What the assistant is told, when it is done, and how its answer is scored.
    pub task: Arc<Task>,
    pub config: AgentConfig,
}

impl Agent {
    /// Runs one problem to its end and grades it.
    pub async fn solve(
        &self,
        registry: &Registry,
        index: usize,
        problem: &Problem,
    ) -> Result<ConversationRecord, Error> {
        self.converse(registry, index, problem, None).await
    }

    /// `solve` with a human in the loop (`agentopt chat`): the gate writes the opening, sees each
    /// assistant reply first, and may answer it instead of the proxy or end the conversation.
    pub async fn converse(
        &self,
        registry: &Registry,
        index: usize,
        problem: &Problem,
        gate: Option<&mut dyn HumanGate>,
    ) -> Result<ConversationRecord, Error> {
        // Delegated conversations draw on the same turn budget as the one that started them.
        let mut turns_left = self.config.max_turns;
        self.converse_at(registry, index, problem, gate, 0, &mut turns_left).await
    }

    /// One conversation at delegation `depth` (0: the top, which alone is graded), taking its turns
    /// from `turns_left`.
    async fn converse_at(
        &self,
        registry: &Registry,
        index: usize,
        problem: &Problem,
        mut gate: Option<&mut (dyn HumanGate + '_)>,
        depth: usize,
        turns_left: &mut usize,
    ) -> Result<ConversationRecord, Error> {
        let started = Instant::now();
        let delegates = self.config.delegate.is_some_and(|max_depth| depth < max_depth);
        let mut tools = registry.tool_specs();
        if delegates {
            tools.push(delegate::tool());
        }
        let mut delegated = Vec::new();
        let mut messages = self.task.messages(problem);
        let mut executions = Vec::new();
        let mut usage = Usage::default();
        let mut session: Option<Box<dyn CodeSession>> = None;
        let mut proxy = ProxyState::default();
        let mut errored = None;
        let mut end = End::MaxTurns;
        let mut turns = 0;
        let mut timing = Timing::default();

        while *turns_left > 0 {
            let request = ChatRequest {
                messages: messages.clone(),
                tools: tools.clone(),
                tool_choice: (!tools.is_empty()).then_some(ToolChoice::Auto),
                temperature: self.config.temperature,
                max_tokens: self.config.max_tokens,
                seed: self.config.seed,
                ..Default::default()
            };
            let asked = Instant::now();
            let call = self.model.chat(&request);
            let response = match gate.as_deref().and_then(|g| g.streamer()) {
                Some(sink) => llm::stream::scope(sink, call).await,
                None => call.await,
            };
            timing.model_ms += millis(asked);
            let response = match response {
                Ok(r) => r,
                // With a human watching, the budget ends the chat like any failed call: it is saved.
                Err(llm::Error::Budget { .. }) if gate.is_none() => return Err(Error::Budget),
                Err(e) if e.fails_every_request() => return Err(Error::Model(e)),
                Err(e) => {
                    errored = Some(error_chain(&e));
                    end = End::Errored;
                    break;
                }
            };
            turns += 1;
            *turns_left -= 1;
            usage.add(&response.usage);
            let mut reply = response.message;
            reply.role = Role::Assistant;
            let mut kind = self.task.classify(&reply);
            if self.config.shell && kind != ReplyKind::ToolCalls {
                let blocks = proxy::code_blocks(reply.text(), true);
                if blocks.iter().any(|b| b.lang != Lang::Python) {
                    kind = ReplyKind::Code(blocks);
                }
            }
            messages.push(reply.clone());
            let seen = (executions.len(), messages.len());
            let kind = match human::consult(gate.as_deref_mut(), &reply, kind, &mut messages).await {
                Gated::Proceed(kind) => kind,
                Gated::Replied => continue,
                Gated::End(e) => {
                    end = e;
                    break;
                }
            };
            match kind {
                ReplyKind::ToolCalls => {
                    let mut all_ok = true;
                    let mut texts = Vec::new();
                    let mut human_ended = false;
                    for call in &reply.tool_calls {
                        let ran = Instant::now();
                        let execution = if self.config.delegate.is_some() && call.name == delegate::TOOL {
                            let at = delegate::At { parent: problem, index, depth, n: delegated.len() + 1 };
                            let (execution, done) =
                                self.delegate(registry, &at, call, gate.as_deref_mut(), turns_left).await?;
                            if let Some(done) = done {
                                usage.add(&done.record.usage);
                                // The delegate's own record holds its time; here it would count twice.
                                human_ended |= done.record.end == End::Exited;
                                delegated.push(done);
                            }
                            execution
                        } else {
                            let execution = if registry.get(&call.name).is_some() {
                                let session =
                                    open(&mut session, &*self.runner, registry, &mut timing).await?;
                                session.call_function(&call.name, &call.arguments).await
                            } else {
                                unknown_function(&call.name, &call.arguments)
                            };
                            timing.execution_ms += millis(ran);
                            execution
                        };
                        let (text, ok) = proxy::format_execution(&execution);
                        all_ok &= ok;
                        texts.push(text);
                        executions.push(execution);
                    }
                    // Every call must be answered by its own tool message; the nudge, if due, is
                    // appended to the last one.
                    let last = proxy.reply(texts.join("\n"), all_ok);
                    let nudge = (last == prompts::REVISIT).then_some(last);
                    let n = texts.len();
                    for (i, (call, text)) in reply.tool_calls.iter().zip(texts).enumerate() {
                        let text = match (&nudge, i + 1 == n) {
                            (Some(nudge), true) => format!("{text}\n\n{nudge}"),
                            _ => text,
                        };
                        messages.push(Message::tool(call, text));
                    }
                    if human_ended {
                        // Ended (or interrupted) inside a delegate: the whole chat ends, with no
                        // further model call at any level.
                        end = End::Exited;
                        break;
                    }
                }
                ReplyKind::Code(blocks) => {
                    let session = open(&mut session, &*self.runner, registry, &mut timing).await?;
                    let mut all_ok = true;
                    let mut texts = Vec::new();
                    for block in blocks {
                        let ran = Instant::now();
                        let execution = match block.lang {
                            Lang::Python => session.run_code(&block.code).await,
                            Lang::Sh | Lang::Bash => {
                                let mut e = session.run_code(&proxy::shell_wrapper(&block)).await;
                                e.code = block.code;
                                e.shell = block.lang.shell_name().map(str::to_string);
                                e
                            }
                        };
                        timing.execution_ms += millis(ran);
                        let (text, ok) = proxy::format_execution(&execution);
                        all_ok &= ok;
                        texts.push(text);
                        executions.push(execution);
                    }
                    messages.push(Message::user(proxy.reply(texts.join("\n"), all_ok)));
                }
                ReplyKind::Answer(_) => {
                    end = End::Answered;
                    break;
                }
                ReplyKind::Continue => messages.push(Message::user(self.task.continue_text())),
            }
            if let Some(gate) = gate.as_deref_mut() {
                gate.after(&executions[seen.0..], &messages[seen.1..]);
            }
        }
        if let Some(s) = session {
            s.close().await;
        }
        let answer = self.task.answer(&messages, end);
        let grading = Instant::now();
        let scored = match &errored {
            Some(_) => metric::Scored::of(false, GradedBy::Errored),
            // A delegated task has no reference: its answer goes back to the caller, unscored.
            None if depth > 0 => metric::Scored::of(false, GradedBy::NoReference),
            None => self.task.metric.score(answer.as_deref(), problem).await.map_err(|e| match e {
                metric::Error::Budget => Error::Budget,
                metric::Error::Exec(e) => Error::MetricExec(e),
            })?,
        };
        timing.grading_ms = millis(grading);
        usage.add(&scored.usage);
        let outcome = match errored.or(scored.errored) {
            Some(reason) => Outcome::Errored { reason },
            None => Outcome::scored(scored.score),
        };
        Ok(ConversationRecord {
            index,
            id: problem.id.clone(),
            problem: problem.problem.clone(),
            subject: problem.subject.clone(),
            level: problem.level,
            reference: problem.answer.clone(),
            answer,
            outcome,
            graded_by: scored.decided_by,
            end,
            turns,
            functions: registry.names(),
            messages,
            executions,
            usage,
            duration_ms: millis(started),
            timing,
            fields: problem.fields.clone(),
            delegated,
        })
    }
}

/// The session, started on first use (a conversation that needs no code costs no process).
async fn open<'a>(
    slot: &'a mut Option<Box<dyn CodeSession>>,
    runner: &dyn Runner,
    registry: &Registry,
    timing: &mut Timing,
) -> Result<&'a mut Box<dyn CodeSession>, exec::Error> {
    if slot.is_none() {
        let asked = Instant::now();
        *slot = Some(runner.session(registry).await?);
        timing.session_start_ms = millis(asked);
    }
    Ok(slot.as_mut().expect("session just opened"))
}

fn millis(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

fn unknown_function(name: &str, arguments: &str) -> Execution {
    Execution {
        code: format!("{name}({arguments})"),
        status: ExecStatus::Error,
        stdout: String::new(),
        stderr: prompts::unknown_function(name),
        result: None,
        duration_ms: 0,
        truncated: false,
        shell: None,
    }
}

/// An error and its causes on one line (what the record keeps as the errored reason).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests;
