//! Conversation records (`epochs/NNN/conversations.jsonl`, `eval/*.jsonl`) and their usage, read
//! leniently, plus the success tally over them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::scalar_text;
pub use crate::llm::Usage;

/// One graded conversation (a training or evaluation problem).
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub id: String,
    pub problem: String,
    pub subject: Option<String>,
    pub level: Option<String>,
    pub answer: Option<String>,
    pub reference: Option<String>,
    /// `None` when the conversation errored (infrastructure failure: not scored).
    pub correct: Option<bool>,
    /// The metric's score in [0, 1] (`correct` as 1 or 0 in records from before metrics); `None` when errored.
    pub score: Option<f64>,
    pub error: Option<String>,
    pub usage: Usage,
}

impl Record {
    /// Reads one conversation record; `index` names it when it has no `id`.
    pub fn from_json(v: &Value, index: usize) -> Record {
        let text = |keys: &[&str]| keys.iter().find_map(|k| scalar_text(&v[*k]));
        let error = match (&v["errored"], &v["error"]) {
            (Value::Null | Value::Bool(false), Value::Null) => None,
            (Value::Null | Value::Bool(false), e) | (e, _) => {
                Some(scalar_text(e).unwrap_or_else(|| e.to_string()))
            }
        };
        let verdict = &v["verdict"];
        let correct = v["correct"]
            .as_bool()
            .or_else(|| verdict.as_bool())
            .or_else(|| verdict["equal"].as_bool())
            .or_else(|| verdict["correct"].as_bool());
        Record {
            id: text(&["id"]).unwrap_or_else(|| format!("#{index}")),
            problem: text(&["problem", "question"]).unwrap_or_default(),
            subject: text(&["subject"]),
            level: text(&["level"]),
            answer: text(&["answer", "extracted"]),
            reference: text(&["reference"]),
            correct: if error.is_some() { None } else { Some(correct.unwrap_or(false)) },
            score: if error.is_some() {
                None
            } else {
                Some(v["score"].as_f64().unwrap_or(if correct.unwrap_or(false) { 1.0 } else { 0.0 }))
            },
            error,
            usage: Usage::from_json(&v["usage"]),
        }
    }
}

impl Record {
    /// Fills in subject and level from the dataset when the record lacks them.
    pub(super) fn labelled(mut self, labels: &BTreeMap<String, (Option<String>, Option<String>)>) -> Record {
        if let Some((subject, level)) = labels.get(&self.id) {
            self.subject = self.subject.or_else(|| subject.clone());
            self.level = self.level.or_else(|| level.clone());
        }
        self
    }
}

/// Correct out of scored: errored problems are counted apart and left out of the rate (SPEC §3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Tally {
    pub correct: usize,
    /// Every problem, errored ones included.
    pub total: usize,
    pub errored: usize,
    pub rate: Option<f64>,
    /// The 95% Wilson interval of `rate`.
    pub ci95: Option<[f64; 2]>,
}

impl Tally {
    pub fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Tally {
        let mut t = Tally::default();
        let mut sum = 0.0;
        for r in records {
            t.total += 1;
            sum += r.score.unwrap_or(0.0);
            match r.correct {
                Some(true) => t.correct += 1,
                Some(false) => {}
                None => t.errored += 1,
            }
        }
        let scored = t.total - t.errored;
        // The mean score: the correct share under a 0/1 metric.
        t.rate = (scored > 0).then(|| sum / scored as f64);
        t.ci95 = crate::stats::wilson_95(sum, scored).map(|(lo, hi)| [lo, hi]);
        t
    }

    /// `, 95% CI 0.118–0.769`, or nothing when there is no interval.
    pub fn ci_text(&self) -> String {
        crate::stats::ci95_text(self.ci95, 3)
    }

    /// `correct/scored`, and the errored count when there is one.
    pub fn scored_text(&self) -> String {
        let errored = if self.errored > 0 { format!(", {} errored", self.errored) } else { String::new() };
        format!("{}/{}{errored}", self.correct, self.total - self.errored)
    }

