//! A duel's save directory: `duel.json` (scenario, models, settings and, once done, the summary) and
//! `rounds/NNNN.json`, one record per round, each written atomically as the round ends, so a kill
//! loses no finished round.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::round::{PerSide, RoundRecord};
use super::scenario::Scenario;
use super::summary::Summary;

pub const DUEL_FILE: &str = "duel.json";
pub const ROUNDS_DIR: &str = "rounds";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DuelInfo {
    pub scenario: Scenario,
    pub models: PerSide<String>,
    pub max_turns: usize,
    /// Rounds asked for; `summary.rounds` says how many finished.
    pub rounds: usize,
    /// Round r used seed `seed + r - 1`.
    pub seed: u64,
    pub started: String,
    /// Set once the duel ends (all rounds, or an interrupt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Every call made, the rounds dropped unfinished by an interrupt or a stop included (the
    /// summary's usage counts finished rounds only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent: Option<crate::llm::Usage>,
    #[serde(default)]
    pub interrupted: bool,
}

pub fn round_path(dir: &Path, round: usize) -> PathBuf {
    dir.join(ROUNDS_DIR).join(format!("{round:04}.json"))
}

/// Makes a new save directory: `dir` itself, which must not hold a duel already (its rounds would mix
/// with this one's), or with `fresh`, the first of `dir`, `dir-2`, `dir-3`, ... that does not exist.
pub fn create(dir: &Path, fresh: bool) -> Result<PathBuf, String> {
    let taken = |e: &std::io::Error| e.kind() == std::io::ErrorKind::AlreadyExists;
    let mut n = 1;
    loop {
        let path = if n == 1 { dir.to_path_buf() } else { PathBuf::from(format!("{}-{n}", dir.display())) };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
        }
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if taken(&e) && fresh => {
                n += 1;
                continue;
            }
            Err(e) if taken(&e) && !path.join(DUEL_FILE).exists() && !path.join(ROUNDS_DIR).exists() => {}
            Err(e) if taken(&e) => {
                return Err(format!(
                    "`{}` already holds a duel: choose another --save directory (its rounds would mix with this one's)",
                    path.display()
                ));
            }
            Err(e) => return Err(format!("cannot create `{}`: {e}", path.display())),
        }
        let rounds = path.join(ROUNDS_DIR);
        std::fs::create_dir(&rounds).map_err(|e| format!("cannot create `{}`: {e}", rounds.display()))?;
        return Ok(path);
    }
}

pub fn write_info(dir: &Path, info: &DuelInfo) -> std::io::Result<()> {
    crate::fsio::write_json_atomic(&dir.join(DUEL_FILE), info)
}

pub fn write_round(dir: &Path, record: &RoundRecord) -> std::io::Result<()> {
    crate::fsio::write_json_atomic(&round_path(dir, record.round), record)
}

/// A saved duel: its info and every round record found, in round order. An error names the file.
pub fn load(dir: &Path) -> Result<(DuelInfo, Vec<RoundRecord>), String> {
    let info_path = dir.join(DUEL_FILE);
    let text = std::fs::read_to_string(&info_path)
        .map_err(|e| format!("`{}` is not a duel save: cannot read {DUEL_FILE}: {e}", dir.display()))?;
    let info: DuelInfo = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", info_path.display()))?;
    let mut records = Vec::new();
    let rounds = dir.join(ROUNDS_DIR);
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&rounds) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("cannot list `{}`: {e}", rounds.display())),
    };
    paths.retain(|p| p.extension().is_some_and(|x| x == "json"));
    paths.sort();
    for path in paths {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let record: RoundRecord =
            serde_json::from_str(&text).map_err(|e| format!("{}: line {}: {e}", path.display(), e.line()))?;
        records.push(record);
    }
    Ok((info, records))
}
