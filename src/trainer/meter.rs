//! Run-wide spending and cancellation: a `ChatModel` wrapper that sums usage and refuses a call that
//! could push spending past `--max-usd`, and the Ctrl-C flag that stops launching work.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::llm::{ChatModel, ChatRequest, ChatResponse, Error, Usage};

/// Usage so far and the budget.
#[derive(Debug, Default)]
pub struct Meter {
    limit: Option<f64>,
    inner: Mutex<MeterState>,
}

#[derive(Debug, Default)]
struct MeterState {
    usage: Usage,
    /// The dearest single call seen: the estimate of what the next call may cost.
    max_call_usd: f64,
}

impl Meter {
    /// A meter starting from what earlier sessions of the run already spent.
    pub fn new(limit: Option<f64>, spent: Usage) -> Meter {
        Meter { limit, inner: Mutex::new(MeterState { usage: spent, max_call_usd: 0.0 }) }
    }

    pub fn usage(&self) -> Usage {
        self.inner.lock().expect("meter lock").usage
    }

    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    /// Whether one more call (as dear as the dearest so far) could exceed the budget.
    pub fn exhausted(&self) -> bool {
        let state = self.inner.lock().expect("meter lock");
        self.limit.is_some_and(|limit| state.usage.usd + state.max_call_usd > limit)
    }

    fn record(&self, usage: &Usage) {
        let mut state = self.inner.lock().expect("meter lock");
        state.usage.add(usage);
        state.max_call_usd = state.max_call_usd.max(usage.usd);
    }
}

/// A model whose calls are counted by a meter and refused once the budget is exhausted.
pub struct Metered {
    pub inner: Arc<dyn ChatModel>,
    pub meter: Arc<Meter>,
}

#[async_trait::async_trait]
impl ChatModel for Metered {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        if self.meter.exhausted() {
            return Err(Error::Budget { limit: self.meter.limit.unwrap_or(0.0) });
        }
        let response = self.inner.chat(request).await?;
        self.meter.record(&response.usage);
        Ok(response)
    }
}

/// Set by Ctrl-C: stop launching work.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Cancel {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Cancels on Ctrl-C (the first one; a second one kills the process as usual).
    pub fn on_ctrl_c(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "interrupted: saving state; conversations in flight run again on resume (Ctrl-C again to kill)"
                );
                me.cancel();
                let _ = tokio::signal::ctrl_c().await;
                std::process::exit(130);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::testing::scripted;
    use crate::llm::Message;

    #[tokio::test]
    async fn refuses_calls_that_could_exceed_the_budget() {
        let model = scripted(0.4, |_| Ok(Message::assistant("x")));
        let meter = Arc::new(Meter::new(Some(1.0), Usage::default()));
        let metered = Metered { inner: Arc::new(model), meter: meter.clone() };
        let req = ChatRequest::default();
        assert!(metered.chat(&req).await.is_ok()); // 0.4
        assert!(metered.chat(&req).await.is_ok()); // 0.8
        assert!(matches!(metered.chat(&req).await, Err(Error::Budget { .. }))); // 0.8 + 0.4 > 1.0
        assert_eq!(meter.usage().calls, 2);
    }

    #[tokio::test]
    async fn cancel_wakes_waiters() {
        let c = Cancel::default();
        let c2 = c.clone();
        let waiter = tokio::spawn(async move { c2.cancelled().await });
        c.cancel();
        waiter.await.unwrap();
        assert!(c.is_cancelled());
    }
}
