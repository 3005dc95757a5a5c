//! Problem datasets (SPEC §4): JSON Lines loading with MATH and GSM8K field layouts, the `--subject`
//! filter, a seed-deterministic train/test split, and file hashes for `run.json`.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One problem: the text shown to the assistant and the reference its answer is scored against.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Problem {
    pub id: String,
    pub problem: String,
    /// The reference as text (a non-string JSON answer as its compact JSON).
    pub answer: String,
    /// The reference as the dataset wrote it, when it is not a string (a number, a list, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_json: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// Every other field of the dataset line (`--opening` templates and metrics read them).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
}

impl Problem {
    pub fn new(id: &str, problem: &str, answer: &str) -> Problem {
        Problem { id: id.into(), problem: problem.into(), answer: answer.into(), ..Problem::default() }
    }

    /// The reference as a JSON value (what a `python:` metric receives).
    pub fn reference_value(&self) -> Value {
        self.answer_json.clone().unwrap_or_else(|| Value::String(self.answer.clone()))
    }

    /// The problem as one JSON object: its fields as loaded (what a `python:` metric receives).
    pub fn example(&self) -> Value {
        let mut obj = self.fields.clone();
        obj.insert("id".into(), self.id.clone().into());
        obj.insert("problem".into(), self.problem.clone().into());
        obj.insert("answer".into(), self.reference_value());
        if let Some(s) = &self.subject {
            obj.insert("subject".into(), s.clone().into());
        }
        if let Some(l) = self.level {
            obj.insert("level".into(), l.into());
        }
        Value::Object(obj)
    }
}

/// Fields `parse_line` reads itself (and MATH's worked `solution`, a second copy of the reference that
/// would bloat every record); every other one goes to `Problem::fields`.
const KNOWN_FIELDS: [&str; 8] =
    ["id", "problem", "question", "answer", "solution", "subject", "type", "level"];

/// A dataset file that cannot be used; every variant names the file, and the line when there is one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to read dataset `{}`", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("`{}` line {line}: not valid JSON: {source}", path.display())]
    Json { path: PathBuf, line: usize, source: serde_json::Error },
    #[error("`{}` line {line}: expected a JSON object, found {found}", path.display())]
    NotObject { path: PathBuf, line: usize, found: &'static str },
    #[error("`{}` line {line}: field `{field}` is missing{hint}", path.display())]
    MissingField { path: PathBuf, line: usize, field: &'static str, hint: &'static str },
    #[error("`{}` line {line}: field `{field}` must be {expected}", path.display())]
    BadField { path: PathBuf, line: usize, field: &'static str, expected: &'static str },
    #[error("`{}` line {line}: duplicate id `{id}` (first used on line {first})", path.display())]
    DuplicateId { path: PathBuf, line: usize, id: String, first: usize },
}

/// Reads a JSON Lines dataset. Blank lines are skipped; other fields are kept in `Problem::fields`.
///
/// Fields: `problem` (alias `question`), `answer` (any JSON value but null or `[]`; a GSM8K worked
/// answer ending in `#### N` yields `N`; when absent, the last `\boxed{}` of `solution`), and optional `id` (default `<file stem>:<line>`),
/// `subject` (alias `type`, as in the original MATH release), `level` (`3`, `"Level 3"` or null).
pub fn load(path: &Path) -> Result<Vec<Problem>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.into(), source })?;
    // Editors on Windows start UTF-8 files with a byte-order mark; it is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut problems = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let problem = parse_line(path, &stem, line, raw)?;
        if let Some(first) = seen.insert(problem.id.clone(), line) {
            return Err(Error::DuplicateId { path: path.into(), line, id: problem.id, first });
        }
        problems.push(problem);
    }
    Ok(problems)
}

