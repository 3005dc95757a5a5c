//! Sandboxed execution of LLM-written Python: long-lived per-conversation sessions, learned-function
//! calls, and validation of proposed functions. This file owns the public types.
//!
//! Dependencies run one way, top to bottom:
//! - `deferred` — `Deferred`: a `Sandbox` probed on a thread of its own while the command goes on
//! - `sandbox`  — `Sandbox`: starts the fork servers and sessions, validates functions
//! - `session`  — `Session`: code blocks and function calls, restart after a timeout or crash
//! - `worker`   — one worker process: spawn or fork, JSON-lines protocol, timeout, kill and reap
//! - `fork_server` — one sandboxed interpreter with the modules imported, forking a child per session
//! - `launcher` — the bubblewrap probe and every sandboxed interpreter's command line
//! - `view`     — what code sees of the file system: the allowlist, the masks of private paths
//! - `memcg`    — a memory cgroup per session where agentopt can make them
//! - `reply`    — worker replies into `Execution`s, output truncation (the text the assistant reads of
//!   one is `agent::proxy`'s)
//! - `lines`    — the JSON-lines protocol of every Python worker (sessions, fork server, math-verify)
//! - `runner`   — `Runner`/`CodeSession`: the executor the conversation loop, the optimizer and `python:`
//!   metrics use (a fake one for tests)
//! - `scratch`  — the scratch directories under `$TMPDIR`, and removing those of dead processes
//! - `seccomp`  — the system-call filter every sandboxed worker installs before user code
//! - `worker.py` — the embedded Python side of the protocol
//!
//! Isolation (SPEC §6): each worker runs under bubblewrap in its own PID, network, IPC and UTS
//! namespaces, dies with agentopt, and sees an allowlist of the file system read-only (`/usr`, a few
//! `/etc` files, the interpreter's directories), with agentopt's private paths (config list, cache,
//! runs, datasets, checkout) masked even there, a private `/tmp` (size-capped tmpfs) and a private
//! writable work directory at `/home/sandbox` (a host temp dir removed with the session). No
//! descriptor but the protocol's reaches it. The environment is rebuilt from scratch. The worker sets
//! RLIMIT_AS/NPROC/FSIZE/CPU on itself before any user code; when agentopt runs as root it also drops to a uid of its own, since RLIMIT_NPROC
//! never binds uid 0 (so bwrap gets no user namespace then: one would keep uid 0). Without a working
//! bwrap, nothing runs unless `allow_unsandboxed` (`--unsafe-no-sandbox`), which warns loudly.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod deferred;
mod fork_server;
mod launcher;
pub mod lines;
mod memcg;
mod reply;
pub mod runner;
mod sandbox;
mod scratch;
mod seccomp;
mod session;
mod view;
mod worker;

pub use deferred::Deferred;
pub use runner::{CodeSession, Runner};
pub use sandbox::Sandbox;
pub use session::Session;

/// Limits and isolation for executed code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// The interpreter (see `find_python`).
    pub python: PathBuf,
    /// Wall-clock limit per execution; the process group is killed when it passes.
    pub timeout: Duration,
    /// Address-space cap per worker process; also each session's whole memory (its memory cgroup's
    /// limit) where agentopt can make cgroups (see `memcg`).
    pub memory_bytes: u64,
    /// Process-count cap per worker (threads count too).
    pub max_processes: u64,
    /// Largest file executed code may write (RLIMIT_FSIZE).
    #[serde(default = "default_file_size")]
    pub file_size_bytes: u64,
    /// Output kept per execution before truncation.
    pub output_cap_bytes: usize,
    /// Run without isolation when bubblewrap is unusable (the user asked for it, loudly).
    pub allow_unsandboxed: bool,
    /// Fork sessions from one sandboxed server where that keeps them apart (root: a uid each); off,
    /// every session gets a sandbox of its own. Default on; env `AGENTOPT_FORK_SERVER=0` turns it off.
    #[serde(default = "fork_server_default")]
    pub fork_server: bool,
    /// Children each fork server keeps forked ahead of demand (a burst of this many sessions starts
    /// without waiting for a fork); commands size it to `--concurrency`.
    #[serde(default = "default_spares")]
    pub spare_sessions: usize,
    /// Host paths code must never see, even where the allowlist would show them: the config list in
    /// use, the cache, the runs, the datasets (`Sandbox::new` adds agentopt's cwd and checkout).
    /// Paths that do not exist when the sandbox starts are skipped.
    #[serde(default)]
    pub private: Vec<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            python: find_python(),
            timeout: Duration::from_secs(10),
            memory_bytes: 2 << 30,
            max_processes: 64,
            file_size_bytes: default_file_size(),
            output_cap_bytes: 16 * 1024,
            allow_unsandboxed: false,
            fork_server: fork_server_default(),
            spare_sessions: default_spares(),
            private: Vec::new(),
        }
    }
}

fn default_file_size() -> u64 {
    256 << 20
}

fn default_spares() -> usize {
    4
}

fn fork_server_default() -> bool {
    crate::env::var(crate::env::AGENTOPT_FORK_SERVER).is_none_or(|v| v.trim() != "0")
}

/// The Python interpreter: `$AGENTOPT_PYTHON`, else `.venv/bin/python` in the working directory or
/// beside the executable's ancestors (a cargo build inside the repository), else `python3`.
pub fn find_python() -> PathBuf {
    if let Some(p) = crate::env::var(crate::env::AGENTOPT_PYTHON) {
        return PathBuf::from(p);
    }
    let venv = |dir: &std::path::Path| dir.join(".venv/bin/python");
    if let Ok(cwd) = std::env::current_dir()
        && venv(&cwd).exists()
    {
        return venv(&cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            if venv(dir).exists() {
                return venv(dir);
            }
        }
    }
    PathBuf::from("python3")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecStatus {
    /// Ran to completion.
    Ok,
    /// Raised an exception (traceback in `stderr`).
    Error,
    /// Killed at the wall-clock limit; the session was restarted.
    Timeout,
    /// The worker died (memory, signal); the session was restarted.
    Crashed,
}

/// The outcome of one code block or function call: data, never a Rust error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// The code block, or `name(arguments)` for a function call.
    pub code: String,
    pub status: ExecStatus,
    pub stdout: String,
    pub stderr: String,
    /// For function calls: repr of the return value. For code blocks: repr of a final bare expression
    /// when it is not None (as the Python REPL shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    pub duration_ms: u64,
    pub truncated: bool,
    /// `sh` or `bash` for a shell block (chat runs those too); absent for Python and function calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "No sandbox available ({reason}); refusing to run generated code. Install bubblewrap \
         (apt-get install bubblewrap) or pass --unsafe-no-sandbox"
    )]
    NoSandbox { reason: String },
    #[error("Failed to start the Python worker `{python}`")]
    Spawn { python: PathBuf, source: std::io::Error },
    #[error("Python worker protocol error: {0}")]
    Protocol(String),
    #[error("Failed to prepare the sandbox work directory")]
    Workdir(#[source] std::io::Error),
    /// The probe's error, as every caller waiting on a `Deferred` sandbox gets it.
    #[error(transparent)]
    Probe(std::sync::Arc<Error>),
}
