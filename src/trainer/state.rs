//! Where a run stands, rebuilt from its events (`Progress::replay`): what `resume` continues from.
//! The files themselves are typed in `record`.

use super::rule::{RuleState, Stop};
use crate::llm::Usage;
use crate::record::summary::Decided;
use crate::record::{EpochEntry, Event, Score};
use crate::run_dir::Phase;

/// Where a run stands, rebuilt from its events.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub eval_before: Option<Score>,
    pub eval_after: Option<Score>,
    pub history: Vec<EpochEntry>,
    pub rule: RuleState,
    /// Epochs whose trial registry an optimizer step has written.
    pub steps_done: Vec<usize>,
    pub stopped: Option<Stop>,
    pub step_usage: Usage,
}

impl Progress {
    /// Replays events in order (an event logged again by a resumed run counts once).
    pub fn replay(events: &[Event]) -> Progress {
        let mut p = Progress::default();
        for event in events {
            match event.clone() {
                Event::EvalDone { phase: Phase::Before, score } => p.eval_before = Some(score),
                Event::EvalDone { phase: Phase::After, score } => p.eval_after = Some(score),
                Event::Decision { epoch, score, versus_best, decision, state, functions, p_value, val }
                    if epoch == p.history.len() =>
                {
                    p.rule = state;
                    let decided = Decided { versus_best, decision, p_value, val };
                    p.history.push(EpochEntry::new(epoch, &score, decided, functions));
                }
                Event::StepDone { epoch, usage, .. } if !p.steps_done.contains(&epoch) => {
                    p.steps_done.push(epoch);
                    p.step_usage.add(&usage);
                }
                Event::TrainingStopped { reason, .. } => p.stopped = Some(reason),
                _ => {}
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::actions::Action;
    use crate::trainer::rule::Decision;

    fn decision(epoch: usize, rate: f64, decision: Decision, best: usize) -> Event {
        let score = Score { correct: 1, total: 2, errored: 0, rate, ci95: None };
        let state = RuleState { best_epoch: Some(best), best_score: 0.5, stale: 0 };
        Event::Decision {
            epoch,
            score,
            versus_best: None,
            decision,
            state,
            functions: vec![],
            p_value: None,
            val: None,
        }
    }

    #[test]
    fn replay_rebuilds_progress_and_counts_repeats_once() {
        let usage = Usage { calls: 2, input_tokens: 1, output_tokens: 1, usd: 0.5 };
        let step = |epoch| Event::StepDone { epoch, applied: 1, functions: vec![], usage };
        let events = vec![
            Event::RunStarted { resumed: false },
            Event::EvalDone {
                phase: Phase::Before,
                score: Score { correct: 1, total: 1, errored: 0, rate: 1.0, ci95: None },
            },
            decision(0, 0.5, Decision::Accept, 0),
            Event::ActionApplied { epoch: 1, candidate: None, action: Action::Remove { name: "f".into() } },
            step(1),
            step(1), // a step re-run after a kill is counted once
            decision(1, 0.5, Decision::Rollback, 0),
            decision(1, 0.5, Decision::Rollback, 0), // logged again by a resumed run
        ];
        let p = Progress::replay(&events);
        assert_eq!(p.history.len(), 2);
        assert_eq!(p.history[1].decision, Decision::Rollback);
        assert_eq!(p.steps_done, vec![1]);
        assert_eq!(p.step_usage.calls, 2);
        assert_eq!(p.eval_before.unwrap().rate, 1.0);
        assert!(p.eval_after.is_none() && p.stopped.is_none());
    }
}
