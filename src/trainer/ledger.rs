//! The run's call ledger (`calls.jsonl`): a line when a model call is sent and one when it settles,
//! so what a run spent survives Ctrl-C (calls dropped in flight) and kill -9 (calls never settled).
//! Conversation records only hold the calls of conversations that completed; the ledger holds all.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::llm::Usage;
use crate::run_dir;

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Entry {
    /// A request is about to go out.
    Sent,
    /// Its reply arrived, with what the provider said it cost.
    Replied { usage: Usage },
    /// It ended in an error (nothing billed for it is known).
    Failed,
    /// It was abandoned in flight (Ctrl-C): its cost is unknown, so it is counted at the dearest
    /// call seen so far, as the budget does.
    Dropped { usd: f64 },
    /// What a run made before there was a ledger had spent (read from its records), written once
    /// when such a run is resumed.
    Earlier { usage: Usage },
}

/// The open ledger of a run; appends are one `write` each (no fsync: a kill keeps them, only a
/// power cut can lose the last few).
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl Ledger {
    pub fn open(path: &Path) -> Result<Ledger, run_dir::Error> {
        run_dir::repair_tail(path)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| run_dir::Error::Write { path: path.into(), source })?;
        Ok(Ledger { path: path.into(), file: Mutex::new(file) })
    }

    /// Appends an entry. A failed write is logged, not fatal: the call itself went through, and
    /// stopping a run over its bookkeeping would lose more than it saves.
    pub fn record(&self, entry: &Entry) {
        let mut line = serde_json::to_vec(entry).unwrap_or_default();
        line.push(b'\n');
        let written = self.file.lock().map(|mut f| f.write_all(&line));
        if !matches!(written, Ok(Ok(()))) {
            tracing::warn!("could not append to the call ledger `{}`", self.path.display());
        }
    }
}

/// What the calls of a ledger cost: replies as billed, dropped calls at their estimate, and calls
/// sent but never settled (the process was killed) at the dearest call of the ledger. Every request
/// that may have reached a server counts as a call (a reply from the cache says it did not: its
/// usage counts no call). `None` when the run has no ledger (made before there was one).
pub fn spent(path: &Path) -> Result<Option<Usage>, run_dir::Error> {
    if !path.exists() {
        return Ok(None);
    }
    let entries: Vec<Entry> = run_dir::read_lines(path)?;
    let (mut usage, mut sent, mut settled, mut dearest) = (Usage::default(), 0u64, 0u64, 0f64);
    for entry in &entries {
        match entry {
            Entry::Sent => sent += 1,
            Entry::Replied { usage: u } => {
                settled += 1;
                dearest = dearest.max(u.usd);
                usage.add(u);
            }
            Entry::Failed => {
                settled += 1;
                usage.add(&Usage { calls: 1, ..Usage::default() });
            }
            Entry::Dropped { usd } => {
                settled += 1;
                usage.add(&Usage { calls: 1, usd: *usd, ..Usage::default() });
            }
            Entry::Earlier { usage: u } => usage.add(u),
        }
    }
    let unsettled = sent.saturating_sub(settled);
    usage.add(&Usage { calls: unsettled, usd: unsettled as f64 * dearest, ..Usage::default() });
    Ok(Some(usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sent_call_counts_and_unsettled_ones_cost_the_dearest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        assert_eq!(spent(&path).unwrap(), None);
        let ledger = Ledger::open(&path).unwrap();
        let reply =
            |usd| Entry::Replied { usage: Usage { calls: 1, input_tokens: 10, output_tokens: 2, usd } };
        for entry in
            [Entry::Sent, reply(0.25), Entry::Sent, Entry::Failed, Entry::Sent, Entry::Dropped { usd: 0.25 }]
        {
            ledger.record(&entry);
        }
        ledger.record(&Entry::Sent); // killed before it settled
        ledger.record(&Entry::Sent);
        ledger.record(&reply(0.5));
        ledger.record(&Entry::Sent); // a reply from the cache: no call, no cost
        ledger.record(&Entry::Replied { usage: Usage::default() });
        let usage = spent(&path).unwrap().unwrap();
        assert_eq!((usage.calls, usage.input_tokens, usage.output_tokens), (5, 20, 4));
        // 0.25 + 0.5 billed, 0.25 dropped, one unsettled at the dearest (0.5).
        assert!((usage.usd - 1.5).abs() < 1e-9, "{usage:?}");
    }
}
