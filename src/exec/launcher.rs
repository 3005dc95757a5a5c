//! `Launcher`: how a sandboxed interpreter is started. The probe (`Plan::probe`) decides once how
//! workers are isolated (bubblewrap plus rlimits, or — only when the user insists — nothing); the
//! launcher builds each worker's and fork server's command line (the file-system view is `view`'s),
//! with a scrubbed environment and no inherited descriptor. It knows nothing of the processes it
//! starts: `fork_server` and `worker` build on it.

use std::ops::Range;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use super::memcg::{Cgroups, Group};
use super::view::{Home, Identity, View};
use super::{Error, SandboxConfig};

/// Importing sympy and numpy takes about a second alone; many workers starting at once on few cores
/// take longer. This bounds a hung start, not a slow one.
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Imported once at worker start (or once in the full fork server) so code blocks find them warm.
pub(crate) const PRELOAD: &[&str] = &["math", "fractions", "itertools", "decimal", "numpy", "sympy"];
/// What the quick fork server imports: all but numpy and sympy, the slow imports.
pub(crate) const QUICK_PRELOAD: &[&str] = &["math", "fractions", "itertools", "decimal"];
/// The stderr kept for diagnosing a worker (or fork server) that died.
const STDERR_TAIL_BYTES: usize = 8 << 10;

/// Where the private work directory appears inside the sandbox (also `$HOME` and the cwd).
pub(crate) const SANDBOX_HOME: &str = "/home/sandbox";

/// The capabilities a sandbox started as root keeps (see `Plan::bwrap_args`); sessions lose them all
/// when they drop to their own uid.
const ROOT_CAPABILITIES: &[&str] = &[
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_SYS_ADMIN",
    "CAP_SYS_NICE",
];

/// Runs the embedded worker under a file name its tracebacks can be recognised (and hidden) by.
const BOOTSTRAP: &str = "import sys;exec(compile(sys.argv[1],'<agentopt-worker>','exec'))";
const WORKER_SOURCE: &str = include_str!("worker.py");

/// What the probe found: how to isolate, and what the interpreter needs to see.
#[derive(Debug)]
pub(crate) struct Plan {
    /// `None`: run unsandboxed (the user passed `--unsafe-no-sandbox` and bwrap is unusable).
    bwrap: Option<PathBuf>,
    /// The interpreter as it names itself (`sys.executable`: symlinks into a venv resolved).
    python: PathBuf,
    /// The allowlisted file system and the private paths masked in it.
    view: View,
    /// Host root: workers drop to a uid of their own (RLIMIT_NPROC never binds uid 0).
    as_root: bool,
    /// Size cap of the private /tmp (a tmpfs lives in RAM); `None` when this bwrap lacks `--size`.
    tmp_size: Option<u64>,
    /// Where each session gets a memory cgroup of its own (root with a writable memory controller).
    cgroups: Option<Cgroups>,
}

/// One session's view of the sandbox: the limits in force when it started, and the plan.
#[derive(Debug, Clone)]
pub(crate) struct Launcher {
    pub config: SandboxConfig,
    pub plan: Arc<Plan>,
}

#[derive(Deserialize)]
struct PythonFacts {
    executable: PathBuf,
    /// Its prefixes, every existing `sys.path` entry and the directories of the shared libraries it
    /// maps: what it must see to run and import.
    dirs: Vec<PathBuf>,
}

/// Per-worker uids for the root case, so one session's fork bomb does not eat another's budget.
static NEXT_UID: AtomicU32 = AtomicU32::new(0);

impl Launcher {
    /// The uid the worker drops to (host root under bwrap only: unsandboxed, the interpreter may live
    /// in root's private home, and that mode promises no isolation anyway).
    pub fn worker_uid(&self) -> Option<u32> {
        (self.plan.as_root && self.plan.bwrap.is_some()).then(|| {
            let block = session_uid_block();
            block.start + NEXT_UID.fetch_add(1, Ordering::Relaxed) % block.len() as u32
        })
    }

    /// The worker's working directory as the worker sees it.
    pub fn inner_workdir(&self, host: &Path) -> PathBuf {
        if self.plan.bwrap.is_some() { PathBuf::from(SANDBOX_HOME) } else { host.to_path_buf() }
    }

