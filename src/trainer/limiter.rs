//! Adaptive concurrency for a phase's conversations (SPEC §10): a semaphore whose permit count follows
//! AIMD on the provider's 429 replies. `Aimd` is the pure rule; `Limiter` applies it to the semaphore.
//!
//! The rule, like TCP congestion control: new 429s seen when a conversation completes halve the limit
//! (floor 1), at most once per round trip — only a conversation that started after the last decrease
//! can trigger the next one, since the older ones were already running at the old limit. A run of
//! `limit` completions without a new 429 adds one permit back, never above the configured maximum.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The pure AIMD state: what the limit should be after each completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aimd {
    max: usize,
    limit: usize,
    /// Completions without a new 429 since the last change.
    calm: usize,
    /// Bumped on every decrease; a conversation remembers the epoch it started in.
    epoch: u64,
}

impl Aimd {
    pub fn new(max: usize) -> Aimd {
        let max = max.max(1);
        Aimd { max, limit: max, calm: 0, epoch: 0 }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A conversation that started in `started_epoch` completed; `throttled` says whether new 429s
    /// were seen since the previous completion. Returns the new limit.
    pub fn on_done(&mut self, started_epoch: u64, throttled: bool) -> usize {
        if throttled {
            self.calm = 0;
            if started_epoch == self.epoch && self.limit > 1 {
                self.limit /= 2;
                self.epoch += 1;
            }
            return self.limit;
        }
        self.calm += 1;
        if self.calm >= self.limit && self.limit < self.max {
            self.calm = 0;
            self.limit += 1;
        }
        self.limit
    }
}

/// The semaphore plus the rule. Shared by the phase's tasks (`Arc`).
pub struct Limiter {
    semaphore: Arc<Semaphore>,
    state: Mutex<State>,
    /// Reads the process-wide 429 count (a parameter so tests can drive it).
    throttle_count: fn() -> u64,
}

struct State {
    aimd: Aimd,
    /// Permits in existence: held by running conversations plus free in the semaphore.
    permits: usize,
    seen_429: u64,
}

/// A running conversation's permit. Hand it back with `done` when the conversation completes; a
/// dropped slot (an aborted task) simply returns its permit.
pub struct Slot {
    permit: OwnedSemaphorePermit,
    epoch: u64,
    limiter: Arc<Limiter>,
}

impl Limiter {
    /// Up to `max` conversations at once, adapted on the 429s counted by `llm::retry`.
    pub fn new(max: usize) -> Arc<Limiter> {
        Limiter::with_counter(max, crate::llm::retry::rate_limited_count)
    }

    pub fn with_counter(max: usize, throttle_count: fn() -> u64) -> Arc<Limiter> {
        let aimd = Aimd::new(max);
        let permits = aimd.limit();
        Arc::new(Limiter {
            semaphore: Arc::new(Semaphore::new(permits)),
            state: Mutex::new(State { aimd, permits, seen_429: throttle_count() }),
            throttle_count,
        })
    }

    /// Waits for a free permit.
    pub async fn acquire(self: &Arc<Self>) -> Slot {
        let permit = self.semaphore.clone().acquire_owned().await.expect("the semaphore is never closed");
        let epoch = self.lock().aimd.epoch();
        Slot { permit, epoch, limiter: self.clone() }
    }

    /// The current limit (for progress and tests).
    pub fn limit(&self) -> usize {
        self.lock().aimd.limit()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Slot {
    /// The conversation completed: adapt the limit, then release this permit or retire it. Retiring
    /// the finishing conversation's own permit is what makes a decrease bite at once: released, it
    /// would go straight to a waiting task, and the semaphore would never have a free one to forget.
    pub fn done(self) {
        let limiter = self.limiter.clone();
        let count = (limiter.throttle_count)();
        let mut state = limiter.lock();
        let throttled = count > state.seen_429;
        state.seen_429 = state.seen_429.max(count);
        let target = state.aimd.on_done(self.epoch, throttled);
        if state.permits > target {
            self.permit.forget();
            state.permits -= 1;
            let extra = state.permits.saturating_sub(target);
            state.permits -= limiter.semaphore.forget_permits(extra);
        } else {
            if state.permits < target {
                limiter.semaphore.add_permits(target - state.permits);
                state.permits = target;
            }
            drop(self.permit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn halves_once_per_round_trip_with_floor_one() {
        let mut aimd = Aimd::new(8);
        assert_eq!(aimd.on_done(0, true), 4);
        // Conversations that started at the old limit cannot halve again.
        assert_eq!(aimd.on_done(0, true), 4);
        assert_eq!(aimd.on_done(1, true), 2);
        assert_eq!(aimd.on_done(2, true), 1);
        assert_eq!(aimd.on_done(3, true), 1);
        assert_eq!(aimd.epoch(), 3);
    }

    #[test]
    fn grows_by_one_after_a_calm_round_up_to_max() {
        let mut aimd = Aimd::new(4);
        aimd.on_done(0, true);
        assert_eq!(aimd.limit(), 2);
        assert_eq!(aimd.on_done(1, false), 2);
        assert_eq!(aimd.on_done(1, false), 3);
        let limits: Vec<usize> = (0..3).map(|_| aimd.on_done(1, false)).collect();
        assert_eq!(limits, [3, 3, 4]);
        for _ in 0..20 {
            aimd.on_done(1, false);
        }
        assert_eq!(aimd.limit(), 4);
    }

    #[test]
    fn a_429_resets_the_calm_run() {
        let mut aimd = Aimd::new(8);
        aimd.on_done(0, true);
        for _ in 0..3 {
            aimd.on_done(1, false);
        }
        aimd.on_done(0, true); // an old conversation's 429: no decrease, but not calm either
        for _ in 0..3 {
            assert_eq!(aimd.on_done(1, false), 4);
        }
        assert_eq!(aimd.on_done(1, false), 5);
    }

    static COUNT: AtomicU64 = AtomicU64::new(0);

    #[tokio::test]
    async fn a_decrease_bites_even_when_tasks_are_waiting() {
        let limiter = Limiter::with_counter(4, || COUNT.load(Ordering::SeqCst));
        let mut slots = Vec::new();
        for _ in 0..4 {
            slots.push(limiter.acquire().await);
        }
        assert_eq!(limiter.semaphore.available_permits(), 0);
        COUNT.fetch_add(3, Ordering::SeqCst);
        slots.pop().unwrap().done();
        // Limit 2: the finishing permit was retired, and one more must go when the next ends.
        assert_eq!((limiter.limit(), limiter.semaphore.available_permits()), (2, 0));
        slots.pop().unwrap().done();
        assert_eq!(limiter.semaphore.available_permits(), 0);
        // Recovery: a second calm completion at limit 2 adds a permit back.
        slots.pop().unwrap().done();
        assert_eq!((limiter.limit(), limiter.semaphore.available_permits()), (3, 2));
        drop(slots);
        assert_eq!(limiter.semaphore.available_permits(), 3);
    }
}
