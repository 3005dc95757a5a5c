//! The fork server: one sandboxed Python (`worker.py` in fork-server mode) that imports the common
//! modules once and forks a child per session, so a session starts in milliseconds instead of paying
//! for a new bubblewrap sandbox and interpreter (~50–100 ms of CPU each, 11–24 per second on 2 cores).
//!
//! Two servers: a *quick* one importing only cheap standard modules (serving within ~0.1 s), and a
//! *full* one that also imports numpy and sympy (~1 s, more on a busy machine, at the lowest CPU
//! priority; it cannot fork while an import runs), started once the first sessions asked for have
//! been served (its import would otherwise take CPU from a burst of them). Sessions come from the
//! quick one until the full one is ready; a child of the quick one imports numpy or sympy itself if
//! its code needs it.
//!
//! Each server keeps `spare_sessions` children forked ahead of demand (fewer when fewer sessions are
//! still expected: `Runner::expect_sessions`), waiting in accept() with a session's first steps
//! already run once (so the pages they touch are copied in idle time): a burst of conversations
//! reaching their first code block together finds sessions ready, and the forks that replace them
//! happen while the machine waits for the model.
//!
//! Used only when agentopt runs as root under bubblewrap: every child then drops to a uid of its own,
//! so the per-session process cap, file permissions and signals still keep sessions apart. Each
//! spare is also the first process (the init) of a PID namespace of its own, with its own `/proc`,
//! mount namespace and network namespace (no other live session's; those of ended sessions are
//! reused): a session sees only its own processes, reaches no other's loopback, and whatever it
//! starts dies with it (an init's end kills its namespace, whatever group or session a process
//! moved to). Spares wait at a lower CPU priority than sessions, the full server's import at the
//! lowest (its scheduling autogroup's too). A session's home (also `$HOME` and `$TMPDIR`) is a
//! size-capped tmpfs of its own mounted over the server's, which hides the server's socket from its
//! code; its `/tmp` is another, with the interpreter's directories under `/tmp` bound again into it.
//! Sessions share only the server's read-only view.
//!
//! Wire: agentopt connects to the server's socket (in a host temp dir bound into the sandbox at
//! `~/.server`; nothing else is made there, so removing it unmounts no session's home) and sends
//! the session's limits as one JSON line; the spare that accepted answers `{"ready": true, "pid": N}`
//! and then speaks the worker protocol on that connection. Kills go to the server's stdin as
//! `{"kill": N}` (it kills the child's whole process group, also when the child exits) and
//! `{"spares": N}` (the number to keep); its stdout
//! reports `preloaded` and each child's exit. Children die with the server (PR_SET_PDEATHSIG), so a
//! session is never left running beyond the reach of a kill.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::process::Child;
use tokio::sync::Notify;

use super::Error;
use super::launcher::{Launcher, PRELOAD, QUICK_PRELOAD, Role, STARTUP_TIMEOUT, drain_tail};
use super::lines;
use super::memcg::Group;
use super::view::{CGROUPS_INSIDE, SERVER_DIR};

/// The socket's name, in the host directory bound at `SERVER_DIR` in the server's home.
const SOCKET: &str = ".fork-server.sock";
/// A bound on idle children per server (each holds a process slot and a little memory).
const MAX_SPARES: usize = 64;
/// The full server starts at the latest this long after the first session is asked for.
const FULL_SERVER_AT_LATEST: Duration = Duration::from_millis(1500);
/// Exits remembered for `exit_of` (a dead child's is asked for within milliseconds).
const EXITS_KEPT: usize = 1024;

pub(crate) struct ForkServer {
    child: Child,
    /// The server's process group (= the bwrap pid), killed on drop.
    pgid: Option<i32>,
    control: Mutex<std::io::PipeWriter>,
    socket: PathBuf,
    exits: Arc<Exits>,
    /// Set once the server has imported its whole preload list and forked its spares.
    preloaded: Arc<std::sync::atomic::AtomicBool>,
    /// How many spares it keeps, as last told.
    spares: AtomicUsize,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    /// Holds the socket (bound at `SERVER_DIR` in the server's home); removed after the server is
    /// killed.
    _socket_dir: TempDir,
    /// The memory cgroup its sessions make theirs in; removed (with theirs) once they are gone.
    _memory: Option<Group>,
}