    /// The command starting a worker (or fork server) on `workdir` with the given JSON
    /// configuration.
    pub fn worker_command(&self, workdir: &Path, worker_config: &str, role: Role) -> Command {
        let python_args = ["-I", "-B", "-c", BOOTSTRAP, WORKER_SOURCE, worker_config];
        self.plan.command(workdir, &python_args, role)
    }

    /// A memory cgroup for one more worker, or for a fork server's sessions; `None` where there
    /// are none (see `memcg`) or this one could not be made.
    pub fn memory_group(&self, for_server: bool) -> Option<Group> {
        let cgroups = self.plan.cgroups.as_ref()?;
        let made = if for_server {
            cgroups.group("server", None)
        } else {
            cgroups.group("worker", Some(self.config.memory_bytes))
        };
        made.inspect_err(|e| tracing::warn!("no memory cgroup for a session: {e}")).ok()
    }

    /// The limit files (and values) a forked session writes in its own group.
    pub fn session_memory_limits(&self) -> Vec<(&'static str, String)> {
        self.plan.cgroups.as_ref().map(|c| c.session_limits(self.config.memory_bytes)).unwrap_or_default()
    }

    /// True when workers run under bubblewrap (and so install the seccomp filter).
    pub fn is_isolated(&self) -> bool {
        self.plan.bwrap.is_some()
    }

    /// What forked sessions bind again into the `/tmp` of their own (see
    /// `View::interpreter_dirs_in_tmp`).
    pub fn tmp_binds(&self) -> Vec<String> {
        self.plan.view.interpreter_dirs_in_tmp()
    }

    pub fn python(&self) -> &Path {
        &self.plan.python
    }

    /// Spawns the worker (or fork server) on `workdir` in a process group of its own (killed as a
    /// whole), `stdin` as given, stdout and stderr piped; killed if the handle is dropped.
    pub fn spawn(
        &self,
        workdir: &Path,
        worker_config: &str,
        stdin: Stdio,
        role: Role,
    ) -> Result<tokio::process::Child, Error> {
        let mut cmd = tokio::process::Command::from(self.worker_command(workdir, worker_config, role));
        cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).process_group(0);
        cmd.spawn().map_err(|source| Error::Spawn { python: self.python().into(), source })
    }
}

impl Plan {
    /// Probes the interpreter and bubblewrap once (two short blocking subprocess runs: call it at
    /// start-up, not per conversation). Without working isolation this fails with `Error::NoSandbox`
    /// unless `config.allow_unsandboxed`, in which case it warns loudly.
    pub fn probe(config: &SandboxConfig) -> Result<Plan, Error> {
        let mut plan = Plan::interpreter(config)?;
        match probe_bwrap(&mut plan) {
            Ok(()) => plan.cgroups = Plan::memory_cgroups(plan.as_root),
            Err(reason) if config.allow_unsandboxed => {
                let message = format!(
                    "WARNING: no sandbox ({reason}); running LLM-written code UNSANDBOXED because \
                     --unsafe-no-sandbox was given. It can read your files and use the network."
                );
                tracing::warn!("{message}");
                crate::progress::note(&message);
            }
            Err(reason) => return Err(Error::NoSandbox { reason }),
        }
        Ok(plan)
    }

    /// `probe` without running bubblewrap, where the quick fork server's start will show whether
    /// it works (see `Deferred`): that start is then the check, ~20 ms sooner than one after the
    /// probe's own bwrap run. `None` where it does not apply (not root, no bwrap on PATH, fork
    /// servers off): the full probe is needed.
    pub fn probe_by_fork_server(config: &SandboxConfig) -> Result<Option<Plan>, Error> {
        let mut plan = Plan::interpreter(config)?;
        if !(plan.as_root && config.fork_server) {
            return Ok(None);
        }
        let Some(bwrap) = find_in_path("bwrap") else { return Ok(None) };
        plan.bwrap = Some(bwrap);
        plan.cgroups = Plan::memory_cgroups(true);
        Ok(Some(plan))
    }