    pub(super) fn from_json(v: &Value) -> Option<Tally> {
        let n = |k: &str| v[k].as_u64().map(|x| x as usize);
        let (correct, total) = (n("correct")?, n("total")?);
        let errored = n("errored").unwrap_or(0);
        let scored = total.saturating_sub(errored);
        let rate = v["rate"].as_f64().or_else(|| (scored > 0).then(|| correct as f64 / scored as f64));
        // Summaries from before intervals have none: computed from the rate as it would have been.
        let ci95 = match v["ci95"].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect::<Vec<_>>())
        {
            Some(b) if b.len() == 2 => Some([b[0], b[1]]),
            _ => {
                rate.and_then(|r| crate::stats::wilson_95(r * scored as f64, scored)).map(|(lo, hi)| [lo, hi])
            }
        };
        Some(Tally { correct, total, errored, rate, ci95 })
    }
}

/// Subjects and levels by problem id, from the dataset files a run names in `run.json` (conversation
/// records do not carry them), read by the dataset loader itself so ids, the `type` alias of
/// `subject` and the spellings of `level` follow the same rules as training did.
pub(super) fn dataset_labels(run_json: &Value) -> BTreeMap<String, (Option<String>, Option<String>)> {
    let data = &run_json["data"];
    let mut paths: Vec<String> = Vec::new();
    for key in ["data", "train", "test"] {
        for v in [&data[key]["path"], &data[key], &run_json["dataset"][key]] {
            if let Some(p) = v.as_str() {
                paths.push(p.to_string());
            }
        }
    }
    paths.dedup();
    let mut labels = BTreeMap::new();
    for path in paths {
        // A dataset moved or edited since the run: records keep their ids, subjects are just unknown.
        let Ok(problems) = crate::dataset::load(Path::new(&path)) else { continue };
        for p in problems {
            labels.insert(p.id, (p.subject, p.level.map(|l| l.to_string())));
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_records() {
        let r = Record::from_json(
            &json!({"id": 7, "question": "q", "verdict": {"equal": true}, "errored": null}),
            0,
        );
        assert_eq!((r.id.as_str(), r.problem.as_str(), r.correct), ("7", "q", Some(true)));
        let r = Record::from_json(&json!({"correct": true, "errored": "timeout"}), 3);
        assert_eq!((r.id.as_str(), r.correct, r.error.as_deref()), ("#3", None, Some("timeout")));
        let r = Record::from_json(&json!({"verdict": false, "usage": {"prompt_tokens": 5, "usd": 0.5}}), 0);
        assert_eq!((r.correct, r.usage.input_tokens, r.usage.usd), (Some(false), 5, 0.5));
    }

    #[test]
    fn tally_excludes_errored() {
        let rs: Vec<Record> = [json!({"correct": true}), json!({"correct": false}), json!({"errored": "x"})]
            .iter()
            .map(|v| Record::from_json(v, 0))
            .collect();
        let t = Tally::of(&rs);
        assert_eq!((t.correct, t.total, t.errored, t.rate), (1, 3, 1, Some(0.5)));
        let [lo, hi] = t.ci95.unwrap();
        assert!((lo - 0.0945).abs() < 1e-3 && (hi - 0.9055).abs() < 1e-3, "{lo} {hi}");
    }

    #[test]
    fn subjects_from_the_dataset() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("math.jsonl");
        std::fs::write(
            &data,
            "{\"id\": \"a\", \"subject\": \"Algebra\", \"level\": \"Level 2\", \"problem\": \"p\", \"answer\": \"1\"}\n\
             {\"type\": \"Geometry\", \"problem\": \"q\", \"answer\": \"2\"}\n",
        )
        .unwrap();
        let run_json = json!({"data": {"test": {"path": data, "sha256": "x"}}});
        let labels = dataset_labels(&run_json);
        let r = Record::from_json(&json!({"id": "math:2", "correct": true}), 0).labelled(&labels);
        assert_eq!(r.subject.as_deref(), Some("Geometry"));
        let r = Record::from_json(&json!({"id": "a", "correct": true}), 0).labelled(&labels);
        assert_eq!((r.subject.as_deref(), r.level.as_deref()), (Some("Algebra"), Some("2")));
    }
}
