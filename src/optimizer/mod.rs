//! The optimizer step (SPEC §7): shows the optimizer model the training state, takes its
//! add/revise/remove actions one tool call at a time, validates each (syntax, registry, sandbox) and
//! applies the valid ones, feeding every error back as the tool reply. An invalid action may be
//! retried `max_retries` times; then it is skipped.

pub mod actions;
pub mod prompts;
pub mod render;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::exec;
use crate::exec::Runner;
use crate::functions::Registry;
use crate::llm::{self, ChatModel, ChatRequest, Message, ToolCall, ToolChoice, Usage};
use crate::record::{ConversationRecord, Event};
use actions::Action;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// Applied (or skipped) actions per step.
    pub actions_per_step: usize,
    /// Retries of an invalid action before it is skipped.
    pub max_retries: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub budget: render::Budget,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            actions_per_step: 3,
            max_retries: 3,
            temperature: Some(0.0),
            seed: None,
            budget: render::Budget::default(),
        }
    }
}

/// A registry tried and rolled back, with its training score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub epoch: usize,
    pub score: f64,
    pub registry: Registry,
}

/// What the optimizer is shown.
pub struct StepInput<'a> {
    /// The epoch whose trial registry the step builds (its events carry it).
    pub epoch: usize,
    pub best: &'a Registry,
    pub best_epoch: usize,
    pub best_score: f64,
    pub rejected: &'a [Rejected],
    /// The best epoch's conversations, in problem order.
    pub conversations: &'a [ConversationRecord],
}

