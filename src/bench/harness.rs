//! Runs the real `agentopt eval` binary (this executable) against a benchmark server, in a scratch
//! directory, and measures the process from outside: wall time and CPU time (from `wait4`'s rusage)
//! and peak RSS (its `VmHWM`, sampled while it runs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::server::{self, LatencyServer};

/// One `agentopt eval` process, as seen from outside.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub wall: Duration,
    /// User + system CPU time of the process and the descendants it reaped.
    pub cpu: Duration,
    /// Peak resident set of agentopt itself (its `VmHWM`, sampled while it runs), in bytes.
    pub max_rss: u64,
    /// The last line of `--json` output.
    pub summary: Value,
}

/// A scratch directory holding a dataset of `n` benchmark problems and a config list for `server`.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(server: &LatencyServer, n: usize) -> Result<Workspace, String> {
        let dir = tempfile::Builder::new().prefix("agentopt-bench-").tempdir().map_err(|e| e.to_string())?;
        let lines: Vec<String> = (0..n)
            .map(|i| {
                let (problem, answer) = server::problem(i);
                json!({"id": format!("b{i}"), "problem": problem, "answer": answer}).to_string()
            })
            .collect();
        std::fs::write(dir.path().join("test.jsonl"), lines.join("\n") + "\n").map_err(|e| e.to_string())?;
        let config = json!([{"model": "bench", "api_key": "sk-bench", "api_type": "openai",
                             "base_url": server.base_url()}]);
        std::fs::write(dir.path().join("OAI_CONFIG_LIST.json"), config.to_string())
            .map_err(|e| e.to_string())?;
        Ok(Workspace { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `agentopt eval` on the dataset at `concurrency`; `extra` adds flags (`--no-cache`, `--out F`).
    pub async fn eval(&self, concurrency: usize, extra: &[&str], limit: Duration) -> Result<Outcome, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the agentopt binary: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.current_dir(self.path())
            .args(["eval", "--test", "test.jsonl", "--config", "OAI_CONFIG_LIST.json", "--json"])
            .args(["--concurrency", &concurrency.to_string()])
            .args(extra)
            .env_remove(crate::env::OAI_CONFIG_LIST)
            .env_remove(crate::env::RUST_LOG)
            .env(crate::env::AGENTOPT_PYTHON, absolute(crate::exec::find_python()))
            .stdin(Stdio::null());
        let out = self.path().join("stdout.txt");
        let err = self.path().join("stderr.txt");
        let files = (std::fs::File::create(&out), std::fs::File::create(&err));
        let (Ok(stdout), Ok(stderr)) = files else { return Err("cannot create output files".into()) };
        cmd.stdout(stdout).stderr(stderr);
        let measured = tokio::task::spawn_blocking(move || measure(cmd, limit))
            .await
            .map_err(|e| format!("measuring thread failed: {e}"))??;
        let stdout = std::fs::read_to_string(&out).unwrap_or_default();
        let summary = stdout.lines().last().and_then(|l| serde_json::from_str::<Value>(l).ok());
        match summary {
            Some(summary) if measured.exit_ok => Ok(Outcome { summary, ..measured.outcome }),
            _ => {
                let stderr = std::fs::read_to_string(&err).unwrap_or_default();
                let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                Err(format!("agentopt eval failed: {} {tail}", stdout.trim()))
            }
        }
    }
}

fn absolute(path: PathBuf) -> PathBuf {
    if path.components().count() > 1 && path.is_relative() {
        std::env::current_dir().map_or(path.clone(), |cwd| cwd.join(&path))
    } else {
        path
    }
}

struct Measured {
    outcome: Outcome,
    exit_ok: bool,
}

/// Spawns `cmd` and reaps it with `wait4` (polling, so a hung run is killed at `limit`).
fn measure(mut cmd: Command, limit: Duration) -> Result<Measured, String> {
    let start = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("cannot start agentopt: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; zeroed is a valid value for it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    let status_file = format!("/proc/{pid}/status");
    let mut own_peak = 0;
    loop {
        // VmHWM only grows, so the last reading before exit is the process's own peak (`wait4`'s
        // ru_maxrss would also take in the largest child it reaped, such as a Python probe).
        own_peak = own_peak.max(super::eval::peak_rss_of(&status_file));
        // SAFETY: `pid` is our unreaped child (std's `Child` never waits unless asked); the out
        // pointers are valid for the call.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            break;
        }
        if reaped < 0 {
            return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
        }
        if !killed && start.elapsed() > limit {
            // SAFETY: signalling our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let wall = start.elapsed();
    if killed {
        return Err(format!("agentopt eval did not finish within {limit:?} and was killed"));
    }
    let tv =
        |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    let exit_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok(Measured {
        outcome: Outcome {
            wall,
            cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
            max_rss: own_peak,
            summary: Value::Null,
        },
        exit_ok,
    })
}
