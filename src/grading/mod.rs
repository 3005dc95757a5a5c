//! Answer checking (SPEC §9): extract the final box, normalise MATH-style, decide on the fast Rust
//! path when it is sure, and ask math-verify (a Python worker pool) only when it is not.
//!
//! `Verdict::decided_by` records the path: `exact` (identical strings), `normalized` (identical after
//! normalisation, or two multiple-choice letters), `numeric` (numbers and closed forms such as
//! `3\sqrt{2}` compared by value, or a number against an expression in a free variable), `structure`
//! (tuples, intervals, sets, lists decided element by element), `math_verify`, `timeout` (the worker
//! was killed; counted not equal), `unavailable` (math-verify could not run; not equal), `no_answer`.
//!
//! Conventions, following MATH's: a percent sign is dropped (`10\%` equals `10`), and a percentage
//! also equals its fraction when the other side is that fraction (`25\%` equals `0.25`, `5\%` is not
//! `0.5`); units, however many `\text{}`/`\textnormal{}` groups they take, `\$` and degree signs are
//! dropped (`90^\circ` is `90`, not `\frac{\pi}{2}`), but never a word that scales the number
//! (`3\text{ thousand}` is not `3`); `2 1/3` is the mixed number 7/3; `3,5` is `3.5` when the other side
//! is a decimal and the comma cannot separate thousands (`12,345` is 12345); a box-less answer is read
//! out of its prose (`Answer: 5`, `\[ 5 \]`, `So $y \leq 2$ holds.`); `x = 3`, `ab = 12` and
//! `f(3) = 7` equal their right-hand sides, but `y = 2x + 1` stays an equation (equal to `2x - y + 1 = 0`: equations that are multiples of each
//! other are the same relation); tuples and intervals compare in order with their brackets, sets and
//! comma lists of solutions (`1 or 2`) in any order; `(A)`, `A` and `\text{(A)}` are one choice.
//! math-verify is asked both ways round because its `verify(gold, target)` is not symmetric.

mod evaluate;
mod extract;
mod fast;
mod normalize;
mod readings;
mod verify;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::record::GradedBy;

pub use extract::extract_boxed;
pub use normalize::normalize;
pub use verify::Error;

/// Whether a given answer equals the reference, and which path decided.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub equal: bool,
    pub decided_by: GradedBy,
}

impl Verdict {
    fn new(equal: bool, decided_by: GradedBy) -> Verdict {
        Verdict { equal, decided_by }
    }
}

/// A box-less text longer than this is prose, not an answer.
const MAX_BARE_ANSWER: usize = 120;
/// Default hard deadline per math-verify case.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The answer checker. Cheap to clone; clones share one worker pool and one verdict cache.
#[derive(Clone)]
pub struct Grader {
    inner: Arc<Inner>,
}

struct Inner {
    pool: verify::Pool,
    /// math-verify verdicts by (given, reference), normalised: training regrades the same pairs often.
    cache: Mutex<HashMap<(String, String), bool>>,
    /// Whether the "math-verify unavailable" warning was given.
    warned: std::sync::atomic::AtomicBool,
}

impl Grader {
    /// `python` is the interpreter with math-verify installed (`crate::exec::find_python()`); no worker
    /// starts until a case needs one.
    pub fn new(python: PathBuf) -> Grader {
        Grader::with_timeout(python, DEFAULT_TIMEOUT)
    }

    /// Like `new`, with a different hard deadline per math-verify case.
    pub fn with_timeout(python: PathBuf, timeout: Duration) -> Grader {
        let size = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
        let pool = verify::Pool::new(python, timeout, size);
        Grader {
            inner: Arc::new(Inner { pool, cache: Mutex::new(HashMap::new()), warned: Default::default() }),
        }
    }

    /// Checks `given` (a whole response with a `\boxed{}`, or a bare answer) against `reference`.
    pub async fn check(&self, given: &str, reference: &str) -> Verdict {
        if !given.trim().is_empty() && given.trim() == reference.trim() {
            return Verdict::new(true, GradedBy::Exact);
        }
        // A reference is an answer even when it spans lines (`90\text{ square\nunits}` in MATH).
        // Read like an answer too (`$40$ cm`, `Answer: 5`), so the check is the same both ways round.
        let reference =
            extract_boxed(reference).unwrap_or_else(|| readings::bare_answer(reference).to_string());
        let (Some(g), Some(r)) = (answer_of(given), Some(reference).filter(|r| !r.is_empty())) else {
            return Verdict::new(false, GradedBy::NoAnswer);
        };
        if g == r {
            return Verdict::new(true, GradedBy::Exact);
        }
        let (ng, nr) = (normalize(&g), normalize(&r));
        if ng.is_empty() || nr.is_empty() {
            return Verdict::new(false, GradedBy::NoAnswer);
        }
        if readings::percent_as_fraction((&g, &r), (&ng, &nr)) || readings::decimal_comma((&ng, &nr)) {
            return Verdict::new(true, GradedBy::Numeric);
        }
        match fast::compare(&ng, &nr) {
            fast::Decision::Equal(by) => return Verdict::new(true, by),
            fast::Decision::NotEqual(by) => return Verdict::new(false, by),
            fast::Decision::Unknown => {}
        }
        let key = (ng, nr);
        if let Some(&equal) = self.inner.cache.lock().expect("poisoned").get(&key) {
            return Verdict::new(equal, GradedBy::MathVerify);
        }
        match self.inner.pool.verify(&key.0, &key.1).await {
            Ok(equal) => {
                self.inner.cache.lock().expect("poisoned").insert(key, equal);
                Verdict::new(equal, GradedBy::MathVerify)
            }
            Err(Error::Timeout(_)) => {
                tracing::warn!(
                    "math-verify timed out comparing {:?} with {:?}; counted not equal",
                    key.0,
                    key.1
                );
                Verdict::new(false, GradedBy::Timeout)
            }
            Err(e) => {
                // Said once loudly: every later case would repeat the same cause.
                if !self.inner.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    let cause = std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
                    tracing::warn!("{e}{cause}; cases the fast path cannot decide are counted not equal");
                }
                tracing::debug!("{e}; {:?} vs {:?} counted not equal", key.0, key.1);
                Verdict::new(false, GradedBy::Unavailable)
            }
        }
    }
}

/// The answer in a response: its last box, else the answer its prose states (`readings::bare_answer`)
/// when it is short enough to be one (longer box-less text is prose that never committed to one).
fn answer_of(text: &str) -> Option<String> {
    if let Some(boxed) = extract_boxed(text) {
        return Some(boxed);
    }
    let t = readings::bare_answer(text);
    // An empty or unclosed box is an attempt at a box that failed, not a bare answer.
    let failed_box = t.contains("\\boxed") || t.contains("\\fbox");
    (!t.is_empty() && !failed_box && t.chars().count() <= MAX_BARE_ANSWER).then(|| t.to_string())
}
