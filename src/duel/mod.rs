//! `agentopt duel`: a price negotiation between two models (the workshop's persuasion benchmark). Each
//! side thinks privately and only its message and offer reach the other; rounds run concurrently and
//! add up to an agreement rate and a price distribution per model pairing.
//!
//! - `scenario` — the two sides, their prompts, the opening and the stop condition (TOML)
//! - `reply`    — the JSON reply format: prompt, schema, parsing, the public part
//! - `round`    — one negotiation and its record
//! - `summary`  — what the rounds add up to
//! - `save`     — the save directory (`duel.json`, `rounds/`)
//! - `report`   — several saves compared, per model pairing (text and HTML)

pub mod reply;
pub mod report;
pub mod round;
pub mod save;
pub mod scenario;
pub mod summary;

pub use round::{Duel, Negotiator, Outcome, RoundRecord};
pub use scenario::{Scenario, Side};
pub use summary::Summary;
