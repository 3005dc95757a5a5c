//! Every path of `runs/<run>/` (SPEC §8), how each is written — whole files atomically (temp file +
//! rename), JSON-lines files appended and fsynced one record at a time so a killed run loses nothing
//! it completed — and how each is read back into its `record` type.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::record::{Candidate, ConversationRecord, Event, RunInfo, Summary};

/// Which set of conversations a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Training epoch N on the training split.
    Epoch(usize),
    /// Epoch N's registry on the validation split (`--val`, `--val-size`).
    Val(usize),
    /// Candidate C of the optimizer step before epoch N on the training split (`--proposals`).
    Candidate(usize, usize),
    /// The test split with the initial registry.
    Before,
    /// The test split with the learned registry.
    After,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Epoch(n) => write!(f, "epoch {n}"),
            Phase::Val(n) => write!(f, "epoch {n} validation"),
            Phase::Candidate(n, c) => write!(f, "epoch {n} candidate {c}"),
            Phase::Before => write!(f, "eval before"),
            Phase::After => write!(f, "eval after"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to write `{path}`")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("Failed to read `{path}`")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("Invalid JSON in `{path}` at line {line}: {message}")]
    Parse { path: PathBuf, line: usize, message: String },
    #[error(
        "Run directory `{path}` already exists and is not empty (pick another --run name, or `agentopt resume` it)"
    )]
    Exists { path: PathBuf },
    #[error("No run at `{path}` (no run.json)")]
    NotFound { path: PathBuf },
    #[error("Run `{path}` is in use by another agentopt process")]
    Busy { path: PathBuf },
}

