//! What a duel's rounds add up to: agreements (rate with its Wilson interval), prices (mean and median
//! with 95% intervals), turns to agreement and usage per side; errored rounds are counted apart and
//! never as "no deal".

use serde::{Deserialize, Serialize};

use super::round::{Outcome, PerSide, RoundRecord};
use crate::llm::Usage;
use crate::stats;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub rounds: usize,
    pub agreed: usize,
    pub errored: usize,
    pub mean_price: Option<f64>,
    pub median_price: Option<f64>,
    /// Agreed prices in round order.
    pub prices: Vec<f64>,
    pub no_deal: usize,
    /// Agreements among the rounds that did not error.
    pub agreement_rate: Option<f64>,
    pub agreement_ci95: Option<[f64; 2]>,
    pub mean_price_ci95: Option<[f64; 2]>,
    pub median_price_ci95: Option<[f64; 2]>,
    /// Replies (both sides) until the deal, over agreed rounds.
    pub mean_turns: Option<f64>,
    pub median_turns: Option<f64>,
    pub usage: PerSide<Usage>,
}

impl Summary {
    pub fn of(records: &[RoundRecord]) -> Summary {
        let mut sorted: Vec<&RoundRecord> = records.iter().collect();
        sorted.sort_by_key(|r| r.round);
        let prices: Vec<f64> = sorted.iter().filter_map(|r| r.price()).collect();
        let turns: Vec<f64> = sorted
            .iter()
            .filter_map(|r| match r.outcome {
                Outcome::Agreed { turns, .. } => Some(turns as f64),
                _ => None,
            })
            .collect();
        let errored = sorted.iter().filter(|r| matches!(r.outcome, Outcome::Errored { .. })).count();
        let decided = records.len() - errored;
        let mut usage = PerSide::<Usage>::default();
        for r in records {
            usage.vendor.add(&r.usage.vendor);
            usage.buyer.add(&r.usage.buyer);
        }
        let interval = |ci: Option<(f64, f64)>| ci.map(|(lo, hi)| [lo, hi]);
        let mean = stats::mean_ci95(&prices);
        let median = stats::median_ci95(&prices);
        Summary {
            rounds: records.len(),
            agreed: prices.len(),
            errored,
            mean_price: mean.map(|m| m.0),
            median_price: median.map(|m| m.0),
            no_deal: decided - prices.len(),
            agreement_rate: (decided > 0).then(|| prices.len() as f64 / decided as f64),
            agreement_ci95: interval(stats::wilson_95(prices.len() as f64, decided)),
            mean_price_ci95: mean.and_then(|m| interval(m.1)),
            median_price_ci95: median.and_then(|m| interval(m.1)),
            mean_turns: stats::mean_ci95(&turns).map(|m| m.0),
            median_turns: stats::median_ci95(&turns).map(|m| m.0),
            prices,
            usage,
        }
    }

    pub fn total_usage(&self) -> Usage {
        self.usage.total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duel::scenario::Side;

    fn record(round: usize, outcome: Outcome) -> RoundRecord {
        RoundRecord {
            round,
            seed: round as u64,
            scenario: "s".into(),
            models: PerSide::default(),
            outcome,
            turns: vec![],
            histories: PerSide::default(),
            usage: PerSide {
                vendor: Usage { calls: 2, ..Usage::default() },
                buyer: Usage { calls: 1, usd: 0.5, ..Usage::default() },
            },
            standing: PerSide::default(),
        }
    }

    #[test]
    fn errored_rounds_are_apart_from_no_deals() {
        let agreed =
            |round, price, turns| record(round, Outcome::Agreed { price, accepted_by: Side::Buyer, turns });
        let records = vec![
            agreed(3, 300.0, 4),
            agreed(1, 100.0, 2),
            record(2, Outcome::NoDeal { turns: 8 }),
            record(4, Outcome::Errored { side: Side::Vendor, reason: "x".into(), rejected: vec![] }),
        ];
        let s = Summary::of(&records);
        assert_eq!((s.rounds, s.agreed, s.no_deal, s.errored), (4, 2, 1, 1));
        assert_eq!(s.prices, [100.0, 300.0]);
        assert_eq!((s.mean_price, s.median_price, s.mean_turns), (Some(200.0), Some(200.0), Some(3.0)));
        assert!((s.agreement_rate.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!(s.mean_price_ci95.is_some() && s.median_price_ci95.is_none());
        assert_eq!((s.usage.vendor.calls, s.total_usage().calls, s.total_usage().usd), (8, 12, 2.0));
        let none = Summary::of(&[]);
        assert_eq!((none.agreement_rate, none.mean_price), (None, None));
    }
}