    /// The interpreter's facts and the view built from them; no isolation decided yet.
    fn interpreter(config: &SandboxConfig) -> Result<Plan, Error> {
        let facts = probe_python(&config.python)?;
        // SAFETY: geteuid, getuid and getgid have no preconditions and cannot fail.
        let (as_root, uid, gid) = unsafe { (libc::geteuid() == 0, libc::getuid(), libc::getgid()) };
        let identity = Identity { uid, gid, session_uids: as_root.then(session_uid_block) };
        let view = View::new(&facts.dirs, &with_cwd_and_checkout(&config.private), &identity)
            .map_err(Error::Workdir)?;
        Ok(Plan {
            bwrap: None,
            python: facts.executable,
            view,
            as_root,
            tmp_size: Some(config.file_size_bytes),
            cgroups: None,
        })
    }

    fn memory_cgroups(as_root: bool) -> Option<Cgroups> {
        let cgroups = if as_root { Cgroups::create() } else { None };
        match &cgroups {
            Some(_) => tracing::info!("each session's memory is bounded by a cgroup of its own"),
            None => {
                tracing::info!(
                    "no memory cgroups: each process's address space and the process count are capped"
                )
            }
        }
        cgroups
    }

    /// True when workers run under bubblewrap.
    pub fn is_isolated(&self) -> bool {
        self.bwrap.is_some()
    }

    /// True when agentopt runs as root (workers then drop to uids of their own).
    pub fn as_root(&self) -> bool {
        self.as_root
    }

    /// `python_args` run under bwrap (or bare, unsandboxed) with a scrubbed environment.
    fn command(&self, workdir: &Path, python_args: &[&str], role: Role) -> Command {
        let inner_home = if self.bwrap.is_some() { Path::new(SANDBOX_HOME) } else { workdir };
        let mut cmd = match &self.bwrap {
            Some(bwrap) => {
                let mut cmd = Command::new(bwrap);
                cmd.args(self.bwrap_args(workdir, &role)).arg("--").arg(&self.python);
                cmd
            }
            None => {
                let mut cmd = Command::new(&self.python);
                cmd.current_dir(workdir);
                cmd
            }
        };
        cmd.args(python_args);
        // SAFETY: the closure runs in the forked child before exec and only makes fcntl/close_range
        // system calls (async-signal-safe, no allocation).
        unsafe { cmd.pre_exec(close_inherited_descriptors) };
        match role {
            Role::Worker { memory: Some(procs) } => {
                // SAFETY: `join` is one write(2) on a descriptor the closure owns.
                unsafe { cmd.pre_exec(move || super::memcg::join(&procs)) };
            }
            Role::ForkServer { nice: true, .. } => {
                // SAFETY: setpriority(2) is async-signal-safe and touches no memory; a failure only
                // leaves the priority as it was.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
                        Ok(())
                    })
                };
            }
            _ => {}
        }
        // Rebuilt from scratch: nothing of agentopt's environment (API keys above all) gets through.
        cmd.env_clear();
        let mut path = String::new();
        if let Some(bin) = self.python.parent() {
            path.push_str(&bin.to_string_lossy());
            path.push(':');
        }
        path.push_str("/usr/local/bin:/usr/bin:/bin");
        cmd.env("PATH", path)
            .env("HOME", inner_home)
            .env("USER", "sandbox")
            .env("LOGNAME", "sandbox")
            .env("TMPDIR", "/tmp")
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("TERM", "dumb")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONIOENCODING", "utf-8")
            .env("MPLBACKEND", "Agg")
            // One thread per BLAS: threads count against the process cap and the cores are shared.
            .env("OPENBLAS_NUM_THREADS", "1")
            .env("OMP_NUM_THREADS", "1")
            .env("MKL_NUM_THREADS", "1");
        cmd
    }

    fn bwrap_args(&self, workdir: &Path, role: &Role) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
        push(&["--die-with-parent", "--new-session"]);
        // --unshare-all minus the user namespace when we are root: a user namespace would keep uid 0
        // (exempt from RLIMIT_NPROC) and forbid the worker's drop to an unprivileged uid.
        push(&["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]);
        if self.as_root {
            // Root keeps only what the fork server and the uid drop need (switching uids, owning and
            // removing the sessions' directories, killing their processes, a network namespace per
            // session, priority back up after a slow import). bwrap leaves the bounding set as it
            // was; sessions run with no_new_privs, so no exec can gain from it.
            push(&["--cap-drop", "ALL"]);
            for cap in ROOT_CAPABILITIES {
                push(&["--cap-add", cap]);
            }
        } else {
            push(&["--unshare-user"]);
        }
        // A bwrap that cannot cap a tmpfs gets the host directory: disk, not unbounded RAM.
        let (home, cgroups) = match (role, self.tmp_size) {
            (Role::Worker { .. }, Some(size)) => (Home::Tmpfs(size), None),
            (Role::Worker { .. }, None) => (Home::Bind(workdir), None),
            (Role::ForkServer { cgroups, .. }, _) => (Home::Server(workdir), cgroups.as_deref()),
        };
        args.extend(self.view.bwrap_args(self.tmp_size, home, SANDBOX_HOME, cgroups));
        args
    }
}