/// How forked children ended, as the server reported it.
#[derive(Default)]
struct Exits {
    seen: Mutex<VecDeque<(u32, ExitReport)>>,
    changed: Notify,
}

/// A child's end: its exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExitReport {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// A freshly forked session worker: its connection and its pid (inside the sandbox).
pub(crate) struct Forked {
    pub reader: BufReader<Box<dyn AsyncRead + Send + Sync + Unpin>>,
    pub writer: OwnedWriteHalf,
    pub pid: u32,
}

impl std::fmt::Debug for ForkServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForkServer").field("pgid", &self.pgid).field("socket", &self.socket).finish()
    }
}

impl ForkServer {
    /// Starts the server under the launcher's isolation and waits until it listens; it then imports
    /// `imports` (at the lowest CPU priority when `nice`) and forks its spares, and reports
    /// `is_preloaded` once both are done.
    pub async fn start(
        launcher: &Launcher,
        imports: &[&str],
        nice: bool,
        spares: usize,
    ) -> Result<ForkServer, Error> {
        let home = super::scratch::tempdir("fork").map_err(Error::Workdir)?;
        let inner_home = launcher.inner_workdir(home.path());
        let memory = launcher.memory_group(true);
        // Each session makes its own group inside the server's (as root, before it drops its uid).
        let memcg = memory
            .as_ref()
            .map(|_| json!({"dir": CGROUPS_INSIDE, "limits": launcher.session_memory_limits()}));
        let config = json!({
            "cap": launcher.config.output_cap_bytes,
            "fork_server": {
                "socket": inner_home.join(SERVER_DIR).join(SOCKET), "home": inner_home,
                "preload": imports, "nice": nice, "spares": spares,
                "tmp_binds": launcher.tmp_binds(), "memcg": memcg,
            },
            "preload": PRELOAD,
        });
        let (control_read, control) = std::io::pipe().map_err(Error::Workdir)?;
        let mut child = launcher.spawn(
            home.path(),
            &config.to_string(),
            Stdio::from(control_read),
            Role::ForkServer { cgroups: memory.as_ref().map(|group| group.path().to_path_buf()), nice },
        )?;
        let pgid = child.id().map(|id| id as i32);
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(Error::Protocol("the fork server's pipes were not set up".into()));
        };
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(drain_tail(stderr, stderr_tail.clone()));
        let mut server = ForkServer {
            child,
            pgid,
            control: Mutex::new(control),
            socket: home.path().join(SOCKET),
            exits: Arc::default(),
            preloaded: Arc::default(),
            spares: spares.into(),
            stderr_tail,
            _socket_dir: home,
            _memory: memory,
        };
        let mut events = BufReader::new(stdout);
        let mut first = String::new();
        let ready = tokio::time::timeout(STARTUP_TIMEOUT, events.read_line(&mut first)).await;
        match ready {
            Ok(Ok(n)) if n > 0 && serde_json::from_str::<Value>(&first).is_ok_and(|v| v["ready"] == true) => {
            }
            Ok(_) => {
                let status = tokio::time::timeout(Duration::from_secs(2), server.child.wait()).await;
                if matches!(status, Ok(Ok(_))) {
                    server.pgid = None; // reaped: the id may be another process's by now
                }
                return Err(Error::Protocol(format!(
                    "the fork server failed to start ({}): {}",
                    status.map_or("still running".to_string(), |s| format!("{s:?}")),
                    server.stderr()
                )));
            }
            Err(_) => {
                return Err(Error::Protocol(format!(
                    "the fork server did not start within {STARTUP_TIMEOUT:?}"
                )));
            }
        }
        tokio::spawn(record_events(events, server.exits.clone(), server.preloaded.clone()));
        Ok(server)
    }

    /// True once the server has imported all it was asked to.
    pub fn is_preloaded(&self) -> bool {
        self.preloaded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The tail of the server's stderr (its children's crash reports land there too).
    pub fn stderr(&self) -> String {
        self.stderr_tail.lock().map(|t| String::from_utf8_lossy(&t).trim().to_string()).unwrap_or_default()
    }

    /// Forks a session worker with `limits` (the worker configuration minus what the server owns).
    pub async fn fork(&self, limits: &Value) -> Result<Forked, Error> {
        let dead = |what: &str, e: &dyn std::fmt::Display| {
            Error::Protocol(format!("the fork server did not {what} ({e}); {}", self.stderr()))
        };
        let stream = UnixStream::connect(&self.socket).await.map_err(|e| dead("accept a session", &e))?;
        let (read, mut writer) = stream.into_split();
        lines::send(&mut writer, limits).await.map_err(|e| dead("take the session's limits", &e))?;
        let mut reader = BufReader::new(Box::new(read) as Box<dyn AsyncRead + Send + Sync + Unpin>);
        let ready: Value = match tokio::time::timeout(STARTUP_TIMEOUT, lines::receive(&mut reader)).await {
            Ok(Ok(ready)) => ready,
            Ok(Err(lines::ReadError::Closed)) => {
                return Err(dead("start a session", &"the child closed its connection"));
            }
            Ok(Err(e)) => return Err(dead("start a session", &e)),
            Err(_) => return Err(dead("start a session", &format!("no answer within {STARTUP_TIMEOUT:?}"))),
        };
        match ready["pid"].as_u64() {
            Some(pid) if ready["ready"] == true => Ok(Forked { reader, writer, pid: pid as u32 }),
            _ => Err(Error::Protocol(format!("unexpected first line from a forked worker: {ready}"))),
        }
    }

    /// Kills a child's whole process group (a no-op for one already gone).
    pub fn kill(&self, pid: u32) {
        self.tell(&json!({"kill": pid}));
    }

    /// Has the server keep `spares` children ready (it forks no more until fewer are idle).
    fn keep_spares(&self, spares: usize) {
        // Compared and sent under the pipe's lock, so the last number sent is the one kept.
        let Ok(mut control) = self.control.lock() else { return };
        if self.spares.swap(spares, Ordering::AcqRel) != spares {
            send_control(&mut control, &json!({"spares": spares}));
        }
    }

    fn tell(&self, message: &Value) {
        if let Ok(mut control) = self.control.lock() {
            send_control(&mut control, message);
        }
    }

    /// How child `pid` ended, waiting up to `wait` for the server's report.
    pub async fn exit_of(&self, pid: u32, wait: Duration) -> Option<ExitReport> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.exits.changed.notified();
            if let Some(report) = self.exits.find(pid) {
                return Some(report);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }
}

