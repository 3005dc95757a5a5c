//! The assistant ↔ math-proxy conversation (SPEC §5): one problem, the registry's functions offered
//! as tools, code run in a persistent session, the final `\boxed{}` answer graded. A failed model call
//! is recorded as `errored`, never as a wrong answer.

pub mod ag2;
pub mod console;
pub mod general;
pub mod human;
pub mod prompts;
pub mod proxy;
pub mod runner;
#[cfg(test)]
pub mod testing;
pub mod warm;

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::dataset::Problem;
use crate::exec::{self, ExecStatus, Execution};
use crate::functions::Registry;
use crate::grading::Grader;
use crate::llm::{self, ChatModel, ChatRequest, Message, Role, ToolChoice, Usage};
use human::{Gated, HumanGate};
use proxy::{ProxyState, ReplyKind};
pub use runner::{CodeSession, Runner};

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
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig { max_turns: MAX_TURNS, temperature: Some(0.0), max_tokens: None, seed: None }
    }
}

/// How a conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// A `\boxed{}` answer with no code.
    Answered,
    /// `max_turns` assistant replies without a final answer.
    MaxTurns,
    /// The model call failed after retries.
    Errored,
    /// The human ended the chat (`agentopt chat`: `exit` or the end of input).
    Exited,
}

/// Everything that happened in one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRecord {
    /// Position of the problem in its split (records are stored in this order).
    pub index: usize,
    pub id: String,
    pub problem: String,
    pub reference: String,
    pub answer: Option<String>,
    pub correct: bool,
    /// Which check decided the verdict (grader's `decided_by`; "no_answer" when there was none).
    pub decided_by: String,
    /// Why the problem is excluded from the score (infrastructure failure), if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errored: Option<String>,
    pub end: End,
    pub turns: usize,
    /// The functions offered as tools.
    pub functions: Vec<String>,
    pub messages: Vec<Message>,
    pub executions: Vec<Execution>,
    pub usage: Usage,
    pub duration_ms: u64,
}

/// Why a conversation produced no record (the problem is not completed and runs again on resume).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("budget reached")]
    Budget,
    #[error("Failed to start a code session")]
    Exec(#[from] exec::Error),
    /// A model error no other problem would escape (`llm::Error::fails_every_request`).
    #[error(transparent)]
    Model(llm::Error),
}

/// What a conversation needs; cheap to clone into concurrent tasks.
#[derive(Clone)]
pub struct Agent {
    pub model: Arc<dyn ChatModel>,
    pub runner: Arc<dyn Runner>,
    pub grader: Grader,
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
        mut gate: Option<&mut dyn HumanGate>,
    ) -> Result<ConversationRecord, Error> {
        let started = Instant::now();
        let tools = registry.tool_specs();
        let mut messages = match &gate {
            Some(gate) => gate.opening(&problem.problem),
            None => vec![
                Message::system(prompts::ASSISTANT_SYSTEM),
                Message::user(prompts::opening(&problem.problem)),
            ],
        };
        let mut executions = Vec::new();
        let mut usage = Usage::default();
        let mut session: Option<Box<dyn CodeSession>> = None;
        let mut proxy = ProxyState::default();
        let mut answer = None;
        let mut errored = None;
        let mut end = End::MaxTurns;
        let mut turns = 0;

        while turns < self.config.max_turns {
            let request = ChatRequest {
                messages: messages.clone(),
                tools: tools.clone(),
                tool_choice: (!tools.is_empty()).then_some(ToolChoice::Auto),
                temperature: self.config.temperature,
                max_tokens: self.config.max_tokens,
                seed: self.config.seed,
                ..Default::default()
            };
            let response = match self.model.chat(&request).await {
                Ok(r) => r,
                Err(llm::Error::Budget { .. }) => return Err(Error::Budget),
                Err(e) if e.fails_every_request() => return Err(Error::Model(e)),
                Err(e) => {
                    errored = Some(error_chain(&e));
                    end = End::Errored;
                    break;
                }
            };
            turns += 1;
            usage.add(&response.usage);
            let mut reply = response.message;
            reply.role = Role::Assistant;
            let kind = proxy::classify(&reply);
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
                    let session = open(&mut session, &*self.runner, registry).await?;
                    let mut all_ok = true;
                    let mut texts = Vec::new();
                    for call in &reply.tool_calls {
                        let execution = if registry.get(&call.name).is_some() {
                            session.call_function(&call.name, &call.arguments).await
                        } else {
                            unknown_function(&call.name, &call.arguments)
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
                }
                ReplyKind::Code(blocks) => {
                    let session = open(&mut session, &*self.runner, registry).await?;
                    let mut all_ok = true;
                    let mut texts = Vec::new();
                    for code in blocks {
                        let execution = session.run_code(&code).await;
                        let (text, ok) = proxy::format_execution(&execution);
                        all_ok &= ok;
                        texts.push(text);
                        executions.push(execution);
                    }
                    messages.push(Message::user(proxy.reply(texts.join("\n"), all_ok)));
                }
                ReplyKind::Answer(a) => {
                    answer = Some(a);
                    end = End::Answered;
                    break;
                }
                ReplyKind::Continue => messages.push(Message::user(prompts::CONTINUE)),
            }
            if let Some(gate) = gate.as_deref_mut() {
                gate.after(&executions[seen.0..], &messages[seen.1..]);
            }
        }
        if let Some(s) = session {
            s.close().await;
        }
        if matches!(end, End::MaxTurns | End::Exited) {
            // No clean final answer: grade the last box the assistant wrote, if any.
            answer = messages
                .iter()
                .rev()
                .filter(|m| m.role == Role::Assistant)
                .find_map(|m| crate::grading::extract_boxed(m.text()));
        }
        let (correct, decided_by) = match (&answer, &errored) {
            (Some(a), None) => {
                let v = self.grader.check(a, &problem.answer).await;
                (v.equal, v.decided_by)
            }
            (_, Some(_)) => (false, "errored".to_string()),
            (None, None) => (false, "no_answer".to_string()),
        };
        Ok(ConversationRecord {
            index,
            id: problem.id.clone(),
            problem: problem.problem.clone(),
            reference: problem.answer.clone(),
            answer,
            correct,
            decided_by,
            errored,
            end,
            turns,
            functions: registry.names(),
            messages,
            executions,
            usage,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// The session, started on first use (a conversation that needs no code costs no process).
async fn open<'a>(
    slot: &'a mut Option<Box<dyn CodeSession>>,
    runner: &dyn Runner,
    registry: &Registry,
) -> Result<&'a mut Box<dyn CodeSession>, exec::Error> {
    if slot.is_none() {
        *slot = Some(runner.session(registry).await?);
    }
    Ok(slot.as_mut().expect("session just opened"))
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