/// What a sandbox is started for.
pub(crate) enum Role {
    /// A worker: a size-capped tmpfs of its own as its home (where bwrap can cap one; the host
    /// `workdir` then serves only an unsandboxed run); it joins the memory cgroup whose
    /// `cgroup.procs` is given before it starts.
    Worker { memory: Option<std::os::fd::OwnedFd> },
    /// A fork server: the host `workdir` bound in its home (agentopt reaches its socket there), and the
    /// memory cgroup directory its sessions make their own groups in. `nice`: started at the lowest
    /// CPU priority (bwrap and the interpreter's start-up too), which it raises once it is done
    /// with its slow imports.
    ForkServer { cgroups: Option<PathBuf>, nice: bool },
}

/// The uids sessions drop to when agentopt runs as root: a block of 1,000 that no other agentopt
/// process on this machine holds (claimed once, by a lock file held for the process's life), so two
/// runs never hand out the same uid. Within the block uids are reused in turn, 1,000 sessions apart;
/// by then the server has killed whatever ran as the old one.
fn session_uid_block() -> Range<u32> {
    static CLAIMED: std::sync::OnceLock<(u32, Option<std::fs::File>)> = std::sync::OnceLock::new();
    let (block, _lock) = CLAIMED.get_or_init(|| {
        let start = std::process::id() % UID_BLOCKS;
        match claim_uid_block(&std::env::temp_dir().join("agentopt-uid-blocks"), start) {
            Some((block, lock)) => (block, Some(lock)),
            None => {
                tracing::warn!("no free uid block could be claimed; sessions' uids may repeat across runs");
                (start, None)
            }
        }
    });
    let first = 1_100_000 + block * 1000;
    first..first + 1000
}

/// How many blocks of session uids there are (1,100,000 .. 2,100,000).
const UID_BLOCKS: u32 = 1000;

/// The first block from `start` on whose lock file in `dir` this open can lock exclusively; the file
/// must stay open for the claim to last (the kernel drops the lock when the process dies).
fn claim_uid_block(dir: &Path, start: u32) -> Option<(u32, std::fs::File)> {
    std::fs::create_dir_all(dir).ok()?;
    (0..UID_BLOCKS).map(|i| (start + i) % UID_BLOCKS).find_map(|block| {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{block}.lock")))
            .ok()?;
        // SAFETY: flock on a descriptor we own; it only takes an advisory lock.
        let locked =
            unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX | libc::LOCK_NB) };
        (locked == 0).then_some((block, file))
    })
}

