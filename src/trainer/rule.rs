//! The epoch rule of SPEC §7 as pure functions: accept only a strict improvement, roll back ties and
//! drops, count stale epochs, stop on patience or after the last epoch.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Accept,
    Rollback,
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

/// Scores one epoch: a strict improvement is accepted and becomes the best; anything else (a tie
/// included — a change must earn its place) is rolled back and counts as stale.
pub fn decide(state: RuleState, epoch: usize, score: f64) -> (Decision, RuleState) {
    if score > state.best_score {
        (Decision::Accept, RuleState { best_epoch: Some(epoch), best_score: score, stale: 0 })
    } else {
        (Decision::Rollback, RuleState { stale: state.stale + 1, ..state })
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

/// Success rate with errored problems excluded; 0 when nothing was scored.
pub fn rate(correct: usize, total: usize, errored: usize) -> f64 {
    let scored = total.saturating_sub(errored);
    if scored == 0 { 0.0 } else { correct as f64 / scored as f64 }
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

    /// Runs the rule over a score sequence: (decisions, best epoch, epochs run).
    fn simulate(scores: &[f64], epochs: usize, patience: usize) -> (Vec<Decision>, Option<usize>, usize) {
        let mut state = RuleState::default();
        let mut decisions = Vec::new();
        for (epoch, &score) in scores.iter().enumerate().take(epochs) {
            let (d, s) = decide(state, epoch, score);
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
        assert_eq!(decide(RuleState::default(), 0, 0.0).0, A);
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
        assert_eq!(rate(3, 6, 2), 0.75);
        assert_eq!(rate(0, 2, 2), 0.0);
    }

    #[test]
    fn state_round_trips_with_infinite_score() {
        let text = serde_json::to_string(&RuleState::default()).unwrap();
        assert_eq!(text, r#"{"best_epoch":null,"best_score":null,"stale":0}"#);
        let back: RuleState = serde_json::from_str(&text).unwrap();
        assert_eq!(back.best_score, f64::NEG_INFINITY);
    }
}
