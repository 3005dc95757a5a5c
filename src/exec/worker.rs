//! One worker process, driven by JSON lines: either its own sandbox (spawned through the sandbox's
//! command line in its own process group, stderr drained concurrently, killed as a group and reaped
//! on timeout or drop) or a child of the fork server (killed through the server).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::process::Child;
use tokio::time::Instant;

use super::Error;
use super::fork_server::{ExitReport, ForkServer};
use super::launcher::{Launcher, PRELOAD, Role, STARTUP_TIMEOUT, drain_tail};
use super::lines;
use super::memcg::Group;

/// A session's hard CPU limit, in per-execution budgets: ample for a conversation's code blocks (a
/// session that spends it all is killed and restarted), and a bound code cannot lift.
const CPU_EXECUTIONS_PER_SESSION: u64 = 16;

/// Why a request got no reply.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The wall-clock limit passed; the caller kills the worker.
    Timeout,
    /// The worker exited or broke the protocol; the message says how.
    Died(String),
}

pub(crate) struct Worker {
    input: Box<dyn AsyncWrite + Send + Sync + Unpin>,
    output: BufReader<Box<dyn AsyncRead + Send + Sync + Unpin>>,
    process: Process,
    /// What the current request's code printed so far (streamed by the worker), for a request that
    /// never gets its reply.
    partial: PartialOutput,
}

/// Output streamed by a running execution (`{"event": "output"}`), already capped by the worker.
#[derive(Debug, Default, Clone)]
pub(crate) struct PartialOutput {
    pub stdout: String,
    pub stderr: String,
}

enum Process {
    /// A worker in a sandbox of its own.
    Own {
        child: Box<Child>,
        stderr_tail: Arc<Mutex<Vec<u8>>>,
        /// The process group (= the bwrap pid); `None` once reaped, so a recycled id is never signalled.
        pgid: Option<i32>,
        /// Removed when the worker goes (after the kill, so nothing is still writing into it).
        _workdir: TempDir,
        /// Its memory cgroup, where there is one; removed once its processes are gone.
        _memory: Option<Group>,
    },
    /// A child of the fork server; `killed` once the kill was sent.
    Forked { server: Arc<ForkServer>, pid: u32, killed: bool },
}

impl Worker {
    /// Starts a worker and waits for its "ready" line: a child of `fork_server` when there is one
    /// (falling back to a sandbox of its own if the server fails), else in its own sandbox.
    pub async fn start(launcher: &Launcher, fork_server: Option<&Arc<ForkServer>>) -> Result<Worker, Error> {
        if let Some(server) = fork_server {
            let uid = launcher.worker_uid();
            match server.fork(&Value::Object(limits(launcher, uid))).await {
                Ok(forked) => {
                    return Ok(Worker {
                        partial: PartialOutput::default(),
                        input: Box::new(forked.writer),
                        output: forked.reader,
                        process: Process::Forked { server: server.clone(), pid: forked.pid, killed: false },
                    });
                }
                Err(e) => tracing::warn!("{e}; starting the session in a sandbox of its own"),
            }
        }
        Worker::spawn(launcher).await
    }

