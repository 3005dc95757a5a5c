//! A warm pool in front of a `Runner`: keeps a few sessions pre-started for the registry last asked
//! for, so a conversation's first code block does not wait for a sandbox and an interpreter to start
//! (~130 ms, more on a busy machine). Sessions are never reused: each one handed out is fresh, so
//! results do not depend on which conversation got which session.
//!
//! The pool only fills once a session has been asked for (a phase whose conversations run no code
//! starts no process), and a different registry (the next epoch's) discards the idle sessions.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::exec;
use crate::exec::{CodeSession, Runner};
use crate::functions::{FunctionDef, Registry};

pub struct Warm {
    inner: Arc<dyn Runner>,
    size: usize,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// The registry the idle sessions were started with.
    registry: Option<Registry>,
    idle: Vec<Box<dyn CodeSession>>,
    /// Sessions being started in the background for that registry.
    starting: usize,
    /// Bumped when the registry changes, so starts for an earlier one neither count nor land.
    generation: u64,
}

impl Warm {
    /// Up to `size` idle sessions ahead of demand (0: a pass-through).
    pub fn new(inner: Arc<dyn Runner>, size: usize) -> Warm {
        Warm { inner, size, state: Arc::default() }
    }

    /// Pool size for `concurrency` conversations at once: enough to hide start-up at the rate they ask
    /// for sessions, few enough that idle workers (~60 MB each, once warm) stay cheap.
    pub fn size_for(concurrency: usize) -> usize {
        concurrency.div_ceil(4).clamp(1, 4)
    }

    /// Starts, in the background, the sessions the pool lacks.
    fn refill(&self, registry: &Registry) {
        // In front of a runner keeping spares (forked sessions), one is enough: it hides a take's
        // latency (the session's memory cgroup join waits for an RCU grace period, ~10 ms alone)
        // from conversations that ask one at a time, and more would only hold spares that a burst
        // of conversations needs and leave them unused at its end.
        let size = if self.inner.prepares_sessions() { self.size.min(1) } else { self.size };
        let (missing, generation) = {
            let mut state = lock(&self.state);
            let missing = size.saturating_sub(state.idle.len() + state.starting);
            state.starting += missing;
            (missing, state.generation)
        };
        for _ in 0..missing {
            let (inner, state, registry) = (self.inner.clone(), self.state.clone(), registry.clone());
            tokio::spawn(async move {
                let session = inner.session(&registry).await;
                let mut state = lock(&state);
                if state.generation != generation {
                    // Started for an earlier registry: dropping it kills the worker.
                    return;
                }
                state.starting -= 1;
                match session {
                    Ok(session) => state.idle.push(session),
                    // The conversation that needs a session starts its own and reports the error.
                    Err(e) => tracing::debug!("warm pool: starting a session failed: {e}"),
                }
            });
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl Runner for Warm {
    async fn session(&self, registry: &Registry) -> Result<Box<dyn CodeSession>, exec::Error> {
        let ready = {
            let mut state = lock(&self.state);
            if state.registry.as_ref() != Some(registry) {
                state.registry = Some(registry.clone());
                state.idle.clear();
                state.starting = 0;
                state.generation += 1;
            }
            state.idle.pop()
        };
        if self.size > 0 {
            self.refill(registry);
        }
        match ready {
            Some(session) => Ok(session),
            None => self.inner.session(registry).await,
        }
    }

    async fn validate_function(&self, def: &FunctionDef) -> Result<Result<(), String>, exec::Error> {
        self.inner.validate_function(def).await
    }
    fn expect_sessions(&self, count: usize) {
        self.inner.expect_sessions(count)
    }
    fn prepares_sessions(&self) -> bool {
        self.inner.prepares_sessions()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::runner::fake::FakeRunner;

    fn registry(name: &str) -> Registry {
        Registry {
            functions: vec![FunctionDef {
                name: name.into(),
                description: String::new(),
                parameters: serde_json::json!({"type": "object"}),
                packages: vec![],
                code: format!("def {name}():\n    return 1\n"),
            }],
        }
    }

    async fn settle(pool: &Warm) -> (usize, usize) {
        for _ in 0..100 {
            let (idle, starting) = {
                let state = lock(&pool.state);
                (state.idle.len(), state.starting)
            };
            if starting == 0 {
                return (idle, starting);
            }
            tokio::task::yield_now().await;
        }
        panic!("the pool never settled");
    }

    #[tokio::test]
    async fn fills_on_first_use_and_hands_out_sessions_of_the_asked_registry() {
        let pool = Warm::new(Arc::new(FakeRunner), 3);
        assert_eq!(lock(&pool.state).idle.len(), 0, "no process before a session is asked for");
        let mut first = pool.session(&registry("f")).await.unwrap();
        assert_eq!(settle(&pool).await, (3, 0));
        let mut pooled = pool.session(&registry("f")).await.unwrap();
        assert!(pooled.call_function("f", "{}").await.result.is_some());
        assert!(first.call_function("f", "{}").await.result.is_some());
        // Another registry: idle sessions of the old one are discarded, never handed out.
        let mut other = pool.session(&registry("g")).await.unwrap();
        assert!(other.call_function("g", "{}").await.result.is_some());
        assert!(other.call_function("f", "{}").await.result.is_none());
        assert_eq!(settle(&pool).await, (3, 0));
    }

    /// A runner keeping spares itself, counting the sessions started.
    #[derive(Default)]
    struct Preparing(std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl Runner for Preparing {
        async fn session(&self, registry: &Registry) -> Result<Box<dyn CodeSession>, exec::Error> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            FakeRunner.session(registry).await
        }
        async fn validate_function(&self, def: &FunctionDef) -> Result<Result<(), String>, exec::Error> {
            FakeRunner.validate_function(def).await
        }
        fn prepares_sessions(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn in_front_of_a_runner_keeping_spares_it_keeps_one() {
        let inner = Arc::new(Preparing::default());
        let pool = Warm::new(inner.clone(), 3);
        pool.session(&registry("f")).await.unwrap();
        assert_eq!(settle(&pool).await, (1, 0));
        pool.session(&registry("f")).await.unwrap();
        assert_eq!(settle(&pool).await, (1, 0));
        let started = inner.0.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(started, 3, "two handed out, one kept");
        assert!(pool.prepares_sessions());
    }
}
