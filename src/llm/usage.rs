//! Cost accounting: an entry's `price` turned into dollars per call (the `Priced` wrapper). The
//! spending limit is `trainer::meter` (`Meter`, `Metered`): one guard for train, eval and chat.

use std::sync::Arc;

use super::message::round_usd;
use super::{ChatModel, ChatRequest, ChatResponse, Error};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_is_per_thousand_tokens() {
        let price = Price { input_per_1k: 0.01, output_per_1k: 0.03 };
        assert!((price.usd(2000, 500) - 0.035).abs() < 1e-12);
        assert_eq!(Price::FREE.usd(10_000, 10_000), 0.0);
    }
}
