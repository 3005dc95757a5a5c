//! The math-verify client: a small pool of long-lived Python workers running `grader.py`, spoken to in
//! JSON lines. A case that overruns its deadline gets its worker killed (a fresh one replaces it
//! lazily), so one pathological expression cannot hang grading.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::BufReader;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

use crate::exec::lines;

const SCRIPT: &str = include_str!("grader.py");
/// Importing sympy + math_verify from a cold disk can take several seconds.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Address-space cap per worker, so a runaway expression fails instead of exhausting the machine.
const MEMORY_BYTES: u64 = 4 << 30;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to start the math-verify worker `{}`", python.display())]
    Spawn { python: PathBuf, source: std::io::Error },
    #[error("The math-verify worker is unusable: {0}")]
    Unusable(String),
    #[error("math-verify did not answer within {0:?}")]
    Timeout(Duration),
    #[error("The math-verify worker stopped: {0}")]
    Died(String),
}

#[derive(Serialize)]
struct Request<'a> {
    id: u64,
    given: &'a str,
    reference: &'a str,
    timeout: u64,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    equal: bool,
    #[serde(default)]
    ready: Option<bool>,
    #[serde(default)]
    error: Option<String>,
}

struct Worker {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

/// Up to `size` workers, started on first use; idle ones are reused.
pub struct Pool {
    python: PathBuf,
    timeout: Duration,
    idle: Mutex<Vec<Worker>>,
    permits: Semaphore,
    /// Set once the worker has failed to import math_verify: retrying would only repeat the failure.
    broken: Mutex<Option<String>>,
}

impl Pool {
    pub fn new(python: PathBuf, timeout: Duration, size: usize) -> Pool {
        Pool {
            python,
            timeout,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size.max(1)),
            broken: Mutex::new(None),
        }
    }

    /// Asks math-verify whether `given` equals `reference` (both normalised, unboxed LaTeX).
    pub async fn verify(&self, given: &str, reference: &str) -> Result<bool, Error> {
        if let Some(reason) = self.broken.lock().expect("poisoned").clone() {
            return Err(Error::Unusable(reason));
        }
        let _permit = self.permits.acquire().await.expect("semaphore never closed");
        let idle = self.idle.lock().expect("poisoned").pop();
        let mut worker = match idle {
            Some(w) => w,
            None => self.spawn().await?,
        };
        // math_verify's own alarms are switched off (0): when they fire, it silently answers "not
        // equal", which a loaded machine turns into wrong verdicts. Our deadline kills and says "timeout".
        let inner = 0;
        let id = worker.next_id;
        worker.next_id += 1;
        let request = Request { id, given, reference, timeout: inner };
        match tokio::time::timeout(self.timeout, exchange(&mut worker, &request)).await {
            Ok(Ok(reply)) => {
                if reply.id != Some(id) {
                    return Err(Error::Died(format!("reply for request {:?}, expected {id}", reply.id)));
                }
                self.idle.lock().expect("poisoned").push(worker);
                if let Some(e) = reply.error {
                    tracing::debug!("math-verify could not compare {given:?} and {reference:?}: {e}");
                }
                Ok(reply.equal)
            }
            // Dropping the worker kills it (kill_on_drop); the next case starts a fresh one.
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Timeout(self.timeout)),
        }
    }

    async fn spawn(&self) -> Result<Worker, Error> {
        let mut cmd = Command::new(&self.python);
        cmd.arg("-I")
            .arg("-c")
            .arg(SCRIPT)
            // The worker only parses strings: it gets no API keys, nor anything else of ours.
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("PYTHONIOENCODING", "utf-8")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        #[cfg(unix)]
        // SAFETY: between fork and exec we only call setrlimit, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit { rlim_cur: MEMORY_BYTES as _, rlim_max: MEMORY_BYTES as _ };
                libc::setrlimit(libc::RLIMIT_AS, &limit);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| Error::Spawn { python: self.python.clone(), source })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut worker = Worker { _child: child, stdin, stdout, next_id: 0 };
        let ready = tokio::time::timeout(STARTUP_TIMEOUT, read_reply(&mut worker)).await;
        match ready {
            Ok(Ok(Reply { ready: Some(true), .. })) => Ok(worker),
            Ok(Ok(reply)) => {
                let reason = reply.error.unwrap_or_else(|| "no ready line".into());
                *self.broken.lock().expect("poisoned") = Some(reason.clone());
                Err(Error::Unusable(reason))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Timeout(STARTUP_TIMEOUT)),
        }
    }
}

async fn exchange(worker: &mut Worker, request: &Request<'_>) -> Result<Reply, Error> {
    lines::send(&mut worker.stdin, request).await.map_err(|e| Error::Died(e.to_string()))?;
    read_reply(worker).await
}

async fn read_reply(worker: &mut Worker) -> Result<Reply, Error> {
    lines::receive(&mut worker.stdout).await.map_err(|e| Error::Died(e.to_string()))
}
