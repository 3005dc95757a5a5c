//! TEMPORARY stand-in (trainer branch) for the grade branch's dataset loader: the promised API only.
//! Replaced by the real module when the grade branch merges into main.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub id: String,
    pub problem: String,
    pub answer: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub level: Option<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to read dataset `{path}`")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("Invalid dataset `{path}` line {line}: {message}")]
    Line { path: PathBuf, line: usize, message: String },
}

pub fn load(path: &Path) -> Result<Vec<Problem>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| Error::Line {
            path: path.into(),
            line: i + 1,
            message: e.to_string(),
        })?;
        let get = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        out.push(Problem {
            id: get("id").unwrap_or_else(|| format!("{}", i + 1)),
            problem: get("problem").or_else(|| get("question")).unwrap_or_default(),
            answer: get("answer").unwrap_or_default(),
            subject: get("subject"),
            level: None,
        });
    }
    Ok(out)
}

pub fn filter_subjects(problems: Vec<Problem>, subjects: &[String]) -> Vec<Problem> {
    if subjects.is_empty() {
        return problems;
    }
    problems.into_iter().filter(|p| p.subject.as_ref().is_some_and(|s| subjects.contains(s))).collect()
}

pub fn split(
    problems: Vec<Problem>,
    train_size: Option<usize>,
    test_size: Option<usize>,
    _seed: u64,
) -> (Vec<Problem>, Vec<Problem>) {
    let n = problems.len();
    let train_n = train_size.unwrap_or(n / 2).min(n);
    let mut train = problems;
    let mut test = train.split_off(train_n);
    if let Some(t) = test_size {
        test.truncate(t);
    }
    (train, test)
}

pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path)?;
    Ok(hex::encode(sha2::Sha256::digest(&bytes)))
}