/// What code must never see besides what the caller named: agentopt's cwd (unless it is a system
/// directory) and the checkout it was built in (which holds `functions/`, maybe a config list).
fn with_cwd_and_checkout(named: &[PathBuf]) -> Vec<PathBuf> {
    let mut private = named.to_vec();
    if let Ok(cwd) = std::env::current_dir()
        && may_hide(&cwd)
    {
        private.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(checkout) = exe.ancestors().skip(1).find(|dir| dir.join("Cargo.toml").is_file())
        && may_hide(checkout)
    {
        private.push(checkout.to_path_buf());
    }
    private
}

/// Marks every descriptor above stderr close-on-exec in a child about to exec bwrap: what
/// agentopt's own parent left open (a shell's `exec 7<secret`, a CI runner's, a notebook kernel's)
/// must not reach sandboxed code. Rust opens its own descriptors close-on-exec already.
fn close_inherited_descriptors() -> std::io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets descriptor flags.
    let marked = unsafe {
        libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC)
    };
    if marked == 0 {
        return Ok(());
    }
    // Kernels before 5.11: every descriptor up to the limit, one by one.
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given.
    let highest = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        // Bounded: a container's limit may be a million, and this runs for every sandbox started.
        limit.rlim_cur.min(1 << 16) as libc::c_int
    } else {
        1 << 16
    };
    for fd in 3..highest {
        // SAFETY: F_GETFD/F_SETFD on any number is harmless; a closed one answers EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
}

/// Whether agentopt's cwd (or checkout) can be masked without masking the system itself: anything but
/// `/` and the directories that are or hold a system directory (a checkout at `/usr/src/app` is
/// masked; the interpreter's own directories inside it are bound again).
fn may_hide(cwd: &Path) -> bool {
    let system = ["/usr", "/bin", "/lib", "/lib64", "/etc", "/dev", "/proc", "/sys", "/tmp", "/home"];
    cwd != Path::new("/") && !system.iter().any(|s| Path::new(s).starts_with(cwd))
}

