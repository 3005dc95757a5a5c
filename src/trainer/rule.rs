//! The epoch rule of SPEC §7 as pure functions: accept only a strict improvement, roll back ties and
//! drops, count stale epochs, stop on patience or after the last epoch. A trial is compared with the
//! best registry on the problems both of them scored (`Paired`), so an errored problem on either side
//! can neither win nor lose an epoch.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Accept,
    Rollback,
}

impl std::fmt::Display for Decision {
    /// The word the run files use.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decision::Accept => "accept",
            Decision::Rollback => "rollback",
        })
    }
}

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// `patience` consecutive epochs without improvement.
    Patience,
    /// The last epoch ran.
    LastEpoch,
}

impl std::fmt::Display for Stop {
    /// The word the run files use.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stop::Patience => "patience",
            Stop::LastEpoch => "last_epoch",
        })
    }
}

/// What the rule remembers between epochs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    pub best_epoch: Option<usize>,
    /// `-inf` before the first epoch (serialized as null).
    #[serde(with = "score_or_null")]
    pub best_score: f64,
    pub stale: usize,
}

impl Default for RuleState {
    fn default() -> Self {
        RuleState { best_epoch: None, best_score: f64::NEG_INFINITY, stale: 0 }
    }
}

/// A trial and the best registry on the problems both scored (neither errored).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    /// Problems scored on both sides.
    pub problems: usize,
    /// Of those, the trial registry's summed score (its correct count under a 0/1 metric).
    #[serde(serialize_with = "whole_as_integer")]
    pub trial_correct: f64,
    /// Of those, the best registry's summed score.
    #[serde(serialize_with = "whole_as_integer")]
    pub best_correct: f64,
    /// Of those, the problems the trial scored higher on, and lower on (the sign test's counts; ties
    /// are neither). Absent in files from before the test: 0.
    #[serde(default)]
    pub wins: usize,
    #[serde(default)]
    pub losses: usize,
}

/// `--accept`: what a trial must show to be accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Accept {
    /// SPEC §7: any strict improvement on the problems both scored.
    #[default]
    Strict,
    /// A strict improvement whose exact one-sided sign test on the paired outcomes is significant at
    /// `alpha`.
    Significant { alpha: f64 },
}

impl Accept {
    /// `strict`, `significant` or `significant:ALPHA` (default 0.05).
    pub fn parse(text: &str) -> Result<Accept, String> {
        match text.split_once(':') {
            None if text == "strict" => Ok(Accept::Strict),
            None if text == "significant" => Ok(Accept::Significant { alpha: 0.05 }),
            Some(("significant", a)) => match a.trim().parse::<f64>() {
                Ok(alpha) if alpha > 0.0 && alpha < 1.0 => Ok(Accept::Significant { alpha }),
                _ => Err(format!(
                    "--accept `{text}`: ALPHA must be a number between 0 and 1 (e.g. significant:0.1)"
                )),
            },
            _ => Err(format!("--accept `{text}`: use strict, significant or significant:ALPHA")),
        }
    }
}