    /// Starts a worker in a sandbox of its own and waits for its "ready" line (the common modules
    /// keep importing in the background; the worker finishes that before it runs code needing them).
    async fn spawn(launcher: &Launcher) -> Result<Worker, Error> {
        let workdir = super::scratch::tempdir("exec").map_err(Error::Workdir)?;
        let uid = launcher.worker_uid();
        if let Some(uid) = uid {
            std::os::unix::fs::chown(workdir.path(), Some(uid), Some(uid)).map_err(Error::Workdir)?;
        }
        let mut worker_config = limits(launcher, uid);
        worker_config.insert("workdir".into(), json!(launcher.inner_workdir(workdir.path())));
        worker_config.insert("preload".into(), json!(PRELOAD));
        let memory = launcher.memory_group(false);
        let procs = memory.as_ref().and_then(|group| {
            group.procs().inspect_err(|e| tracing::warn!("cannot join a memory cgroup: {e}")).ok()
        });
        let mut child = launcher.spawn(
            workdir.path(),
            &Value::Object(worker_config).to_string(),
            Stdio::piped(),
            Role::Worker { memory: procs },
        )?;
        let pgid = child.id().map(|id| id as i32);
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Error::Protocol("the worker's pipes were not set up".into()));
        };
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(drain_tail(stderr, stderr_tail.clone()));
        let mut worker = Worker {
            partial: PartialOutput::default(),
            input: Box::new(stdin),
            output: BufReader::new(Box::new(stdout)),
            process: Process::Own {
                child: Box::new(child),
                stderr_tail,
                pgid,
                _workdir: workdir,
                _memory: memory,
            },
        };
        match tokio::time::timeout(STARTUP_TIMEOUT, worker.read_reply()).await {
            Ok(Ok(reply)) if reply.get("ready") == Some(&Value::Bool(true)) => Ok(worker),
            Ok(Ok(reply)) => Err(Error::Protocol(format!("unexpected first line from the worker: {reply}"))),
            Ok(Err(message)) => Err(Error::Protocol(format!("the worker failed to start: {message}"))),
            Err(_) => {
                worker.kill().await;
                Err(Error::Protocol(format!("the worker did not start within {STARTUP_TIMEOUT:?}")))
            }
        }
    }

    /// Sends one request and waits for its reply: at most `limit` once the worker says the execution
    /// started (it may first finish importing the preloaded modules). Returns the reply and the time
    /// the execution itself took. Only the first `started` counts: the code that runs after it shares
    /// the worker's process and can write to the protocol, so a later one must not move the deadline.
    pub async fn request(&mut self, request: &Value, limit: Duration) -> Result<(Value, Duration), Failure> {
        if let Err(e) = lines::send(&mut self.input, request).await {
            return Err(Failure::Died(format!("{} (writing the request: {e})", self.death_message().await)));
        }
        let mut started = Instant::now();
        let mut deadline = started + STARTUP_TIMEOUT.max(limit);
        let mut running = false;
        self.partial = PartialOutput::default();
        loop {
            match tokio::time::timeout_at(deadline, self.read_reply()).await {
                Ok(Ok(reply)) if reply.get("event").and_then(Value::as_str) == Some("output") => {
                    let text = reply.get("text").and_then(Value::as_str).unwrap_or_default();
                    match reply.get("stream").and_then(Value::as_str) {
                        Some("stderr") => self.partial.stderr.push_str(text),
                        _ => self.partial.stdout.push_str(text),
                    }
                }
                Ok(Ok(reply)) if reply.get("event").and_then(Value::as_str) == Some("started") => {
                    if !running {
                        running = true;
                        started = Instant::now();
                        deadline = started + limit;
                    }
                }
                Ok(Ok(reply)) => return Ok((reply, started.elapsed())),
                Ok(Err(message)) => return Err(Failure::Died(message)),
                Err(_) => return Err(Failure::Timeout),
            }
        }
    }

    /// What the last request's code printed before it ended without a reply.
    pub fn take_partial(&mut self) -> PartialOutput {
        std::mem::take(&mut self.partial)
    }

    async fn read_reply(&mut self) -> Result<Value, String> {
        match lines::receive(&mut self.output).await {
            Ok(reply) => Ok(reply),
            Err(lines::ReadError::Closed) => Err(self.death_message().await),
            Err(e) => Err(e.to_string()),
        }
    }

    /// How the worker ended, with the tail of its stderr.
    async fn death_message(&mut self) -> String {
        match &mut self.process {
            Process::Own { child, stderr_tail, pgid, .. } => {
                let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                let how = match status {
                    Ok(Ok(status)) => {
                        *pgid = None;
                        use std::os::unix::process::ExitStatusExt;
                        describe_exit(ExitReport { code: status.code(), signal: status.signal() })
                    }
                    _ => "the Python worker stopped answering".to_string(),
                };
                let tail = stderr_tail.lock().map(|t| String::from_utf8_lossy(&t).trim().to_string());
                match tail {
                    Ok(tail) if !tail.is_empty() => format!("{how}: {tail}"),
                    _ => how,
                }
            }
            Process::Forked { server, pid, .. } => {
                let how = match server.exit_of(*pid, Duration::from_secs(2)).await {
                    Some(report) => describe_exit(report),
                    None => "the Python worker stopped answering".to_string(),
                };
                match server.stderr() {
                    tail if tail.is_empty() => how,
                    tail => format!("{how}; the fork server's stderr: {tail}"),
                }
            }
        }
    }

    /// Kills the whole process group and reaps the worker.
    pub async fn kill(mut self) {
        self.kill_group();
        if let Process::Own { child, pgid, .. } = &mut self.process {
            let _ = child.kill().await;
            *pgid = None;
        }
    }

    fn kill_group(&mut self) {
        match &mut self.process {
            Process::Own { pgid: Some(pgid), .. } => {
                // SAFETY: killpg only sends a signal; the group is ours (process_group(0) at spawn)
                // and not yet reaped, so the id cannot have been recycled.
                unsafe { libc::killpg(*pgid, libc::SIGKILL) };
            }
            Process::Own { pgid: None, .. } => {}
            Process::Forked { server, pid, killed } => {
                if !*killed {
                    server.kill(*pid);
                    *killed = true;
                }
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // An own sandbox: bwrap's --die-with-parent and the PID namespace take everything inside
        // down with it; kill_on_drop then lets tokio reap the child in the background. A forked
        // child: the server kills its group and reaps it.
        self.kill_group();
    }
}

/// The limits every worker applies to itself before running user code.
fn limits(launcher: &Launcher, uid: Option<u32>) -> serde_json::Map<String, Value> {
    let config = &launcher.config;
    let cpu_seconds = config.timeout.as_secs() + 5;
    let value = json!({
        "cap": config.output_cap_bytes,
        "memory_bytes": config.memory_bytes,
        "max_processes": config.max_processes,
        "file_size_bytes": config.file_size_bytes,
        // A CPU-time backstop per execution, beyond the wall-clock limit (a soft limit code may
        // raise), and a hard one for the session's whole life that it cannot.
        "cpu_seconds": cpu_seconds,
        "cpu_seconds_total": cpu_seconds * CPU_EXECUTIONS_PER_SESSION,
        "drop_uid": uid,
    });
    let Value::Object(mut map) = value else { unreachable!("a JSON object literal") };
    if launcher.is_isolated() {
        map.insert(
            "seccomp".into(),
            json!({
                "call": libc::SYS_seccomp,
                "operation": super::seccomp::SECCOMP_SET_MODE_FILTER,
                "flags": super::seccomp::SECCOMP_FILTER_FLAG_TSYNC,
                "program": super::seccomp::program_hex(),
            }),
        );
    }
    map
}

fn describe_exit(report: ExitReport) -> String {
    match (report.code, report.signal) {
        (_, Some(libc::SIGKILL)) => "the Python worker was killed (SIGKILL: out of memory or a limit)".into(),
        (_, Some(libc::SIGXCPU)) => "the Python worker exceeded its CPU-time limit".into(),
        (_, Some(signal)) => format!("the Python worker died from signal {signal}"),
        (Some(code), _) => format!("the Python worker exited with status {code}"),
        _ => "the Python worker ended".into(),
    }
}