/// Held while a process works on a run; released when dropped or when the process dies (even by
/// kill -9), so a crashed run never stays locked.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// One run's directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// A new run directory `runs_dir/name`; refuses to reuse a run that has started.
    pub fn create(runs_dir: &Path, name: &str) -> Result<RunDir, Error> {
        let root = runs_dir.join(name);
        // Any leftover (even without run.json) could be mistaken for this run's progress.
        let occupied = std::fs::read_dir(&root).is_ok_and(|mut entries| entries.next().is_some());
        if occupied {
            return Err(Error::Exists { path: root });
        }
        std::fs::create_dir_all(&root).map_err(|source| Error::Write { path: root.clone(), source })?;
        Ok(RunDir { root })
    }

    /// An existing run: `name_or_path` is a directory holding run.json, or a name under `runs_dir`.
    pub fn open(runs_dir: &Path, name_or_path: &str) -> Result<RunDir, Error> {
        let direct = PathBuf::from(name_or_path);
        let root = if direct.join("run.json").is_file() { direct } else { runs_dir.join(name_or_path) };
        if !root.join("run.json").is_file() {
            return Err(Error::NotFound { path: root });
        }
        Ok(RunDir { root })
    }

    /// A run directory by path, for readers that found it themselves.
    pub fn at(root: &Path) -> RunDir {
        RunDir { root: root.to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The run's name (its directory name).
    pub fn name(&self) -> String {
        self.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
    pub fn run_json(&self) -> PathBuf {
        self.root.join("run.json")
    }
    pub fn events(&self) -> PathBuf {
        self.root.join("events.jsonl")
    }
    /// Every model call of the run (`trainer::ledger`).
    pub fn calls(&self) -> PathBuf {
        self.root.join("calls.jsonl")
    }
    /// Where the epoch directories live.
    pub fn epochs_dir(&self) -> PathBuf {
        self.root.join("epochs")
    }
    pub fn epoch_dir(&self, epoch: usize) -> PathBuf {
        self.epochs_dir().join(format!("{epoch:03}"))
    }
    pub fn epoch_registry(&self, epoch: usize) -> PathBuf {
        self.epoch_dir(epoch).join("registry.json")
    }
    /// The epochs that have a directory, in order.
    pub fn epoch_numbers(&self) -> std::io::Result<Vec<usize>> {
        let rd = match std::fs::read_dir(self.epochs_dir()) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let mut out: Vec<usize> = rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
        out.sort();
        Ok(out)
    }
    /// Where candidate `c` of the step before epoch `epoch` lives (`--proposals`).
    pub fn candidate_dir(&self, epoch: usize, c: usize) -> PathBuf {
        self.epoch_dir(epoch).join("candidates").join(c.to_string())
    }
    pub fn candidate_registry(&self, epoch: usize, c: usize) -> PathBuf {
        self.candidate_dir(epoch, c).join("registry.json")
    }
    /// The scores of the step's candidates, and which one was chosen.
    pub fn candidates(&self, epoch: usize) -> PathBuf {
        self.epoch_dir(epoch).join("candidates.json")
    }
    pub fn best_registry(&self) -> PathBuf {
        self.root.join("best").join("registry.json")
    }
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }
    /// Where a phase's conversation records live.
    pub fn conversations(&self, phase: Phase) -> PathBuf {
        match phase {
            Phase::Epoch(n) => self.epoch_dir(n).join("conversations.jsonl"),
            Phase::Val(n) => self.epoch_dir(n).join("val.jsonl"),
            Phase::Candidate(n, c) => self.candidate_dir(n, c).join("conversations.jsonl"),
            Phase::Before => self.root.join("eval").join("before.jsonl"),
            Phase::After => self.root.join("eval").join("after.jsonl"),
        }
    }

    /// Whether a process holds the run's lock now: a run.json saying `running` without it is a run
    /// that was killed (its lock died with it).
    pub fn lock_held(&self) -> bool {
        use std::os::fd::AsRawFd;
        // Opened, never created: readers leave no trace, and a run without a lock file never had one.
        let file = match std::fs::File::open(self.root.join(".lock")) {
            Ok(file) => file,
            Err(e) => return e.kind() != std::io::ErrorKind::NotFound,
        };
        // SAFETY: flock on a descriptor we own; the probe's lock goes with the descriptor.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
    }

    /// Takes the run's lock (`.lock`, an advisory `flock`): two processes never write one run.
    pub fn lock(&self) -> Result<RunLock, Error> {
        use std::os::fd::AsRawFd;
        let path = self.root.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Write { path: path.clone(), source })?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if locked { Ok(RunLock { _file: file }) } else { Err(Error::Busy { path: self.root.clone() }) }
    }

    /// Appends one event (with a UTC timestamp) to events.jsonl and fsyncs it.
    pub fn append_event(&self, event: &Event) -> Result<(), Error> {
        #[derive(Serialize)]
        struct Timed<'a> {
            #[serde(flatten)]
            event: &'a Event,
            time: String,
        }
        append_line(&self.events(), &Timed { event, time: now() })
    }

    /// Every complete event, in order. A line that is not an event is left out with a warning naming
    /// the file and line (a torn last line from a kill is a write cut short: left out silently).
    pub fn read_events(&self, warnings: &mut Vec<String>) -> Result<Vec<Event>, Error> {
        read_lines_warning(&self.events(), warnings)
    }

    /// run.json.
    pub fn read_info(&self) -> Result<RunInfo, Error> {
        read_json(&self.run_json())
    }

    /// summary.json, when the run has written one.
    pub fn read_summary(&self) -> Result<Option<Summary>, Error> {
        read_json_if_present(&self.summary())
    }

    /// A phase's conversation records (none when the phase has not started).
    pub fn read_records(&self, phase: Phase) -> Result<Vec<ConversationRecord>, Error> {
        read_lines(&self.conversations(phase))
    }

    /// The candidates of every step that had several (`--proposals`), by epoch.
    pub fn read_candidates(&self, epochs: usize) -> Vec<(usize, Vec<Candidate>)> {
        (0..epochs)
            .filter_map(|e| {
                let list: Vec<Candidate> = read_json(&self.candidates(e)).ok()?;
                Some((e, list))
            })
            .collect()
    }
}

/// Pretty JSON written atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    crate::fsio::write_json_atomic(path, value).map_err(|source| Error::Write { path: path.into(), source })
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
    serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.into(),
        line: e.line(),
        message: e.to_string(),
    })
}

/// Appends one compact JSON line and fsyncs, so the record survives a kill the moment this returns.
pub fn append_line<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let werr = |source| Error::Write { path: path.into(), source };
    let mut line = serde_json::to_vec(value).map_err(|e| werr(std::io::Error::other(e)))?;
    line.push(b'\n');
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(werr)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(werr)?;
    file.write_all(&line).map_err(werr)?;
    file.sync_data().map_err(werr)
}

/// The JSON lines of a file (missing file: none). A last line without its newline is a write torn by
/// a kill and is skipped; any other bad line is an error.
pub fn read_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, Error> {
    parse_lines(path)?
        .into_iter()
        .map(|(line, parsed)| parsed.map_err(|message| Error::Parse { path: path.into(), line, message }))
        .collect()
}