fn parse_line(path: &Path, stem: &str, line: usize, raw: &str) -> Result<Problem, Error> {
    let value: Value =
        serde_json::from_str(raw).map_err(|source| Error::Json { path: path.into(), line, source })?;
    let Value::Object(obj) = value else {
        return Err(Error::NotObject { path: path.into(), line, found: json_kind(&value) });
    };
    let bad = |field, expected| Error::BadField { path: path.into(), line, field, expected };
    let missing = |field, hint| Error::MissingField { path: path.into(), line, field, hint };

    let problem = match text_field(&obj, "problem").or_else(|| text_field(&obj, "question")) {
        Some(Some(p)) => p,
        Some(None) => return Err(bad("problem", "a string")),
        None => return Err(missing("problem", " (nor `question`)")),
    };
    let mut answer_json = None;
    let answer = match obj.get("answer") {
        Some(Value::String(a)) => gsm8k_final(a).unwrap_or_else(|| a.trim().to_string()),
        // GSM8K-like files sometimes hold the bare number; other tasks a list of accepted answers.
        Some(v @ Value::Number(n)) => {
            answer_json = Some(v.clone());
            n.to_string()
        }
        Some(v @ (Value::Array(_) | Value::Object(_) | Value::Bool(_))) => {
            answer_json = Some(v.clone());
            v.to_string()
        }
        Some(Value::Null) | None => match obj.get("solution") {
            Some(Value::String(s)) => crate::grading::extract_boxed(s)
                .or_else(|| gsm8k_final(s))
                .ok_or_else(|| missing("answer", " (and `solution` has no \\boxed{})"))?,
            _ => return Err(missing("answer", " (and no `solution` with \\boxed{})")),
        },
    };
    if answer.is_empty() || answer == "[]" {
        return Err(bad("answer", "a non-empty answer"));
    }
    let id = match obj.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Null) | None => format!("{stem}:{line}"),
        Some(_) => return Err(bad("id", "a non-empty string or a number")),
    };
    // The original MATH release calls the subject `type`.
    let subject = match obj.get("subject").or_else(|| obj.get("type")) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::String(_)) | Some(Value::Null) | None => None,
        Some(_) => return Err(bad("subject", "a string")),
    };
    let level = match obj.get("level") {
        None | Some(Value::Null) => None,
        Some(v) => parse_level(v).ok_or_else(|| bad("level", "1-5, \"Level N\", \"Level ?\" or null"))?,
    };
    let fields = obj.into_iter().filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str())).collect();
    Ok(Problem { id, problem, answer, answer_json, subject, level, fields })
}

/// `Some(Some(text))` for a string field, `Some(None)` when present but not a string.
fn text_field(obj: &Map<String, Value>, name: &str) -> Option<Option<String>> {
    match obj.get(name)? {
        Value::String(s) => Some(Some(s.clone())),
        _ => Some(None),
    }
}

/// GSM8K answers are a worked solution whose last line is `#### 1,000`; the reference is the number.
fn gsm8k_final(answer: &str) -> Option<String> {
    let (_, last) = answer.rsplit_once("####")?;
    Some(last.trim().replace(',', ""))
}

/// MATH copies disagree: `3`, `"3"`, `"Level 3"`, and `"Level ?"` for unknown. `Ok(None)` means unknown.
fn parse_level(v: &Value) -> Option<Option<u8>> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().trim_start_matches("Level").trim().to_string(),
        _ => return None,
    };
    if text == "?" || text.is_empty() {
        return Some(None);
    }
    text.parse::<u8>().ok().map(Some)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Keeps problems whose subject matches one of `subjects`; empty keeps all. Matching ignores case and
/// treats `&`/`and`, `_`, `-` and spaces alike, so `counting_and_probability` finds "Counting & Probability".
pub fn filter_subjects(problems: Vec<Problem>, subjects: &[String]) -> Vec<Problem> {
    if subjects.is_empty() {
        return problems;
    }
    let wanted: Vec<String> = subjects.iter().map(|s| subject_key(s)).collect();
    problems
        .into_iter()
        .filter(|p| p.subject.as_deref().is_some_and(|s| wanted.contains(&subject_key(s))))
        .collect()
}

