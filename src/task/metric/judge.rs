//! `--metric judge:MODEL`: an LLM from the config list decides whether an answer matches the
//! reference. The prompt (below, documented in the README) gives the question, the reference and the
//! answer, and asks for a JSON verdict `{"correct": true|false, "reason": "..."}` (a `"score"` in
//! [0, 1] is read too). Calls go through the same metered (and cached) model stack as the assistant,
//! so they count in usage and `--max-usd`. A reply that holds no verdict makes the problem errored.

use std::sync::Arc;

use serde_json::Value;

use super::{Error, Scored};
use crate::dataset::Problem;
use crate::llm::{self, ChatModel, ChatRequest, Message};
use crate::record::GradedBy;

/// The judge's instructions.
pub const SYSTEM: &str = "You are a careful, strict grader. You are given a question, the reference \
answer and a candidate answer. Decide whether the candidate answer is correct: it must agree with the \
reference in meaning (wording, formatting and equivalent forms may differ; a different value, an extra \
claim that contradicts the reference, or a missing part makes it incorrect). Do not solve the question \
yourself beyond what is needed to compare. Reply with one JSON object and nothing else: \
{\"correct\": true or false, \"reason\": \"one short sentence\"}.";

pub struct Judge {
    pub model: Arc<dyn ChatModel>,
    pub seed: Option<u64>,
}

/// The judge's user message for one problem.
pub fn prompt(question: &str, reference: &str, answer: &str) -> String {
    format!("Question:\n{question}\n\nReference answer:\n{reference}\n\nCandidate answer:\n{answer}")
}

impl Judge {
    pub async fn score(&self, answer: &str, problem: &Problem) -> Result<Scored, Error> {
        let request = ChatRequest {
            messages: vec![
                Message::system(SYSTEM),
                Message::user(prompt(&problem.problem, &problem.answer, answer)),
            ],
            temperature: Some(0.0),
            seed: self.seed,
            ..Default::default()
        };
        let name = GradedBy::Judge;
        let response = match self.model.chat(&request).await {
            Ok(r) => r,
            Err(llm::Error::Budget { .. }) => return Err(Error::Budget),
            Err(e) => return Ok(Scored::errored(format!("judge: {}", crate::agent::error_chain(&e)), name)),
        };
        let mut scored = match verdict(response.message.text()) {
            Some(score) => Scored { score, ..Scored::of(false, name) },
            None => Scored::errored(
                format!("judge: the reply holds no JSON verdict: {}", clip(response.message.text())),
                name,
            ),
        };
        scored.usage = response.usage;
        Ok(scored)
    }
}

/// The score in the first JSON object of the reply that has `correct` (bool) or `score` ([0, 1]).
pub fn verdict(reply: &str) -> Option<f64> {
    let mut rest = reply;
    while let Some(start) = rest.find('{') {
        let candidate = &rest[start..];
        let mut stream = serde_json::Deserializer::from_str(candidate).into_iter::<Value>();
        if let Some(Ok(Value::Object(obj))) = stream.next() {
            if let Some(Value::Bool(b)) = obj.get("correct") {
                return Some(f64::from(u8::from(*b)));
            }
            if let Some(x) = obj.get("score").and_then(Value::as_f64).filter(|x| (0.0..=1.0).contains(x)) {
                return Some(x);
            }
        }
        rest = &candidate[1..];
    }
    None
}

fn clip(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_read_from_json_in_the_reply() {
        assert_eq!(verdict(r#"{"correct": true, "reason": "same"}"#), Some(1.0));
        assert_eq!(verdict("Sure.\n```json\n{\"correct\": false, \"reason\": \"no\"}\n```"), Some(0.0));
        assert_eq!(verdict(r#"{"score": 0.5}"#), Some(0.5));
        assert_eq!(verdict(r#"{"note": {"x": 1}} then {"correct": true}"#), Some(1.0));
        assert_eq!(verdict(r#"{"score": 7}"#), None);
        assert_eq!(verdict("correct"), None);
    }
}