/// A line's number and what it parsed to (or why it did not).
type Parsed<T> = (usize, Result<T, String>);

/// Each complete, non-blank line of a file with its number and what it parsed to.
fn parse_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<Parsed<T>>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Read { path: path.into(), source }),
    };
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    Ok(complete
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| (i + 1, serde_json::from_str(line).map_err(|e| e.to_string())))
        .collect())
}

/// `read_json`, `None` for a missing file.
pub fn read_json_if_present<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => read_json(path).map(Some),
    }
}

/// `read_lines` for readers that go on past a bad line: it is left out, with a warning naming the
/// file, the line and what is wrong with it.
pub fn read_lines_warning<T: DeserializeOwned>(
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<T>, Error> {
    let mut out = Vec::new();
    for (line, parsed) in parse_lines(path)? {
        match parsed {
            Ok(value) => out.push(value),
            Err(message) => {
                warnings.push(format!("`{}` line {line}: {message} (line skipped)", path.display()))
            }
        }
    }
    Ok(out)
}

/// Replaces a JSON-lines file atomically with these records (one compact line each).
pub fn write_lines<T: Serialize>(path: &Path, values: &[T]) -> Result<(), Error> {
    let werr = |source| Error::Write { path: path.into(), source };
    let mut bytes = Vec::new();
    for v in values {
        serde_json::to_writer(&mut bytes, v).map_err(|e| werr(std::io::Error::other(e)))?;
        bytes.push(b'\n');
    }
    crate::fsio::write_atomic(path, &bytes).map_err(werr)
}

/// Drops a torn last line (no trailing newline) so later appends start on a fresh line.
pub fn repair_tail(path: &Path) -> Result<(), Error> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(Error::Read { path: path.into(), source }),
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    crate::fsio::write_atomic(path, &bytes[..keep])
        .map_err(|source| Error::Write { path: path.into(), source })
}

/// Current UTC time, RFC 3339.
pub fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A default run name from the current UTC time, e.g. `20261123-164636`.
pub fn default_run_name() -> String {
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    time::OffsetDateTime::now_utc().format(&fmt).unwrap_or_else(|_| "run".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_spec() {
        let d = tempfile::tempdir().unwrap();
        let run = RunDir::create(d.path(), "r").unwrap();
        assert!(run.epoch_registry(3).ends_with("r/epochs/003/registry.json"));
        assert!(run.conversations(Phase::Epoch(0)).ends_with("epochs/000/conversations.jsonl"));
        assert!(run.conversations(Phase::Before).ends_with("eval/before.jsonl"));
        assert!(run.conversations(Phase::After).ends_with("eval/after.jsonl"));
        assert!(run.best_registry().ends_with("best/registry.json"));
        assert!(RunDir::create(d.path(), "r").is_ok(), "an empty directory may be reused");
        write_json(&run.run_json(), &serde_json::json!({})).unwrap();
        assert!(matches!(RunDir::create(d.path(), "r"), Err(Error::Exists { .. })));
        assert_eq!(RunDir::open(d.path(), "r").unwrap().name(), "r");
        assert!(RunDir::open(d.path(), run.root().to_str().unwrap()).is_ok());
        assert!(RunDir::open(d.path(), "nope").is_err());
    }

    #[test]
    fn one_process_at_a_time() {
        let d = tempfile::tempdir().unwrap();
        let run = RunDir::create(d.path(), "r").unwrap();
        assert!(!run.lock_held());
        assert!(!d.path().join("r/.lock").exists(), "probing leaves no lock file");
        let held = run.lock().unwrap();
        assert!(run.lock_held());
        // flock locks belong to open file descriptions: a second open conflicts even in-process.
        assert!(matches!(run.lock(), Err(Error::Busy { .. })));
        drop(held);
        assert!(!run.lock_held());
        run.lock().unwrap();
    }

    #[test]
    fn torn_last_line_is_skipped_and_repaired() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.jsonl");
        append_line(&p, &serde_json::json!({"a": 1})).unwrap();
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"{\"a\": 2").unwrap();
        let v: Vec<serde_json::Value> = read_lines(&p).unwrap();
        assert_eq!(v.len(), 1);
        repair_tail(&p).unwrap();
        append_line(&p, &serde_json::json!({"a": 3})).unwrap();
        let v: Vec<serde_json::Value> = read_lines(&p).unwrap();
        assert_eq!(v, vec![serde_json::json!({"a": 1}), serde_json::json!({"a": 3})]);
    }
}
