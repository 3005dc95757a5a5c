//! One set of conversations (a training epoch or an evaluation): concurrent with `JoinSet` +
//! `Semaphore`, each completed record handed to a sink at once (so a kill loses nothing completed),
//! results kept in problem order whatever the completion order. Stops launching on Ctrl-C or when the
//! budget is exhausted.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::meter::{Cancel, Meter};
use crate::agent::{self, Agent, ConversationRecord};
use crate::dataset::Problem;
use crate::functions::Registry;

/// Correct / total / errored and the success rate (errored excluded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub correct: usize,
    pub total: usize,
    pub errored: usize,
    pub rate: f64,
}

impl Score {
    pub fn of(records: &[ConversationRecord]) -> Score {
        let correct = records.iter().filter(|r| r.correct && r.errored.is_none()).count();
        let errored = records.iter().filter(|r| r.errored.is_some()).count();
        let total = records.len();
        Score { correct, total, errored, rate: super::rule::rate(correct, total, errored) }
    }
}

/// Why a phase ended before every problem was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interruption {
    Budget,
    Cancelled,
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

/// Adapts the number of conversations in flight to throttling (SPEC §10): halves it when the
/// provider answered 429 since the last completion, and grows it back by one after a full round of
/// completions without one, up to the configured limit.
struct Limiter {
    max: usize,
    /// Permits the semaphore should hold in total.
    target: usize,
    /// Permits it does hold (forgetting only takes free permits, so it may lag behind).
    actual: usize,
    seen_429: u64,
    calm: usize,
}

impl Limiter {
    fn new(max: usize) -> Limiter {
        Limiter { max, target: max, actual: max, seen_429: crate::llm::retry::rate_limited_count(), calm: 0 }
    }

    fn adapt(&mut self, semaphore: &Semaphore, count_429: u64) {
        self.target = next_limit(self.target, self.max, count_429 > self.seen_429, &mut self.calm);
        self.seen_429 = count_429;
        if self.actual > self.target {
            self.actual -= semaphore.forget_permits(self.actual - self.target);
        } else if self.actual < self.target {
            semaphore.add_permits(self.target - self.actual);
            self.actual = self.target;
        }
    }
}

/// Multiplicative decrease on throttling, additive increase after `current` calm completions.
fn next_limit(current: usize, max: usize, throttled: bool, calm: &mut usize) -> usize {
    if throttled {
        *calm = 0;
        return (current / 2).max(1);
    }
    *calm += 1;
    if *calm >= current && current < max {
        *calm = 0;
        return current + 1;
    }
    current
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
    let semaphore = Arc::new(Semaphore::new(ctx.concurrency.max(1)));
    let mut set = JoinSet::new();
    for (index, problem) in problems.iter().enumerate().filter(|(i, _)| slots[*i].is_none()) {
        let (agent, registry, problem) = (ctx.agent.clone(), registry.clone(), problem.clone());
        let (semaphore, meter, cancel) = (semaphore.clone(), ctx.meter.clone(), ctx.cancel.clone());
        set.spawn(async move {
            let _permit = semaphore.acquire_owned().await.expect("the semaphore is never closed");
            if cancel.is_cancelled() {
                return Launch::Skipped(Interruption::Cancelled);
            }
            if meter.exhausted() {
                return Launch::Skipped(Interruption::Budget);
            }
            match agent.solve(&registry, index, &problem).await {
                Ok(record) => Launch::Done(Box::new(record)),
                Err(agent::Error::Budget) => Launch::Skipped(Interruption::Budget),
                Err(e) => Launch::Failed(e),
            }
        });
    }
    let mut interrupted = None;
    let mut limiter = Limiter::new(ctx.concurrency.max(1));
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
                limiter.adapt(&semaphore, crate::llm::retry::rate_limited_count());
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
    use crate::agent::runner::fake::FakeRunner;
    use crate::agent::testing::scripted;
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
            grader: Grader::new(crate::exec::find_python()),
            config: AgentConfig::default(),
        };
        let problems: Vec<Problem> = (0..5)
            .map(|i| Problem {
                id: format!("p{i}"),
                problem: format!("number {i}"),
                answer: i.to_string(),
                subject: None,
                level: None,
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
        assert!(records.iter().all(|r| r.correct));
    }

    #[test]
    fn concurrency_halves_on_429_and_recovers() {
        let mut calm = 0;
        assert_eq!(next_limit(8, 8, true, &mut calm), 4);
        assert_eq!(next_limit(1, 8, true, &mut calm), 1);
        let mut limit = 2;
        for _ in 0..2 {
            limit = next_limit(limit, 8, false, &mut calm);
        }
        assert_eq!(limit, 3);
        let mut calm = 0;
        assert_eq!(next_limit(8, 8, false, &mut calm), 8);
    }

    #[test]
    fn limiter_forgets_only_free_permits() {
        let semaphore = Semaphore::new(4);
        let held = semaphore.try_acquire_many(3).unwrap();
        let mut l = Limiter { max: 4, target: 4, actual: 4, seen_429: 0, calm: 0 };
        l.adapt(&semaphore, 1);
        assert_eq!((l.target, l.actual, semaphore.available_permits()), (2, 3, 0));
        drop(held);
        l.adapt(&semaphore, 1);
        assert_eq!((l.target, l.actual, semaphore.available_permits()), (2, 2, 2));
    }
}
