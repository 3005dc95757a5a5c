//! Retries: the pure `decide` policy (what to do after a failed attempt) and the `Retry` wrapper that
//! runs an HTTP endpoint's attempts under it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::{ChatModel, ChatRequest, ChatResponse, Error};

/// How one HTTP attempt failed, as the retry policy sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The server answered with a non-success status.
    Status { status: u16, retry_after: Option<String>, body: String },
    /// No complete answer within the per-request timeout.
    Timeout,
    /// Could not connect, or the connection broke mid-reply.
    Connection(String),
    /// A 2xx reply whose body could not be understood (truncated JSON, empty `choices`, ...).
    Unparseable(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status { status, body, .. } => write!(f, "HTTP {status}: {}", clip(body, 300)),
            Failure::Timeout => f.write_str("request timed out"),
            Failure::Connection(detail) => write!(f, "connection failed: {detail}"),
            Failure::Unparseable(detail) => write!(f, "unparseable reply: {detail}"),
        }
    }
}

/// Why retrying stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// 401/403: the key is wrong; retrying cannot help.
    Auth,
    /// Another 4xx: the request itself is wrong.
    Rejected,
    /// A retryable failure, but the attempts are used up.
    Exhausted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry(Duration),
    GiveUp(GiveUp),
}

/// Backoff parameters. Tests shrink them to keep runs fast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time.
    pub base: Duration,
    /// Longest backoff between attempts.
    pub cap: Duration,
    /// Longest wait a server's `Retry-After` may impose.
    pub retry_after_cap: Duration,
    /// A call refused with 429 is retried past `max_attempts` until this long after its first attempt:
    /// a rate limit is waited out, not turned into a failed conversation.
    pub rate_limit_patience: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            retry_after_cap: Duration::from_secs(60),
            rate_limit_patience: Duration::from_secs(120),
        }
    }
}

/// What to do after attempt number `attempt` (1 = the first), `elapsed` after the first attempt began,
/// failed with `failure`. Pure: the clock (`now`, for HTTP-date `Retry-After`) and the randomness
/// (`jitter` in [0, 1)) are parameters.
pub fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    elapsed: Duration,
    failure: &Failure,
    now: SystemTime,
    jitter: f64,
) -> Decision {
    let retry_after = match failure {
        Failure::Status { status: 401 | 403, .. } => return Decision::GiveUp(GiveUp::Auth),
        Failure::Status { status: 429, retry_after, .. } => retry_after.as_deref(),
        // 503 often carries a Retry-After too.
        Failure::Status { status, retry_after, .. } if (500..600).contains(status) => retry_after.as_deref(),
        // 408 (server-side timeout) and 425 (too early) are transient by definition.
        Failure::Status { status: 408 | 425, .. } => None,
        Failure::Status { .. } => return Decision::GiveUp(GiveUp::Rejected),
        Failure::Timeout | Failure::Connection(_) | Failure::Unparseable(_) => None,
    };
    let rate_limited = matches!(failure, Failure::Status { status: 429, .. });
    if attempt >= policy.max_attempts && !(rate_limited && elapsed < policy.rate_limit_patience) {
        return Decision::GiveUp(GiveUp::Exhausted);
    }
    if let Some(wait) = retry_after.and_then(|v| parse_retry_after(v, now)) {
        // `Retry-After` is a minimum. Up to a fifth more, at random, keeps the calls one throttled
        // reply refused together from all coming back in the same instant.
        return Decision::Retry(
            wait.mul_f64(1.0 + RETRY_AFTER_SPREAD * jitter.clamp(0.0, 1.0)).min(policy.retry_after_cap),
        );
    }
    Decision::Retry(backoff(policy, attempt, jitter))
}

/// The most a `Retry-After` wait is stretched by jitter, as a fraction of it.
const RETRY_AFTER_SPREAD: f64 = 0.2;

/// Exponential backoff with "equal jitter": half the step is fixed, half random, so concurrent
/// clients spread out but none retries immediately.
fn backoff(policy: &RetryPolicy, attempt: u32, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(20);
    let step = policy.base.saturating_mul(1u32 << doublings).min(policy.cap);
    step / 2 + step.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
}