#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// The best registry with this step's applied actions.
    pub registry: Registry,
    pub applied: usize,
    /// What the step did, for events.jsonl (each with the step's epoch and candidate).
    pub events: Vec<Event>,
    pub usage: Usage,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("budget reached")]
    Budget,
    #[error("The optimizer model failed")]
    Model(#[source] llm::Error),
    #[error("Failed to validate a proposed function in the sandbox")]
    Exec(#[from] exec::Error),
}

pub struct Optimizer {
    pub model: Arc<dyn ChatModel>,
    pub runner: Arc<dyn Runner>,
    pub config: OptimizerConfig,
    /// The assistant's task, as the optimizer's prompt describes it.
    pub brief: prompts::Brief,
    /// Which candidate of a step with several proposals this optimizer proposes (`sampled`).
    pub candidate: Option<usize>,
}

impl Optimizer {
    /// The optimizer for candidate `c` of a step with several proposals: its own seed (so no two
    /// candidates share a cached reply) and, when the configured temperature is 0, temperature 1
    /// (so they are independent samples, not the same greedy answer).
    pub fn sampled(&self, c: usize) -> Optimizer {
        let temperature = match self.config.temperature {
            Some(t) if t > 0.0 => Some(t),
            _ => Some(1.0),
        };
        let seed = Some(self.config.seed.unwrap_or(0).wrapping_add(c as u64));
        Optimizer {
            model: self.model.clone(),
            runner: self.runner.clone(),
            config: OptimizerConfig { temperature, seed, ..self.config.clone() },
            brief: self.brief.clone(),
            candidate: Some(c),
        }
    }

    /// One optimization step, starting from the best registry.
    pub async fn step(&self, input: &StepInput<'_>) -> Result<StepOutcome, Error> {
        let limit = self.config.actions_per_step;
        let attempts_allowed = self.config.max_retries + 1;
        let mut current = input.best.clone();
        let mut messages =
            vec![Message::system(self.brief.system_message()), Message::user(state(input, &current, self))];
        let (epoch, candidate) = (input.epoch, self.candidate);
        let mut events = Vec::new();
        let mut usage = Usage::default();
        let (mut used, mut applied, mut failed_attempts) = (0, 0, 0);
        // Every slot takes at most `attempts_allowed` calls; the bound keeps a chatty model finite.
        let max_calls = limit * attempts_allowed + 1;
        let mut reason = "action limit reached".to_string();
        for _ in 0..max_calls {
            if used >= limit {
                break;
            }
            let request = ChatRequest {
                messages: messages.clone(),
                tools: prompts::tools(),
                tool_choice: Some(ToolChoice::Auto),
                temperature: self.config.temperature,
                seed: self.config.seed,
                ..Default::default()
            };
            let response = match self.model.chat(&request).await {
                Ok(r) => r,
                Err(llm::Error::Budget { .. }) => return Err(Error::Budget),
                Err(e) => return Err(Error::Model(e)),
            };
            usage.add(&response.usage);
            let mut reply = response.message;
            reply.role = llm::Role::Assistant;
            messages.push(reply.clone());
            if reply.tool_calls.is_empty() {
                reason = if reply.text().contains("TERMINATE") { "TERMINATE" } else { "no tool call" }.into();
                break;
            }
            let mut changed = false;
            for call in &reply.tool_calls {
                events.push(Event::ActionProposed { epoch, candidate, call: call.clone() });
                let text = if used >= limit {
                    prompts::limit_reached(limit)
                } else {
                    match self.validate(&current, call).await? {
                        Ok(action) => {
                            let text = format!("Applied: {}.", action.describe());
                            events.push(Event::ActionApplied { epoch, candidate, action: action.clone() });
                            actions::apply(&mut current, action);
                            (used, applied, failed_attempts, changed) = (used + 1, applied + 1, 0, true);
                            text
                        }
                        Err(error) => {
                            failed_attempts += 1;
                            let tool = call.name.clone();
                            events.push(Event::ActionRejected {
                                epoch,
                                candidate,
                                tool: tool.clone(),
                                error: error.clone(),
                                attempt: failed_attempts,
                            });
                            if failed_attempts >= attempts_allowed {
                                events.push(Event::ActionSkipped {
                                    epoch,
                                    candidate,
                                    tool,
                                    error: error.clone(),
                                    attempts: failed_attempts,
                                });
                                (used, failed_attempts) = (used + 1, 0);
                                prompts::skipped(&error, attempts_allowed)
                            } else {
                                prompts::retry(&error, failed_attempts, attempts_allowed)
                            }
                        }
                    }
                };
                messages.push(Message::tool(call, text));
            }
            if reply.text().contains("TERMINATE") {
                reason = "TERMINATE".into();
                break;
            }
            if changed && used < limit {
                let text = format!(
                    "The function list after this step's actions so far:\n{}\n{}",
                    render::registry(&current),
                    prompts::ASK_AGAIN
                );
                messages.push(Message::user(text));
            }
        }
        events.push(Event::StepEnded { epoch, candidate, reason });
        Ok(StepOutcome { registry: current, applied, events, usage })
    }

    /// Parses and checks a call; functions are also checked in the sandbox (compiles, defines the
    /// callable, packages import).
    async fn validate(
        &self,
        current: &Registry,
        call: &ToolCall,
    ) -> Result<Result<Action, String>, exec::Error> {
        let action = match actions::parse(call).and_then(|a| actions::check(current, &a).map(|()| a)) {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(def) = action.function()
            && let Err(e) = self.runner.validate_function(def).await?
        {
            return Ok(Err(e));
        }
        Ok(Ok(action))
    }
}

/// The first user message: everything the optimizer needs to decide.
fn state(input: &StepInput<'_>, current: &Registry, optimizer: &Optimizer) -> String {
    let config = &optimizer.config;
    let mut out = optimizer.brief.section();
    out += &format!(
        "## Best function list so far (epoch {}, training success rate {:.3})\n{}\n",
        input.best_epoch,
        input.best_score,
        render::registry(input.best)
    );
    out.push_str(&format!(
        "## Function list after this step's actions so far\n{}\n",
        render::registry(current)
    ));
    if input.rejected.is_empty() {
        out.push_str("## Rejected function lists\n(none since the best one)\n\n");
    } else {
        out.push_str("## Rejected function lists (tried after the best one; they scored no better)\n");
        for r in input.rejected {
            out.push_str(&format!(
                "### Tried in epoch {} (success rate {:.3})\n{}\n",
                r.epoch,
                r.score,
                render::registry(&r.registry)
            ));
        }
    }
    out.push_str(&format!(
        "## Per-problem results of the best function list\n{}\n",
        render::table(input.conversations)
    ));
    out.push_str(&format!(
        "## Conversations with the best function list\n{}\n{}",
        render::conversations(input.conversations, &config.budget),
        prompts::ASK
    ));
    out
}

#[cfg(test)]
mod tests;