fn send_control(control: &mut std::io::PipeWriter, message: &Value) {
    if let Err(e) = control.write_all(format!("{message}\n").as_bytes()) {
        // The server is gone, and with it (PID namespace, --die-with-parent) every child.
        tracing::debug!("fork server: sending {message} failed: {e}");
    }
}

impl Exits {
    fn find(&self, pid: u32) -> Option<ExitReport> {
        let seen = self.seen.lock().ok()?;
        seen.iter().rev().find(|(p, _)| *p == pid).map(|(_, r)| *r)
    }
}

async fn record_events(
    mut events: BufReader<tokio::process::ChildStdout>,
    exits: Arc<Exits>,
    preloaded: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut line = String::new();
    loop {
        line.clear();
        match events.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(event) = serde_json::from_str::<Value>(&line) else { continue };
        if event["preloaded"] == true {
            preloaded.store(true, std::sync::atomic::Ordering::Release);
        }
        let Some(pid) = event["exited"].as_u64() else { continue };
        let report = ExitReport {
            code: event["code"].as_i64().map(|c| c as i32),
            signal: event["signal"].as_i64().map(|s| s as i32),
        };
        if let Ok(mut seen) = exits.seen.lock() {
            if seen.len() >= EXITS_KEPT {
                seen.pop_front();
            }
            seen.push_back((pid as u32, report));
        }
        exits.changed.notify_waiters();
    }
}