/// `Retry-After` is either delay-seconds or an HTTP date; a date in the past means "now".
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// 429 replies seen by this process, across all models. Schedulers compare readings to adapt their
/// concurrency down while the provider is throttling.
static RATE_LIMITED: AtomicU64 = AtomicU64::new(0);

pub fn rate_limited_count() -> u64 {
    RATE_LIMITED.load(Ordering::Relaxed)
}

/// One HTTP endpoint that can make a single attempt; `Retry` turns it into a `ChatModel`.
#[async_trait::async_trait]
pub trait Endpoint: Send + Sync {
    /// The config entry's model name, for error messages.
    fn model(&self) -> &str;
    async fn attempt(&self, request: &ChatRequest) -> Result<ChatResponse, Failure>;
}

pub struct Retry {
    endpoint: Arc<dyn Endpoint>,
    policy: RetryPolicy,
}

impl Retry {
    pub fn new(endpoint: Arc<dyn Endpoint>, policy: RetryPolicy) -> Self {
        Retry { endpoint, policy }
    }
}

#[async_trait::async_trait]
impl ChatModel for Retry {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        let model = self.endpoint.model().to_string();
        let mut attempt = 0;
        let started = std::time::Instant::now();
        loop {
            attempt += 1;
            let failure = match self.endpoint.attempt(request).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            if matches!(failure, Failure::Status { status: 429, .. }) {
                RATE_LIMITED.fetch_add(1, Ordering::Relaxed);
            }
            let jitter = rand::random::<f64>();
            match decide(&self.policy, attempt, started.elapsed(), &failure, SystemTime::now(), jitter) {
                Decision::Retry(wait) => {
                    tracing::warn!(%model, attempt, wait_ms = wait.as_millis() as u64, "retrying: {failure}");
                    tokio::time::sleep(wait).await;
                }
                Decision::GiveUp(why) => return Err(give_up(why, model, attempt, failure)),
            }
        }
    }
}

fn give_up(why: GiveUp, model: String, attempts: u32, failure: Failure) -> Error {
    match (why, failure) {
        (GiveUp::Auth, Failure::Status { status, .. }) => Error::Auth { model, status },
        (GiveUp::Rejected, Failure::Status { status, body, .. }) => {
            Error::Rejected { model, status, body: clip(&body, 1000) }
        }
        (GiveUp::Exhausted, Failure::Unparseable(detail)) => {
            Error::BadReply { model, detail: format!("{detail} (after {attempts} attempts)") }
        }
        (_, last) => Error::RetriesExhausted { model, attempts, last: last.to_string() },
    }
}

