//! Run-wide spending and cancellation: a `ChatModel` wrapper that sums usage and refuses a call that
//! could push spending past `--max-usd`, and the Ctrl-C flag that stops launching work.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use super::ledger::{Entry, Ledger};
use crate::llm::{ChatModel, ChatRequest, ChatResponse, Error, Usage};

/// Usage so far and the budget. Calls in flight are counted against the budget at the price of the
/// dearest call seen, so concurrent conversations cannot overshoot it together.
#[derive(Debug, Default)]
pub struct Meter {
    limit: Option<f64>,
    inner: Mutex<MeterState>,
    /// Wakes calls waiting for an in-flight call to settle.
    settled: Notify,
    /// Where a run keeps every call (`None` for `eval`, whose spending ends with the process).
    ledger: Option<Ledger>,
}

#[derive(Debug, Default)]
struct MeterState {
    usage: Usage,
    /// The dearest single call seen: the estimate of what the next call may cost.
    max_call_usd: f64,
    in_flight: usize,
    /// Whether any call completed, i.e. whether `max_call_usd` means anything yet.
    calibrated: bool,
}

enum Reserve {
    Go,
    Wait,
    Over,
}

impl Meter {
    /// A meter starting from what earlier sessions of the run already spent.
    pub fn new(limit: Option<f64>, spent: Usage) -> Meter {
        Meter {
            limit,
            inner: Mutex::new(MeterState { usage: spent, ..MeterState::default() }),
            settled: Notify::new(),
            ledger: None,
        }
    }

    /// Also records every call in `ledger`.
    pub fn with_ledger(mut self, ledger: Ledger) -> Meter {
        self.ledger = Some(ledger);
        self
    }

    fn record(&self, entry: &Entry) {
        if let Some(ledger) = &self.ledger {
            ledger.record(entry);
        }
    }

    pub fn usage(&self) -> Usage {
        self.inner.lock().expect("meter lock").usage
    }

    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    /// Whether one more call (as dear as the dearest so far) would exceed the budget even with no
    /// other call in flight: then no new work should start.
    pub fn exhausted(&self) -> bool {
        let state = self.inner.lock().expect("meter lock");
        self.limit.is_some_and(|limit| state.usage.usd + state.max_call_usd > limit)
    }

    fn try_reserve(&self) -> Reserve {
        let mut state = self.inner.lock().expect("meter lock");
        if let Some(limit) = self.limit {
            // Until a call has completed its price is unknown: one call at a time.
            let unknown = !state.calibrated && state.in_flight > 0;
            let over = state.usage.usd + (state.in_flight + 1) as f64 * state.max_call_usd > limit;
            match (unknown || over, state.in_flight > 0) {
                (true, true) => return Reserve::Wait,
                (true, false) => return Reserve::Over,
                (false, _) => {}
            }
        }
        state.in_flight += 1;
        Reserve::Go
    }

    /// Ends a reserved call. A reply adds what it cost; an error adds a call of unknown (no) cost;
    /// a call dropped in flight (its task aborted) is counted at the dearest call seen, because the
    /// provider may well have billed it.
    fn settle(&self, outcome: Settled) {
        let mut state = self.inner.lock().expect("meter lock");
        state.in_flight -= 1;
        let entry = match outcome {
            Settled::Replied(usage) => {
                state.usage.add(&usage);
                state.max_call_usd = state.max_call_usd.max(usage.usd);
                state.calibrated = true;
                Entry::Replied { usage }
            }
            Settled::Failed => {
                state.usage.add(&Usage { calls: 1, ..Usage::default() });
                Entry::Failed
            }
            Settled::Dropped => {
                let usd = state.max_call_usd;
                state.usage.add(&Usage { calls: 1, usd, ..Usage::default() });
                Entry::Dropped { usd }
            }
        };
        drop(state);
        self.record(&entry);
        self.settled.notify_waiters();
    }

    /// Waits until a call may start within the budget (`false`: it may not, ever).
    async fn reserve(&self) -> bool {
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            match self.try_reserve() {
                Reserve::Go => return true,
                Reserve::Over => return false,
                Reserve::Wait => settled.await,
            }
        }
    }
}

/// How a reserved call ended.
enum Settled {
    Replied(Usage),
    Failed,
    Dropped,
}

/// Settles a reserved call even when its task is aborted mid-call (then as `Dropped`).
struct InFlight<'a> {
    meter: &'a Meter,
    outcome: Option<Settled>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.meter.settle(self.outcome.take().unwrap_or(Settled::Dropped));
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
        if !self.meter.reserve().await {
            return Err(Error::Budget { limit: self.meter.limit.unwrap_or(0.0) });
        }
        self.meter.record(&Entry::Sent);
        let mut guard = InFlight { meter: &self.meter, outcome: None };
        match self.inner.chat(request).await {
            Ok(response) => {
                guard.outcome = Some(Settled::Replied(response.usage));
                Ok(response)
            }
            Err(e) => {
                guard.outcome = Some(Settled::Failed);
                Err(e)
            }
        }
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

    /// Cancels on Ctrl-C or SIGTERM (the first one; a second Ctrl-C kills the process as usual),
    /// saying on stderr what becomes of the work in flight (`in_flight`).
    pub fn on_ctrl_c(&self, in_flight: &'static str) {
        let me = self.clone();
        tokio::spawn(async move {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
                () = term => {}
            }
            eprintln!("stopping: {in_flight} (Ctrl-C again to kill)");
            me.cancel();
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(130);
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
    async fn concurrent_calls_cannot_overshoot_together() {
        let model = Arc::new(scripted(0.3, |_| Ok(Message::assistant("x"))));
        let meter = Arc::new(Meter::new(Some(1.0), Usage::default()));
        let metered = Arc::new(Metered { inner: model, meter: meter.clone() });
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let m = metered.clone();
            set.spawn(async move { m.chat(&ChatRequest::default()).await.is_ok() });
        }
        let ok = set.join_all().await.into_iter().filter(|ok| *ok).count();
        assert_eq!(ok, 3);
        assert!(meter.usage().usd <= 1.0);
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