/// Asks the interpreter (unsandboxed: it is ours, not the LLM's) where it lives.
fn probe_python(python: &Path) -> Result<PythonFacts, Error> {
    // Besides its prefixes and sys.path: the directories of the shared libraries it maps once ctypes
    // and zlib are loaded (Nix, Homebrew and Spack interpreters find theirs outside both).
    let script = "import sys,os,json,ctypes,zlib\n\
                  maps=[l.split(None,5)[5].strip() for l in open('/proc/self/maps') if len(l.split(None,5))==6]\n\
                  libs=[os.path.dirname(p) for p in maps if p.startswith('/') and '.so' in os.path.basename(p)]\n\
                  print(json.dumps({'executable':sys.executable,'dirs':\
                  [p for p in [sys.prefix,sys.base_prefix,sys.exec_prefix,sys.base_exec_prefix,\
                  os.path.dirname(os.path.realpath(sys.executable))]+sys.path+libs if os.path.exists(p)]}))";
    // A bare name (`python3`, perhaps a pyenv shim) is found the way a shell would: through PATH,
    // which is all the probe keeps of the environment.
    let output = Command::new(python)
        .args(["-I", "-c", script])
        .env_clear()
        .env("PATH", host_path())
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn { python: python.into(), source })?;
    if !output.status.success() {
        return Err(Error::Protocol(format!(
            "`{}` failed to report its prefixes ({}): {}",
            python.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let mut facts: PythonFacts = serde_json::from_slice(&output.stdout)
        .map_err(|e| Error::Protocol(format!("`{}` reported unreadable prefixes: {e}", python.display())))?;
    if !facts.executable.is_absolute() {
        return Err(Error::Protocol(format!(
            "`{}` could not say where it is installed (sys.executable is {:?}); set AGENTOPT_PYTHON \
             to the interpreter's full path (setup.sh makes .venv/bin/python)",
            python.display(),
            facts.executable
        )));
    }
    facts.dirs.sort();
    facts.dirs.dedup();
    Ok(facts)
}

/// Finds bwrap and runs a trivial Python through the exact isolation a worker gets (retrying without
/// the /tmp size cap, which older bwraps lack).
fn probe_bwrap(plan: &mut Plan) -> Result<(), String> {
    let bwrap = find_in_path("bwrap").ok_or("bubblewrap (`bwrap`) is not installed")?;
    plan.bwrap = Some(bwrap);
    let first = probe_once(plan);
    if first.is_ok() {
        return Ok(());
    }
    plan.tmp_size = None;
    if probe_once(plan).is_ok() {
        tracing::warn!("this bwrap cannot cap the size of the sandbox's /tmp; it is limited by RAM only");
        return Ok(());
    }
    plan.bwrap = None;
    first
}

fn probe_once(plan: &Plan) -> Result<(), String> {
    let scratch =
        super::scratch::tempdir("probe").map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let out = plan
        .command(
            scratch.path(),
            &["-I", "-c", "import os; print(os.getpid())"],
            Role::Worker { memory: None },
        )
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run bwrap: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "bwrap failed its probe ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Keeps the last `STDERR_TAIL_BYTES` of a process's stderr, for the message when it dies.
pub(crate) async fn drain_tail(mut stream: impl tokio::io::AsyncRead + Unpin, tail: Arc<Mutex<Vec<u8>>>) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if let Ok(mut tail) = tail.lock() {
            tail.extend_from_slice(&buf[..n]);
            let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
            tail.drain(..excess);
        }
    }
}

/// agentopt's own PATH (a conventional one where it has none).
fn host_path() -> std::ffi::OsString {
    std::env::var_os(crate::env::PATH).unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into())
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&host_path()).map(|dir| dir.join(program)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let identity = Identity { uid: 0, gid: 0, session_uids: Some(session_uid_block()) };
        Plan {
            bwrap: Some("/usr/bin/bwrap".into()),
            python: "/usr/bin/python3".into(),
            view: View::new(&[], &[], &identity).unwrap(),
            as_root: true,
            tmp_size: Some(1024),
            cgroups: None,
        }
    }

    #[test]
    fn only_agentopt_project_dirs_are_hidden() {
        assert!(may_hide(Path::new("/work/project")));
        assert!(may_hide(Path::new("/usr/src/app")));
        assert!(may_hide(Path::new("/tmp/x")));
        assert!(!may_hide(Path::new("/")));
        assert!(!may_hide(Path::new("/usr")));
        assert!(!may_hide(Path::new("/home")));
    }

    #[test]
    fn bwrap_isolates_and_shows_only_the_view() {
        let args =
            plan().bwrap_args(Path::new("/tmp/agentopt-exec-1"), &Role::Worker { memory: None }).join(" ");
        assert!(args.contains("--unshare-net") && args.contains("--unshare-pid"));
        assert!(args.contains("--die-with-parent") && args.contains("--new-session"));
        assert!(!args.contains("--unshare-user"), "root drops its uid instead: {args}");
        assert!(args.contains("--cap-drop ALL --cap-add CAP_SETUID"), "{args}");
        assert!(!args.contains("CAP_SYS_PTRACE") && !args.contains("CAP_NET_ADMIN"), "{args}");
        assert!(args.contains("--ro-bind /usr /usr") && !args.contains("--ro-bind / /"), "{args}");
        assert!(args.ends_with("--chdir /home/sandbox --remount-ro /"), "{args}");
    }

    #[test]
    fn uid_blocks_are_never_claimed_twice_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (first, held) = claim_uid_block(dir.path(), 7).unwrap();
        assert_eq!(first, 7);
        let (second, _) = claim_uid_block(dir.path(), 7).unwrap();
        assert_eq!(second, 8, "block 7 is held");
        drop(held);
        assert_eq!(claim_uid_block(dir.path(), 7).unwrap().0, 7, "free again once its holder is gone");
        let (last, _held) = claim_uid_block(dir.path(), UID_BLOCKS - 1).unwrap();
        assert_eq!(last, UID_BLOCKS - 1);
        assert_eq!(claim_uid_block(dir.path(), UID_BLOCKS - 1).unwrap().0, 0, "wraps around");
    }

    #[test]
    fn session_uids_come_from_this_process_block() {
        let block = session_uid_block();
        assert_eq!(block.len(), 1000);
        assert!(block.start >= 1_100_000 && block.end <= 2_100_000);
    }

    #[test]
    fn environment_is_rebuilt() {
        let cmd = plan().command(Path::new("/tmp/w"), &["-c", "pass"], Role::Worker { memory: None });
        let env: Vec<(String, String)> = cmd
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_string_lossy().into(), v?.to_string_lossy().into())))
            .collect();
        assert!(env.iter().any(|(k, v)| k == "HOME" && v == SANDBOX_HOME));
        assert!(env.iter().all(|(k, _)| !k.contains("KEY")));
    }
}