impl Paired {
    /// Pairs per-problem outcomes by problem id: `Some(score)` when scored, `None` when errored.
    pub fn of<'a>(
        trial: impl IntoIterator<Item = (&'a str, Option<f64>)>,
        best: impl IntoIterator<Item = (&'a str, Option<f64>)>,
    ) -> Paired {
        let best: std::collections::HashMap<&str, Option<f64>> = best.into_iter().collect();
        let mut paired = Paired { problems: 0, trial_correct: 0.0, best_correct: 0.0, wins: 0, losses: 0 };
        for (id, outcome) in trial {
            if let (Some(t), Some(Some(b))) = (outcome, best.get(id)) {
                paired.problems += 1;
                paired.trial_correct += t;
                paired.best_correct += *b;
                paired.wins += usize::from(t > *b + 1e-9);
                paired.losses += usize::from(*b > t + 1e-9);
            }
        }
        paired
    }

    /// The exact one-sided sign test of the trial beating the best on these problems.
    pub fn p_value(&self) -> f64 {
        crate::stats::sign_test_one_sided(self.wins, self.losses)
    }

    fn improves(&self) -> bool {
        // Sums of fractional scores carry rounding error: an "improvement" inside it is a tie.
        self.trial_correct > self.best_correct + 1e-9
    }
}

/// Decides one epoch. The first epoch becomes the best (it is the starting point); later ones are
/// accepted only when they strictly beat the best on the problems both scored (`versus_best`) — and,
/// under `Accept::Significant`, only when the sign test's p-value is at most alpha — and anything
/// else (a tie, nothing scored in common, a chance-sized gain: a change must earn its place) is
/// rolled back and counts as stale. `score` is the epoch's own rate, kept as the best score when
/// accepted. The p-value is returned under `Significant` whenever there was a comparison.
pub fn decide(
    state: RuleState,
    epoch: usize,
    score: f64,
    versus_best: Option<Paired>,
    rule: Accept,
) -> (Decision, RuleState, Option<f64>) {
    let p_value = match (rule, versus_best) {
        (Accept::Significant { .. }, Some(paired)) if state.best_epoch.is_some() => Some(paired.p_value()),
        _ => None,
    };
    let accept = match (state.best_epoch, versus_best, rule) {
        (None, _, _) => true,
        (Some(_), Some(paired), Accept::Strict) => paired.improves(),
        (Some(_), Some(paired), Accept::Significant { alpha }) => {
            paired.improves() && p_value.is_some_and(|p| p <= alpha)
        }
        (Some(_), None, _) => false,
    };
    if accept {
        (Decision::Accept, RuleState { best_epoch: Some(epoch), best_score: score, stale: 0 }, p_value)
    } else {
        (Decision::Rollback, RuleState { stale: state.stale + 1, ..state }, p_value)
    }
}

/// Whether training stops after `epoch` (0-based) of `epochs`; the optimizer is never called after
/// the last epoch.
pub fn stop_after(state: &RuleState, epoch: usize, epochs: usize, patience: usize) -> Option<Stop> {
    if state.stale >= patience {
        Some(Stop::Patience)
    } else if epoch + 1 >= epochs {
        Some(Stop::LastEpoch)
    } else {
        None
    }
}

/// Success rate (the mean score) with errored problems excluded; 0 when nothing was scored.
pub fn rate(score_sum: f64, total: usize, errored: usize) -> f64 {
    let scored = total.saturating_sub(errored);
    if scored == 0 { 0.0 } else { score_sum / scored as f64 }
}

/// Summed scores are whole numbers under 0/1 metrics: written as `3`, not `3.0`, as before metrics.
fn whole_as_integer<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 { s.serialize_i64(*v as i64) } else { s.serialize_f64(*v) }
}

