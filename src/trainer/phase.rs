//! One set of conversations (a training epoch or an evaluation): concurrent under the adaptive limit
//! of `limiter` (`JoinSet` + semaphore), each completed record handed to a sink at once (so a kill
//! loses nothing completed), results kept in problem order whatever the completion order. Stops
//! launching on Ctrl-C or when the budget is exhausted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::limiter::Limiter;
use super::meter::{Cancel, Meter};
use crate::agent::{self, Agent, ConversationRecord};
use crate::dataset::Problem;
use crate::functions::Registry;
pub use crate::record::Score;

/// Why a phase ended before every problem was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interruption {
    Budget,
    Cancelled,
}

impl std::fmt::Display for Interruption {
    /// The word the run files use.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Interruption::Budget => "budget",
            Interruption::Cancelled => "cancelled",
        })
    }
}

#[derive(Debug)]
pub struct PhaseResult {
    /// One slot per problem, in problem order.
    pub slots: Vec<Option<ConversationRecord>>,
    pub interrupted: Option<Interruption>,
}

impl PhaseResult {
    /// All records, when every problem completed.
    pub fn complete(self) -> Option<Vec<ConversationRecord>> {
        self.slots.into_iter().collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error<E: std::error::Error + 'static> {
    #[error(transparent)]
    Agent(agent::Error),
    #[error("Failed to save a conversation record")]
    Sink(#[source] E),
}

enum Launch {
    Done(Box<ConversationRecord>),
    Skipped(Interruption),
    Failed(agent::Error),
}

/// What a phase needs besides its problems.
pub struct PhaseContext<'a> {
    pub agent: &'a Agent,
    pub concurrency: usize,
    pub meter: Arc<Meter>,
    pub cancel: &'a Cancel,
}

/// Runs the problems not already in `done` (records read back from disk), calling `sink` for each
/// new record as it completes.
pub async fn run<E: std::error::Error + 'static>(
    ctx: &PhaseContext<'_>,
    registry: &Registry,
    problems: &[Problem],
    done: Vec<ConversationRecord>,
    mut sink: impl FnMut(&ConversationRecord) -> Result<(), E>,
) -> Result<PhaseResult, Error<E>> {
    let mut slots: Vec<Option<ConversationRecord>> = vec![None; problems.len()];
    for r in done {
        // A record counts only if it is for the same problem at the same position.
        if problems.get(r.index).is_some_and(|p| p.id == r.id) {
            let index = r.index;
            slots[index] = Some(r);
        }
    }
    let registry = Arc::new(registry.clone());
    // Sessions prepared ahead of demand beyond these conversations would only be torn down.
    ctx.agent.runner.expect_sessions(slots.iter().filter(|s| s.is_none()).count());
    let limiter = Limiter::new(ctx.concurrency);
    // Set by a conversation that failed in a way every other would too (a refused key): no
    // conversation starts after it, however late the loop below gets to its result.
    let failed = Arc::new(AtomicBool::new(false));
    let mut set = JoinSet::new();
    for (index, problem) in problems.iter().enumerate().filter(|(i, _)| slots[*i].is_none()) {
        let (agent, registry, problem) = (ctx.agent.clone(), registry.clone(), problem.clone());
        let (limiter, meter, cancel) = (limiter.clone(), ctx.meter.clone(), ctx.cancel.clone());
        let failed = failed.clone();
        set.spawn(async move {
            let slot = limiter.acquire().await;
            if cancel.is_cancelled() || failed.load(Ordering::SeqCst) {
                return Launch::Skipped(Interruption::Cancelled);
            }
            if meter.exhausted() {
                return Launch::Skipped(Interruption::Budget);
            }
            match agent.solve(&registry, index, &problem).await {
                Ok(record) => {
                    slot.done();
                    Launch::Done(Box::new(record))
                }
                Err(agent::Error::Budget) => Launch::Skipped(Interruption::Budget),
                Err(e) => {
                    // Before the slot is released (when this task ends), so no waiting task starts.
                    failed.store(true, Ordering::SeqCst);
                    Launch::Failed(e)
                }
            }
        });
    }
    let mut interrupted = None;
    loop {
        let joined = tokio::select! {
            joined = set.join_next() => joined,
            () = ctx.cancel.cancelled(), if interrupted != Some(Interruption::Cancelled) => {
                // Ctrl-C: in-flight conversations are dropped; they run again on resume.
                interrupted = Some(Interruption::Cancelled);
                set.abort_all();
                continue;
            }
        };
        match joined {
            None => break,
            Some(Ok(Launch::Done(record))) => {
                sink(&record).map_err(Error::Sink)?;
                let index = record.index;
                slots[index] = Some(*record);
            }
            Some(Ok(Launch::Skipped(why))) => {
                interrupted.get_or_insert(why);
            }
            Some(Ok(Launch::Failed(e))) => {
                set.abort_all();
                return Err(Error::Agent(e));
            }
            Some(Err(e)) if e.is_cancelled() => {}
            Some(Err(e)) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    Ok(PhaseResult { slots, interrupted })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::AgentConfig;
    use crate::agent::testing::scripted;
    use crate::exec::runner::fake::FakeRunner;
    use crate::grading::Grader;
    use crate::llm::Message;

    #[tokio::test(flavor = "multi_thread", worker_threads = 6)]
    async fn records_keep_problem_order_whatever_the_completion_order() {
        // Problem i answers after (5 - i) * 40 ms, so they complete (about) in reverse order.
        let model = scripted(0.0, |request| {
            let text = request.messages[1].text().to_string();
            let i: u64 = text.rsplit(' ').next().unwrap().parse().unwrap();
            std::thread::sleep(std::time::Duration::from_millis((5 - i) * 40));
            Ok(Message::assistant(format!("\\boxed{{{i}}}")))
        });
        let agent = Agent {
            model: Arc::new(model),
            runner: Arc::new(FakeRunner),
            task: Arc::new(crate::task::Task::math(Grader::new(crate::exec::find_python()))),
            config: AgentConfig::default(),
        };
        let problems: Vec<Problem> = (0..5)
            .map(|i| Problem {
                id: format!("p{i}"),
                problem: format!("number {i}"),
                answer: i.to_string(),
                subject: None,
                level: None,
                ..Default::default()
            })
            .collect();
        let cancel = Cancel::default();
        let ctx = PhaseContext {
            agent: &agent,
            concurrency: 5,
            meter: Arc::new(Meter::default()),
            cancel: &cancel,
        };
        let mut completed = Vec::new();
        let result = run(&ctx, &Registry::default(), &problems, Vec::new(), |r: &ConversationRecord| {
            completed.push(r.index);
            Ok::<(), std::io::Error>(())
        })
        .await
        .unwrap();
        assert_eq!(completed.first(), Some(&4), "{completed:?}");
        let records = result.complete().unwrap();
        assert_eq!(records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["p0", "p1", "p2", "p3", "p4"]);
        assert!(records.iter().all(|r| r.is_correct()));
    }
}
