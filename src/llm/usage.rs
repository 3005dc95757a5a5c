//! Cost accounting: an entry's `price` turned into dollars per call (the `Priced` wrapper) and the
//! spending guard callers consult before starting more work (`Budget`).

use std::sync::{Arc, Mutex};

use super::message::round_usd;
use super::{ChatModel, ChatRequest, ChatResponse, Error, Usage};

/// Dollars per 1000 input and output tokens (the config entry's `price`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Price {
    pub input_per_1k: f64,
    pub output_per_1k: f64,
}

impl Price {
    pub const FREE: Price = Price { input_per_1k: 0.0, output_per_1k: 0.0 };

    /// What a call with these token counts costs, to the nanodollar (the unit usage is summed in).
    pub fn usd(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        round_usd(
            input_tokens as f64 / 1000.0 * self.input_per_1k
                + output_tokens as f64 / 1000.0 * self.output_per_1k,
        )
    }
}

/// Marks each real call as one call and prices its tokens. Backends only report token counts.
pub struct Priced {
    inner: Arc<dyn ChatModel>,
    price: Price,
}

impl Priced {
    pub fn new(inner: Arc<dyn ChatModel>, price: Price) -> Self {
        Priced { inner, price }
    }
}

#[async_trait::async_trait]
impl ChatModel for Priced {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        let mut response = self.inner.chat(request).await?;
        if !response.cached {
            let usage = &mut response.usage;
            usage.calls = 1;
            usage.usd = self.price.usd(usage.input_tokens, usage.output_tokens);
        }
        Ok(response)
    }
}

/// A run's spending limit, shared by every task of the run. Callers charge each response's usage and
/// check before starting work; `BudgetGuard` does both around a model.
#[derive(Debug, Default)]
pub struct Budget {
    limit: Option<f64>,
    spent: Mutex<Usage>,
}

impl Budget {
    /// `None` means unlimited. `already` is what earlier sessions of a resumed run spent.
    pub fn new(limit: Option<f64>, already: Usage) -> Self {
        Budget { limit, spent: Mutex::new(already) }
    }

    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    pub fn spent(&self) -> Usage {
        *self.spent.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn charge(&self, usage: &Usage) {
        self.spent.lock().unwrap_or_else(|e| e.into_inner()).add(usage);
    }

    /// `Err(Budget)` when spending `more` dollars would go past the limit. `check(0.0)` asks whether
    /// the limit is already reached.
    pub fn check(&self, more: f64) -> Result<(), Error> {
        let Some(limit) = self.limit else { return Ok(()) };
        let spent = self.spent().usd;
        // At the limit even a free-looking call is refused: its cost is only known afterwards.
        if spent >= limit || spent + more > limit { Err(Error::Budget { limit }) } else { Ok(()) }
    }
}

/// Refuses calls once the budget is used up and charges every call it lets through.
pub struct BudgetGuard {
    inner: Arc<dyn ChatModel>,
    budget: Arc<Budget>,
}

impl BudgetGuard {
    pub fn new(inner: Arc<dyn ChatModel>, budget: Arc<Budget>) -> Self {
        BudgetGuard { inner, budget }
    }
}

#[async_trait::async_trait]
impl ChatModel for BudgetGuard {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        self.budget.check(0.0)?;
        let response = self.inner.chat(request).await?;
        self.budget.charge(&response.usage);
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_is_per_thousand_tokens() {
        let price = Price { input_per_1k: 0.01, output_per_1k: 0.03 };
        assert!((price.usd(2000, 500) - 0.035).abs() < 1e-12);
        assert_eq!(Price::FREE.usd(10_000, 10_000), 0.0);
    }

    #[test]
    fn budget_refuses_at_the_limit() {
        let budget = Budget::new(Some(1.0), Usage::default());
        assert!(budget.check(0.0).is_ok());
        assert!(budget.check(0.5).is_ok());
        budget.charge(&Usage { calls: 1, input_tokens: 1, output_tokens: 1, usd: 0.75 });
        assert!(budget.check(0.1).is_ok());
        assert!(matches!(budget.check(0.3), Err(Error::Budget { .. })));
        budget.charge(&Usage { usd: 0.25, ..Usage::default() });
        assert!(budget.check(0.0).is_err());
        assert_eq!(budget.spent().calls, 1);
    }

    #[test]
    fn no_limit_never_refuses_and_zero_refuses_all() {
        let open = Budget::new(None, Usage { usd: 1e9, ..Usage::default() });
        assert!(open.check(1e9).is_ok());
        let zero = Budget::new(Some(0.0), Usage::default());
        assert!(zero.check(0.0).is_err());
    }
}