mod score_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_none() }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NEG_INFINITY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the rule over a score sequence (every problem scored, so the pairing compares rates):
    /// (decisions, best epoch, epochs run).
    fn simulate(scores: &[f64], epochs: usize, patience: usize) -> (Vec<Decision>, Option<usize>, usize) {
        let mut state = RuleState::default();
        let mut decisions = Vec::new();
        for (epoch, &score) in scores.iter().enumerate().take(epochs) {
            let of = |rate: f64| (rate * 100.0).round();
            let paired = Paired {
                problems: 100,
                trial_correct: of(score),
                best_correct: of(state.best_score),
                wins: 0,
                losses: 0,
            };
            let (d, s, _) = decide(state, epoch, score, Some(paired), Accept::Strict);
            state = s;
            decisions.push(d);
            if stop_after(&state, epoch, epochs, patience).is_some() {
                break;
            }
        }
        let n = decisions.len();
        (decisions, state.best_epoch, n)
    }

    use Decision::{Accept as A, Rollback as R};

    #[test]
    fn first_epoch_is_always_accepted_even_at_zero() {
        assert_eq!(decide(RuleState::default(), 0, 0.0, None, Accept::Strict).0, A);
    }

    #[test]
    fn errored_problems_neither_win_nor_lose_an_epoch() {
        // Best: a right, b wrong, c right. The trial errors on c: on a and b it is no better.
        let best = [("a", Some(1.0)), ("b", Some(0.0)), ("c", Some(1.0))];
        let trial = [("a", Some(1.0)), ("b", Some(0.0)), ("c", None)];
        let paired = Paired::of(trial, best);
        assert_eq!(paired, Paired { problems: 2, trial_correct: 1.0, best_correct: 1.0, wins: 0, losses: 0 });
        assert_eq!(
            serde_json::to_string(&paired).unwrap(),
            r#"{"problems":2,"trial_correct":1,"best_correct":1,"wins":0,"losses":0}"#
        );
        let state = RuleState { best_epoch: Some(0), best_score: 2.0 / 3.0, stale: 0 };
        // Its own rate (1/2 = 0.5) would lose to 0.667 and, with c errored the other way, could win.
        assert_eq!(decide(state, 1, 0.5, Some(paired), Accept::Strict).0, R);
        let fixed = Paired::of([("a", Some(1.0)), ("b", Some(1.0)), ("c", None)], best);
        assert_eq!(
            decide(state, 1, 1.0, Some(fixed), Accept::Strict),
            (A, RuleState { best_epoch: Some(1), best_score: 1.0, stale: 0 }, None)
        );
        // A best that errored where the trial scored leaves those problems out too.
        let nothing_shared = Paired::of([("c", Some(1.0))], [("c", None)]);
        assert_eq!(nothing_shared.problems, 0);
        assert_eq!(decide(state, 1, 1.0, Some(nothing_shared), Accept::Strict).0, R);
    }

    #[test]
    fn significance_needs_enough_discordant_wins() {
        let state = RuleState { best_epoch: Some(0), best_score: 0.0, stale: 0 };
        let outcomes = |wins: usize, losses: usize| {
            let ids: Vec<String> = (0..wins + losses + 3).map(|i| format!("p{i}")).collect();
            let trial: Vec<(String, Option<f64>)> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), Some(f64::from(u8::from(i < wins)))))
                .collect();
            let best: Vec<(String, Option<f64>)> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), Some(f64::from(u8::from(i >= wins && i < wins + losses)))))
                .collect();
            Paired::of(
                trial.iter().map(|(i, o)| (i.as_str(), *o)),
                best.iter().map(|(i, o)| (i.as_str(), *o)),
            )
        };
        let rule = Accept::Significant { alpha: 0.05 };
        // One more solved is a strict improvement but p = 0.5: rolled back under the test.
        let one = outcomes(1, 0);
        assert_eq!((one.wins, one.losses), (1, 0));
        assert_eq!(decide(state, 1, 0.1, Some(one), Accept::Strict).0, A);
        let (d, _, p) = decide(state, 1, 0.1, Some(one), rule);
        assert_eq!((d, p), (R, Some(0.5)));
        // Five wins and no loss: p = 1/32 < 0.05.
        let (d, _, p) = decide(state, 1, 0.5, Some(outcomes(5, 0)), rule);
        assert_eq!(d, A);
        assert!((p.unwrap() - 1.0 / 32.0).abs() < 1e-12);
        // 5 wins, 1 loss: p = 7/64 ≈ 0.109: not at 0.05, yes at 0.2.
        assert_eq!(decide(state, 1, 0.5, Some(outcomes(5, 1)), rule).0, R);
        assert_eq!(decide(state, 1, 0.5, Some(outcomes(5, 1)), Accept::Significant { alpha: 0.2 }).0, A);
        assert_eq!(Accept::parse("significant"), Ok(rule));
        assert_eq!(Accept::parse("significant:0.1"), Ok(Accept::Significant { alpha: 0.1 }));
        assert_eq!(Accept::parse("strict"), Ok(Accept::Strict));
        assert!(Accept::parse("significant:2").is_err() && Accept::parse("loose").is_err());
    }

    #[test]
    fn strict_improvement_accepts_ties_and_drops_roll_back() {
        let (d, best, n) = simulate(&[0.5, 0.75, 0.75, 0.5, 1.0], 5, 3);
        assert_eq!(d, vec![A, A, R, R, A]);
        assert_eq!(best, Some(4));
        assert_eq!(n, 5);
    }

    #[test]
    fn patience_stops_early_and_accept_resets_stale() {
        let (d, best, n) = simulate(&[0.5, 0.5, 0.6, 0.6, 0.6, 0.9], 10, 2);
        assert_eq!(d, vec![A, R, A, R, R]);
        assert_eq!(best, Some(2));
        assert_eq!(n, 5);
    }

    #[test]
    fn last_epoch_stops_without_another_step() {
        let state = RuleState { best_epoch: Some(0), best_score: 0.5, stale: 0 };
        assert_eq!(stop_after(&state, 2, 3, 3), Some(Stop::LastEpoch));
        assert_eq!(stop_after(&state, 1, 3, 3), None);
        assert_eq!(stop_after(&RuleState { stale: 3, ..state }, 1, 3, 3), Some(Stop::Patience));
    }

    #[test]
    fn rate_excludes_errored() {
        assert_eq!(rate(3.0, 6, 2), 0.75);
        assert_eq!(rate(0.0, 2, 2), 0.0);
        assert_eq!(rate(1.5, 3, 0), 0.5);
    }

    #[test]
    fn state_round_trips_with_infinite_score() {
        let text = serde_json::to_string(&RuleState::default()).unwrap();
        assert_eq!(text, r#"{"best_epoch":null,"best_score":null,"stale":0}"#);
        let back: RuleState = serde_json::from_str(&text).unwrap();
        assert_eq!(back.best_score, f64::NEG_INFINITY);
    }
}
