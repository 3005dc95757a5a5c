//! Correct / total / errored and the success rate of a set of conversation records — the one type
//! for it: the trainer's decisions, `eval`, summary.json, events, and every table of `runs`.

use serde::{Deserialize, Serialize};

use super::ConversationRecord;

/// Correct (scored 1) / total / errored, the success rate (the mean score, errored excluded: SPEC §3)
/// and its 95% Wilson interval (absent when nothing was scored, and in files from before intervals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub correct: usize,
    /// Every problem, errored ones included.
    pub total: usize,
    pub errored: usize,
    /// 0 when nothing was scored (see `rated`).
    pub rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<[f64; 2]>,
}

impl Score {
    pub fn of<'a>(records: impl IntoIterator<Item = &'a ConversationRecord>) -> Score {
        let (mut correct, mut total, mut errored, mut sum) = (0, 0, 0, 0.0);
        for r in records {
            total += 1;
            match r.score() {
                Some(score) => {
                    sum += score;
                    correct += usize::from(r.is_correct());
                }
                None => errored += 1,
            }
        }
        let ci95 = crate::stats::wilson_95(sum, total - errored).map(|(lo, hi)| [lo, hi]);
        Score { correct, total, errored, rate: crate::trainer::rule::rate(sum, total, errored), ci95 }
    }

    /// Problems scored (not errored).
    pub fn scored(&self) -> usize {
        self.total.saturating_sub(self.errored)
    }

    /// The rate, when anything was scored.
    pub fn rated(&self) -> Option<f64> {
        (self.scored() > 0).then_some(self.rate)
    }

    /// The interval as recorded or, for files from before intervals, as it would have been.
    pub fn interval(&self) -> Option<[f64; 2]> {
        self.ci95.or_else(|| {
            let scored = self.scored();
            crate::stats::wilson_95(self.rate * scored as f64, scored).map(|(lo, hi)| [lo, hi])
        })
    }

    /// `, 95% CI 0.118–0.769`, or nothing when there is no interval.
    pub fn ci_text(&self) -> String {
        crate::stats::ci95_text(self.interval(), 3)
    }

    /// `correct/scored`, and the errored count when there is one.
    pub fn scored_text(&self) -> String {
        let errored = if self.errored > 0 { format!(", {} errored", self.errored) } else { String::new() };
        format!("{}/{}{errored}", self.correct, self.scored())
    }
}
