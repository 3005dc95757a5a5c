//! Sandboxed execution of LLM-written Python: long-lived per-conversation sessions, learned-function
//! calls, and validation of proposed functions. (API skeleton: the implementation lands with issue 3.)

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::functions::{FunctionDef, Registry};

/// Limits and isolation for executed code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// The interpreter (see `find_python`).
    pub python: PathBuf,
    /// Wall-clock limit per execution; the process group is killed when it passes.
    pub timeout: Duration,
    /// Address-space cap per worker.
    pub memory_bytes: u64,
    /// Process-count cap per worker.
    pub max_processes: u64,
    /// Output kept per execution before truncation.
    pub output_cap_bytes: usize,
    /// Run without isolation when bubblewrap is unusable (the user asked for it, loudly).
    pub allow_unsandboxed: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            python: find_python(),
            timeout: Duration::from_secs(10),
            memory_bytes: 2 << 30,
            max_processes: 64,
            output_cap_bytes: 16 * 1024,
            allow_unsandboxed: false,
        }
    }
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
    /// For function calls: repr of the return value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    pub duration_ms: u64,
    pub truncated: bool,
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
}

/// Starts sessions; checks once whether isolation is available.
pub struct Sandbox {
    pub config: SandboxConfig,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Sandbox, Error> {
        Ok(Sandbox { config })
    }

    /// A fresh, isolated Python session with the registry's functions defined.
    pub async fn session(&self, registry: &Registry) -> Result<Session, Error> {
        let _ = registry;
        todo!("issue 3")
    }

    /// Checks a proposed function inside the sandbox: the code compiles, defines a callable named
    /// `def.name`, and its declared packages import. `Err` holds the message shown to the optimizer.
    pub async fn validate_function(&self, def: &FunctionDef) -> Result<Result<(), String>, Error> {
        let _ = def;
        todo!("issue 3")
    }
}

/// One conversation's Python process: variables survive between blocks; no code is replayed.
pub struct Session {}

impl Session {
    pub async fn run_code(&mut self, code: &str) -> Execution {
        let _ = code;
        todo!("issue 3")
    }

    /// Calls a learned function by name with raw JSON arguments (an object).
    pub async fn call_function(&mut self, name: &str, arguments_json: &str) -> Execution {
        let _ = (name, arguments_json);
        todo!("issue 3")
    }

    /// Ends the worker (also done on drop).
    pub async fn close(self) {}
}