impl Drop for ForkServer {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: killpg only sends a signal; the group is ours (process_group(0) at spawn) and
            // the child is not reaped before this drop, so the id cannot have been recycled.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        }
    }
}

/// A sandbox's quick server (started on first need) and full server (started once no session is
/// waiting, see `asking`), and how many sessions are still expected: spares beyond those would be
/// forked, prepared and torn down for nothing, taking the CPU from the sessions that run (in a
/// 64-problem eval at `--concurrency` 64, 64 spares replaced after the burst, and the full
/// server's 64, none of them used).
#[derive(Debug)]
pub(crate) struct Pair {
    quick: tokio::sync::OnceCell<Option<Arc<ForkServer>>>,
    full: tokio::sync::OnceCell<Option<Arc<ForkServer>>>,
    full_started: std::sync::atomic::AtomicBool,
    /// `SandboxConfig::spare_sessions`: the spares each server keeps when nothing says fewer.
    configured: usize,
    /// Sessions still to be asked for (`usize::MAX`: not known).
    expected: AtomicUsize,
    /// Sessions and function checks asked for and not yet served.
    waiting: AtomicUsize,
    first_asked: std::sync::atomic::AtomicBool,
}

/// A session or function check being started (see `Pair::asking`).
pub(crate) struct Asking {
    pair: Arc<Pair>,
    launcher: Launcher,
}

impl Drop for Asking {
    fn drop(&mut self) {
        self.pair.handed_out();
        if self.pair.waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.pair.start_full(&self.launcher);
        }
    }
}

impl Pair {
    /// Servers keeping `configured` spares each (`SandboxConfig::spare_sessions`) until told fewer
    /// sessions are expected.
    pub fn new(configured: usize) -> Pair {
        Pair {
            quick: Default::default(),
            full: Default::default(),
            full_started: Default::default(),
            configured,
            expected: AtomicUsize::new(usize::MAX),
            waiting: AtomicUsize::new(0),
            first_asked: Default::default(),
        }
    }

    /// A new pair (for a sandbox probed afresh) with this one's estimate.
    pub fn following(&self) -> Pair {
        let pair = Pair::new(self.configured);
        pair.expected.store(self.expected.load(Ordering::Acquire), Ordering::Release);
        pair
    }

    /// About `count` more sessions will be asked for (see `Runner::expect_sessions`).
    pub fn expect(&self, count: usize) {
        self.expected.store(count, Ordering::Release);
        self.retarget();
    }