/// Shortens a server's error body for messages (bodies can be whole HTML pages).
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    fn status(status: u16, retry_after: Option<&str>) -> Failure {
        Failure::Status { status, retry_after: retry_after.map(str::to_string), body: String::new() }
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn wait(decision: Decision) -> Duration {
        match decision {
            Decision::Retry(wait) => wait,
            Decision::GiveUp(why) => panic!("expected a retry, got give-up {why:?}"),
        }
    }

    #[test]
    fn auth_failures_are_never_retried() {
        for code in [401, 403] {
            assert_eq!(
                decide(&policy(), 1, Duration::ZERO, &status(code, None), now(), 0.5),
                Decision::GiveUp(GiveUp::Auth)
            );
        }
    }

    #[test]
    fn other_client_errors_are_rejected_without_retry() {
        for code in [400, 404, 413, 422] {
            let decision = decide(&policy(), 1, Duration::ZERO, &status(code, Some("1")), now(), 0.5);
            assert_eq!(decision, Decision::GiveUp(GiveUp::Rejected), "HTTP {code}");
        }
    }

    #[test]
    fn transient_failures_are_retried() {
        let failures = [
            status(429, None),
            status(500, None),
            status(502, None),
            status(503, None),
            status(408, None),
            Failure::Timeout,
            Failure::Connection("refused".into()),
            Failure::Unparseable("EOF while parsing".into()),
        ];
        for failure in failures {
            assert!(
                matches!(decide(&policy(), 1, Duration::ZERO, &failure, now(), 0.5), Decision::Retry(_)),
                "{failure:?}"
            );
        }
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let p = policy();
        assert!(matches!(
            decide(&p, p.max_attempts - 1, Duration::ZERO, &Failure::Timeout, now(), 0.0),
            Decision::Retry(_)
        ));
        assert_eq!(
            decide(&p, p.max_attempts, Duration::ZERO, &Failure::Timeout, now(), 0.0),
            Decision::GiveUp(GiveUp::Exhausted)
        );
        assert_eq!(
            decide(&p, p.max_attempts, p.rate_limit_patience, &status(429, Some("0")), now(), 0.0),
            Decision::GiveUp(GiveUp::Exhausted)
        );
    }

    #[test]
    fn a_rate_limit_is_waited_out_for_the_patience_not_the_attempts() {
        let p = policy();
        let limited = status(429, Some("1"));
        let just_in = p.rate_limit_patience - Duration::from_millis(1);
        assert!(matches!(decide(&p, p.max_attempts * 10, just_in, &limited, now(), 0.0), Decision::Retry(_)));
        // Other transient failures still stop at max_attempts, however young the call.
        let unavailable = status(503, Some("1"));
        assert_eq!(
            decide(&p, p.max_attempts, Duration::ZERO, &unavailable, now(), 0.0),
            Decision::GiveUp(GiveUp::Exhausted)
        );
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter_and_is_capped() {
        let p = RetryPolicy { max_attempts: 100, ..policy() };
        let at =
            |attempt, jitter| wait(decide(&p, attempt, Duration::ZERO, &status(503, None), now(), jitter));
        // Equal jitter: the wait lies in [step/2, step].
        assert_eq!(at(1, 0.0), Duration::from_millis(250));
        assert_eq!(at(1, 1.0), Duration::from_millis(500));
        assert_eq!(at(2, 0.0), Duration::from_millis(500));
        assert_eq!(at(3, 1.0), Duration::from_secs(2));
        assert!(at(3, 0.5) > at(3, 0.0) && at(3, 0.5) < at(3, 1.0));
        assert_eq!(at(30, 1.0), p.cap);
        assert_eq!(at(99, 0.0), p.cap / 2);
    }

    #[test]
    fn retry_after_seconds_are_honoured_and_capped() {
        let p = policy();
        let at = |value: &str, jitter| {
            wait(decide(&p, 1, Duration::ZERO, &status(429, Some(value)), now(), jitter))
        };
        assert_eq!(at("0", 0.9), Duration::ZERO);
        assert_eq!(at(" 7 ", 0.0), Duration::from_secs(7));
        assert_eq!(at("1.5", 0.0), Duration::from_millis(1500));
        assert_eq!(at("86400", 0.0), p.retry_after_cap);
        assert_eq!(at("86400", 0.9), p.retry_after_cap);
    }

    #[test]
    fn retry_after_is_a_minimum_spread_by_up_to_a_fifth() {
        let p = policy();
        let at = |jitter| wait(decide(&p, 1, Duration::ZERO, &status(429, Some("10")), now(), jitter));
        assert_eq!(at(0.0), Duration::from_secs(10));
        assert_eq!(at(0.5), Duration::from_secs(11));
        assert_eq!(at(1.0), Duration::from_secs(12));
    }

    #[test]
    fn retry_after_http_date_is_honoured() {
        let later = httpdate::fmt_http_date(now() + Duration::from_secs(12));
        assert_eq!(
            wait(decide(&policy(), 1, Duration::ZERO, &status(429, Some(&later)), now(), 0.0)),
            Duration::from_secs(12)
        );
        let earlier = httpdate::fmt_http_date(now() - Duration::from_secs(12));
        assert_eq!(
            wait(decide(&policy(), 1, Duration::ZERO, &status(429, Some(&earlier)), now(), 0.9)),
            Duration::ZERO
        );
    }

    #[test]
    fn unusable_retry_after_falls_back_to_backoff() {
        for value in ["soon", "-3", "NaN", ""] {
            let got = wait(decide(&policy(), 1, Duration::ZERO, &status(429, Some(value)), now(), 0.0));
            assert_eq!(got, Duration::from_millis(250), "Retry-After {value:?}");
        }
    }

    #[test]
    fn clip_shortens_on_char_boundaries() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