fn subject_key(s: &str) -> String {
    let spaced = s.to_lowercase().replace('&', " and ").replace(['_', '-'], " ");
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A deterministic train/test split: the problems are shuffled by `seed` (our own splitmix64, so a split
/// never changes with a dependency's version), the test set is taken first and the training set from
/// the rest. Taking test first keeps the test set fixed when only `train_size` changes.
///
/// Defaults: test = 20% rounded (at least 1 when there are 2 or more problems); train = all the rest.
/// Sizes larger than what is available are clamped.
pub fn split(
    problems: Vec<Problem>,
    train_size: Option<usize>,
    test_size: Option<usize>,
    seed: u64,
) -> (Vec<Problem>, Vec<Problem>) {
    let (train, _, test) = split_with_val(problems, train_size, None, test_size, seed);
    (train, test)
}

/// `split` with a validation set drawn after the test set and before the training set (so neither
/// the test set nor, when only `train_size` changes, the validation set moves). `val_size` None: no
/// validation set.
pub fn split_with_val(
    mut problems: Vec<Problem>,
    train_size: Option<usize>,
    val_size: Option<usize>,
    test_size: Option<usize>,
    seed: u64,
) -> (Vec<Problem>, Vec<Problem>, Vec<Problem>) {
    let n = problems.len();
    let mut rng = SplitMix64(seed);
    // Fisher–Yates.
    for i in (1..n).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        problems.swap(i, j);
    }
    let default_test = if n >= 2 { ((n as f64 * 0.2).round() as usize).max(1) } else { 0 };
    let test_n = test_size.unwrap_or(default_test).min(n);
    let mut rest = problems.split_off(test_n);
    let val_n = val_size.unwrap_or(0).min(rest.len());
    let mut train = rest.split_off(val_n);
    let train_n = train_size.unwrap_or(train.len()).min(train.len());
    train.truncate(train_n);
    (train, rest, problems)
}

/// splitmix64 (Steele, Lea, Flood 2014): tiny, well-mixed, and fixed forever.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Hex SHA-256 of a file, recorded in `run.json` so a run names exactly the data it used.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str, subject: Option<&str>) -> Problem {
        Problem {
            id: id.into(),
            problem: "q".into(),
            answer: "1".into(),
            subject: subject.map(Into::into),
            level: None,
            ..Default::default()
        }
    }

    #[test]
    fn splitmix_is_the_reference_sequence() {
        // First outputs for seed 0 as published with the algorithm.
        let mut r = SplitMix64(0);
        assert_eq!(r.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn split_defaults_and_determinism() {
        let all: Vec<Problem> = (0..10).map(|i| p(&i.to_string(), None)).collect();
        let (train, test) = split(all.clone(), None, None, 7);
        assert_eq!((train.len(), test.len()), (8, 2));
        assert_eq!(split(all.clone(), None, None, 7), (train.clone(), test.clone()));
        assert_ne!(split(all.clone(), None, None, 8), (train, test.clone()));
        // The test set does not move when only the training size changes.
        let (small_train, same_test) = split(all.clone(), Some(3), None, 7);
        assert_eq!((small_train.len(), &same_test), (3, &test));
        let (t, s) = split(all.clone(), Some(100), Some(100), 7);
        assert_eq!((t.len(), s.len()), (0, 10));
        assert_eq!(split(all[..2].to_vec(), None, None, 0).1.len(), 1);
        assert_eq!(split(all[..1].to_vec(), None, None, 0).1.len(), 0);
    }

    #[test]
    fn validation_is_drawn_after_the_test_set() {
        let all: Vec<Problem> = (0..20).map(|i| p(&i.to_string(), None)).collect();
        let (train, test) = split(all.clone(), None, None, 3);
        let (vtrain, val, vtest) = split_with_val(all.clone(), None, Some(5), None, 3);
        assert_eq!((vtest, val.len(), vtrain.len()), (test.clone(), 5, 11));
        let ids = |v: &[Problem]| v.iter().map(|p| p.id.clone()).collect::<std::collections::HashSet<_>>();
        assert!(ids(&val).is_disjoint(&ids(&vtrain)) && ids(&val).is_disjoint(&ids(&test)));
        assert!(ids(&vtrain).is_subset(&ids(&train)));
        // Neither moves when only the training size changes.
        let (small, same_val, same_test) = split_with_val(all, Some(4), Some(5), None, 3);
        assert_eq!((small.len(), same_val, same_test), (4, val, test));
    }

    #[test]
    fn subjects_match_loosely() {
        let all = vec![p("a", Some("Counting & Probability")), p("b", Some("Algebra")), p("c", None)];
        let keep = |s: &[&str]| -> Vec<String> {
            let s: Vec<String> = s.iter().map(|x| x.to_string()).collect();
            filter_subjects(all.clone(), &s).into_iter().map(|p| p.id).collect()
        };
        assert_eq!(keep(&[]), ["a", "b", "c"]);
        assert_eq!(keep(&["counting_and_probability"]), ["a"]);
        assert_eq!(keep(&["ALGEBRA", "geometry"]), ["b"]);
    }

    #[test]
    fn levels_in_every_spelling() {
        use serde_json::json;
        assert_eq!(parse_level(&json!(3)), Some(Some(3)));
        assert_eq!(parse_level(&json!("Level 5")), Some(Some(5)));
        assert_eq!(parse_level(&json!("Level ?")), Some(None));
        assert_eq!(parse_level(&json!("hard")), None);
    }
}