    /// A session was handed out (or failed to start): one fewer is expected.
    fn handed_out(&self) {
        let _ = self.expected.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| match n {
            usize::MAX => None,
            n => Some(n.saturating_sub(1)),
        });
        self.retarget();
    }

    /// The spares each server keeps: the configured number, or fewer when fewer sessions are
    /// expected, but never fewer than the sessions waiting now (an estimate that ran short, e.g.
    /// with candidate phases run side by side, must not leave them served one fork at a time), and
    /// always one (a session asked for beyond the estimate must find a process in accept()).
    fn spares(&self) -> usize {
        let expected = self.configured.min(self.expected.load(Ordering::Acquire));
        expected.max(self.waiting.load(Ordering::Acquire)).clamp(1, MAX_SPARES)
    }

    fn retarget(&self) {
        let spares = self.spares();
        for server in [self.quick.get(), self.full.get()].into_iter().flatten().flatten() {
            server.keep_spares(spares);
        }
    }

    /// The server a new session forks from: the full one once it has imported everything, else the
    /// quick one (started on the first call). `None`: neither could start.
    pub async fn pick(self: &Arc<Self>, launcher: &Launcher) -> Option<Arc<ForkServer>> {
        if let Some(Some(full)) = self.full.get()
            && full.is_preloaded()
        {
            return Some(full.clone());
        }
        let warn = |e: Error| tracing::warn!("{e}");
        let quick =
            self.quick.get_or_init(|| self.started(launcher, QUICK_PRELOAD, false, warn)).await.clone();
        if quick.is_some() {
            return quick;
        }
        self.full.get_or_init(|| self.started(launcher, PRELOAD, false, warn)).await.clone()
    }

    /// Starts the quick server (once) and waits until it listens: its start is the check that
    /// bubblewrap works (see `Deferred`), so a failure is only logged at debug level, and is final
    /// for this pair (the caller probes afresh, with a new one).
    pub async fn start_quick(&self, launcher: &Launcher) -> bool {
        let debug = |e: Error| tracing::debug!("{e}");
        let started = self.quick.get_or_init(|| self.started(launcher, QUICK_PRELOAD, false, debug)).await;
        // An estimate made while it started, before the cell was set, reaches it now.
        self.retarget();
        started.is_some()
    }

    /// A session (or a function check) is asked for; the returned guard marks it served when
    /// dropped, and the first time none is left waiting, the full server starts (in the background).
    /// Not before: at the lowest priority its import still took ~30 ms from a burst of 64 sessions
    /// on 2 cores, and a command whose conversations run no code never starts it.
    pub fn asking(self: &Arc<Self>, launcher: &Launcher) -> Asking {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        self.retarget();
        if !self.first_asked.swap(true, Ordering::AcqRel)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // A backstop: where sessions are asked for without pause, none waiting may come late.
            let (pair, launcher) = (self.clone(), launcher.clone());
            runtime.spawn(async move {
                tokio::time::sleep(FULL_SERVER_AT_LATEST).await;
                pair.start_full(&launcher);
            });
        }
        Asking { pair: self.clone(), launcher: launcher.clone() }
    }

    fn start_full(self: &Arc<Self>, launcher: &Launcher) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if !self.full_started.swap(true, Ordering::AcqRel) {
            let (pair, launcher) = (self.clone(), launcher.clone());
            runtime.spawn(async move {
                let warn = |e: Error| tracing::warn!("{e}");
                pair.full.get_or_init(|| pair.started(&launcher, PRELOAD, true, warn)).await;
                pair.retarget();
            });
        }
    }

    /// A server started with the current estimate, or `None` after `failed` saw why not.
    async fn started(
        &self,
        launcher: &Launcher,
        imports: &[&str],
        nice: bool,
        failed: impl FnOnce(Error),
    ) -> Option<Arc<ForkServer>> {
        match ForkServer::start(launcher, imports, nice, self.spares()).await {
            Ok(server) => {
                // The estimate may have changed while it started.
                server.keep_spares(self.spares());
                Some(Arc::new(server))
            }
            Err(e) => {
                failed(e);
                None
            }
        }
    }
}

/// Whether sessions fork from a server under this isolation (see the module comment).
pub(crate) fn applies(isolated: bool, as_root: bool, enabled: bool) -> bool {
    isolated && as_root && enabled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spares_follow_the_sessions_still_expected_and_never_drop_to_none() {
        let pair = Pair::new(8);
        assert_eq!(pair.spares(), 8, "nothing expected yet: as configured");
        assert_eq!(Pair::new(500).spares(), MAX_SPARES);
        pair.expect(3);
        assert_eq!(pair.spares(), 3);
        pair.handed_out();
        assert_eq!(pair.spares(), 2);
        pair.handed_out();
        pair.handed_out();
        pair.handed_out();
        assert_eq!(pair.spares(), 1, "one beyond the estimate still finds a process in accept()");
        pair.waiting.store(5, Ordering::Release);
        assert_eq!(pair.spares(), 5, "an estimate that ran short still forks for all those waiting");
        pair.waiting.store(0, Ordering::Release);
        assert_eq!(pair.following().spares(), 1, "a pair probed afresh keeps the estimate");
        pair.expect(100);
        assert_eq!(pair.spares(), 8, "the next phase: as configured again");
    }
}
