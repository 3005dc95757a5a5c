//! `Sandbox`: decides once how workers are isolated (bubblewrap plus rlimits, or — only when the user
//! insists — nothing), builds each worker's command line, starts sessions and validates functions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Deserialize;

use super::fork_server::{self, ForkServer};
use super::session::Session;
use super::worker::{Failure, Worker};
use super::{Error, SandboxConfig};
use crate::functions::{FunctionDef, Registry, is_identifier};

/// Where the private work directory appears inside the sandbox (also `$HOME` and the cwd); under the
/// private /tmp on systems without /home (bwrap cannot create mount points on the read-only root).
pub(crate) const SANDBOX_HOME: &str = "/home/sandbox";
const SANDBOX_HOME_FALLBACK: &str = "/tmp/home";

/// Runs the embedded worker under a file name its tracebacks can be recognised (and hidden) by.
const BOOTSTRAP: &str = "import sys;exec(compile(sys.argv[1],'<agentopt-worker>','exec'))";
const WORKER_SOURCE: &str = include_str!("worker.py");

/// Starts sessions; checks once whether isolation is available. Cheap to clone (sessions of clones
/// share the probe's findings).
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub config: SandboxConfig,
    plan: Arc<Plan>,
    /// Started on first use (or `prestart`) where they apply; when neither can start, sessions get
    /// sandboxes of their own.
    fork_servers: Arc<fork_server::Pair>,
}

/// What the probe found: how to isolate, and what the interpreter needs to see.
#[derive(Debug)]
pub(crate) struct Plan {
    /// `None`: run unsandboxed (the user passed `--unsafe-no-sandbox` and bwrap is unusable).
    bwrap: Option<PathBuf>,
    /// The interpreter as it names itself (`sys.executable`: symlinks into a venv resolved).
    python: PathBuf,
    /// The interpreter's prefixes, re-exposed read-only over the hidden directories.
    python_dirs: Vec<PathBuf>,
    /// Directories hidden behind an empty tmpfs: home directories and agentopt's own cwd (which may
    /// hold an `OAI_CONFIG_LIST` with keys, the cache and the runs).
    hidden: Vec<PathBuf>,
    /// Host root: workers drop to a uid of their own (RLIMIT_NPROC never binds uid 0).
    as_root: bool,
    /// Size cap of the private /tmp (a tmpfs lives in RAM); `None` when this bwrap lacks `--size`.
    tmp_size: Option<u64>,
    /// `SANDBOX_HOME`, or its fallback.
    inner_home: &'static str,
}

/// One session's view of the sandbox: the limits in force when it started, and the plan.
#[derive(Debug)]
pub(crate) struct Launcher {
    pub config: SandboxConfig,
    pub plan: Arc<Plan>,
    /// Where sessions fork from; `None`: each worker gets a sandbox of its own.
    pub fork_server: Option<Arc<ForkServer>>,
}

#[derive(Deserialize)]
struct PythonFacts {
    executable: PathBuf,
    dirs: Vec<PathBuf>,
}

impl Sandbox {
    /// Probes the interpreter and bubblewrap once (two short blocking subprocess runs: call it at
    /// start-up, not per conversation). Without working isolation this fails with `Error::NoSandbox`
    /// unless `config.allow_unsandboxed`, in which case it warns loudly.
    pub fn new(config: SandboxConfig) -> Result<Sandbox, Error> {
        let facts = probe_python(&config.python)?;
        let mut hidden: Vec<PathBuf> =
            ["/root", "/home"].iter().map(PathBuf::from).filter(|p| p.is_dir()).collect();
        if let Ok(cwd) = std::env::current_dir()
            && may_hide(&cwd)
        {
            hidden.push(cwd);
        }
        let mut plan = Plan {
            bwrap: None,
            python: facts.executable,
            python_dirs: facts.dirs,
            hidden,
            // SAFETY: geteuid has no preconditions and cannot fail.
            as_root: unsafe { libc::geteuid() } == 0,
            tmp_size: Some(config.file_size_bytes),
            inner_home: if Path::new("/home").is_dir() { SANDBOX_HOME } else { SANDBOX_HOME_FALLBACK },
        };
        match probe_bwrap(&mut plan) {
            Ok(()) => {}
            Err(reason) if config.allow_unsandboxed => {
                let message = format!(
                    "WARNING: no sandbox ({reason}); running LLM-written code UNSANDBOXED because \
                     --unsafe-no-sandbox was given. It can read your files and use the network."
                );
                tracing::warn!("{message}");
                eprintln!("{message}");
            }
            Err(reason) => return Err(Error::NoSandbox { reason }),
        }
        Ok(Sandbox { config, plan: Arc::new(plan), fork_servers: Arc::default() })
    }

    /// True when workers run under bubblewrap.
    pub fn is_isolated(&self) -> bool {
        self.plan.bwrap.is_some()
    }

    /// True when sessions fork from one sandboxed server (see `fork_server`): under bubblewrap, as
    /// root (each child drops to its own uid), unless `config.fork_server` is off.
    pub fn forks_sessions(&self) -> bool {
        fork_server::applies(self.is_isolated(), self.plan.as_root, self.config.fork_server)
    }

    /// Starts the fork server in the background now, so the first session does not wait for its
    /// interpreter and imports. Needs a tokio runtime; a no-op where the server does not apply.
    pub fn prestart(&self) {
        if self.forks_sessions()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let sandbox = self.clone();
            runtime.spawn(async move { sandbox.launcher().await });
        }
    }

    async fn launcher(&self) -> Arc<Launcher> {
        let base = Launcher { config: self.config.clone(), plan: self.plan.clone(), fork_server: None };
        if !self.forks_sessions() {
            return Arc::new(base);
        }
        let server = self.fork_servers.pick(&base).await;
        if server.is_none() {
            tracing::warn!("no fork server could start; every session gets a sandbox of its own instead");
        }
        Arc::new(Launcher { fork_server: server, ..base })
    }

    /// A fresh, isolated Python session with the registry's functions defined.
    pub async fn session(&self, registry: &Registry) -> Result<Session, Error> {
        Session::start(self.launcher().await, registry).await
    }

    /// Checks a proposed function inside the sandbox: the code compiles, defines a callable named
    /// `def.name`, its declared packages import, and its signature takes the parameters the schema
    /// declares (and needs no undeclared one). `Err` holds the message shown to the optimizer.
    pub async fn validate_function(&self, def: &FunctionDef) -> Result<Result<(), String>, Error> {
        if !is_identifier(&def.name) {
            return Ok(Err(format!(
                "invalid function name `{}`: it must match [A-Za-z_][A-Za-z0-9_]{{0,63}}",
                def.name
            )));
        }
        let launcher = self.launcher().await;
        // Preloaded like a session's, so a proposed function's `import sympy` is not charged to its
        // time limit (the worker finishes the preload before the clock starts).
        let mut worker = Worker::start(&launcher).await?;
        let request = serde_json::json!({
            "op": "validate", "name": def.name, "code": def.code, "packages": def.packages,
            "parameters": def.parameters,
        });
        let outcome = worker.request(&request, launcher.config.timeout).await;
        worker.kill().await;
        Ok(match outcome {
            Ok((reply, _)) => match reply.get("error").and_then(|e| e.as_str()) {
                Some(message) => Err(message.trim_end().to_string()),
                None => Ok(()),
            },
            Err(Failure::Timeout) => Err(format!(
                "defining `{}` did not finish within {} s: top-level code must only define the \
                 function (and import modules), not run long computations",
                def.name,
                launcher.config.timeout.as_secs_f64()
            )),
            Err(Failure::Died(message)) => Err(format!("defining `{}` crashed Python: {message}", def.name)),
        })
    }
}

/// Per-worker uids for the root case, so one session's fork bomb does not eat another's budget.
static NEXT_UID: AtomicU32 = AtomicU32::new(0);

impl Launcher {
    /// The same isolation, every worker in a sandbox of its own.
    pub fn without_fork_server(&self) -> Launcher {
        Launcher { config: self.config.clone(), plan: self.plan.clone(), fork_server: None }
    }

    /// The uid the worker drops to (host root under bwrap only: unsandboxed, the interpreter may live
    /// in root's private home, and that mode promises no isolation anyway).
    pub fn worker_uid(&self) -> Option<u32> {
        (self.plan.as_root && self.plan.bwrap.is_some()).then(|| {
            let n = NEXT_UID.fetch_add(1, Ordering::Relaxed) % 1000;
            1_100_000 + (std::process::id() % 1000) * 1000 + n
        })
    }

    /// The worker's working directory as the worker sees it.
    pub fn inner_workdir(&self, host: &Path) -> PathBuf {
        if self.plan.bwrap.is_some() { PathBuf::from(self.plan.inner_home) } else { host.to_path_buf() }
    }

    /// The command starting a worker on `workdir` with the given JSON configuration.
    pub fn worker_command(&self, workdir: &Path, worker_config: &str) -> Command {
        let python_args = ["-I", "-B", "-c", BOOTSTRAP, WORKER_SOURCE, worker_config];
        self.plan.command(workdir, &python_args)
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
    ) -> Result<tokio::process::Child, Error> {
        let mut cmd = tokio::process::Command::from(self.worker_command(workdir, worker_config));
        cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).process_group(0);
        cmd.spawn().map_err(|source| Error::Spawn { python: self.python().into(), source })
    }
}

impl Plan {
    /// `python_args` run under bwrap (or bare, unsandboxed) with a scrubbed environment.
    fn command(&self, workdir: &Path, python_args: &[&str]) -> Command {
        let inner_home = if self.bwrap.is_some() { Path::new(self.inner_home) } else { workdir };
        let mut cmd = match &self.bwrap {
            Some(bwrap) => {
                let mut cmd = Command::new(bwrap);
                cmd.args(self.bwrap_args(workdir)).arg("--").arg(&self.python);
                cmd
            }
            None => {
                let mut cmd = Command::new(&self.python);
                cmd.current_dir(workdir);
                cmd
            }
        };
        cmd.args(python_args);
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

    fn bwrap_args(&self, workdir: &Path) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
        push(&["--die-with-parent", "--new-session"]);
        // --unshare-all minus the user namespace when we are root: a user namespace would keep uid 0
        // (exempt from RLIMIT_NPROC) and forbid the worker's drop to an unprivileged uid.
        push(&["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]);
        if !self.as_root {
            push(&["--unshare-user"]);
        }
        push(&["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]);
        for dir in &self.hidden {
            let dir = dir.to_string_lossy();
            push(&["--tmpfs", &dir]);
        }
        // The private /tmp goes up before the interpreter is re-exposed: a checkout (and its .venv)
        // may itself live under /tmp.
        let tmp_size = self.tmp_size.map(|size| size.to_string());
        if let Some(size) = &tmp_size {
            push(&["--size", size]);
        }
        push(&["--perms", "1777", "--tmpfs", "/tmp"]);
        let covered: Vec<&Path> =
            self.hidden.iter().map(PathBuf::as_path).chain(std::iter::once(Path::new("/tmp"))).collect();
        let mut made: Vec<&Path> = Vec::new();
        for dir in &self.python_dirs {
            let Some(hidden) = covered.iter().find(|h| dir.starts_with(h)) else { continue };
            // bwrap would create the missing parents as 0700, unreadable after the uid drop.
            let mut parents: Vec<&Path> = dir.ancestors().skip(1).take_while(|a| a != hidden).collect();
            parents.reverse();
            for parent in parents {
                if !made.contains(&parent) {
                    made.push(parent);
                    let parent = parent.to_string_lossy();
                    push(&["--perms", "0755", "--dir", &parent]);
                }
            }
            let dir = dir.to_string_lossy();
            push(&["--ro-bind", &dir, &dir]);
        }
        let workdir = workdir.to_string_lossy();
        push(&["--bind", &workdir, self.inner_home, "--chdir", self.inner_home]);
        args
    }
}

/// Whether agentopt's cwd can be hidden without hiding the system itself.
fn may_hide(cwd: &Path) -> bool {
    let system = ["/usr", "/bin", "/lib", "/lib64", "/etc", "/dev", "/proc", "/sys", "/tmp", "/home"];
    cwd != Path::new("/") && !system.iter().any(|s| Path::new(s).starts_with(cwd) || cwd.starts_with(s))
}

/// Asks the interpreter (unsandboxed: it is ours, not the LLM's) where it lives.
fn probe_python(python: &Path) -> Result<PythonFacts, Error> {
    let script = "import sys,os,json;print(json.dumps({'executable':sys.executable,'dirs':\
                  [sys.prefix,sys.base_prefix,sys.exec_prefix,sys.base_exec_prefix,\
                  os.path.dirname(os.path.realpath(sys.executable))]}))";
    let output = Command::new(python)
        .args(["-I", "-c", script])
        .env_clear()
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
    let scratch = tempfile::Builder::new()
        .prefix("agentopt-probe-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let out = plan
        .command(scratch.path(), &["-I", "-c", "import os; print(os.getpid())"])
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

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os(crate::env::PATH).unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            bwrap: Some("/usr/bin/bwrap".into()),
            python: "/root/.pyenv/versions/3.11.7/bin/python3".into(),
            python_dirs: vec!["/root/.pyenv/versions/3.11.7".into(), "/opt/venv".into()],
            hidden: vec!["/root".into(), "/home".into()],
            as_root: true,
            tmp_size: Some(1024),
            inner_home: SANDBOX_HOME,
        }
    }

    #[test]
    fn only_agentopt_project_dirs_are_hidden() {
        assert!(may_hide(Path::new("/work/project")));
        assert!(!may_hide(Path::new("/")));
        assert!(!may_hide(Path::new("/usr/local")));
        assert!(!may_hide(Path::new("/tmp/x")));
    }

    #[test]
    fn bwrap_isolates_and_re_exposes_the_interpreter() {
        let args = plan().bwrap_args(Path::new("/tmp/agentopt-exec-1")).join(" ");
        assert!(args.contains("--unshare-net") && args.contains("--unshare-pid"));
        assert!(args.contains("--die-with-parent") && args.contains("--new-session"));
        assert!(!args.contains("--unshare-user"), "root drops its uid instead: {args}");
        assert!(args.contains("--tmpfs /root"));
        // Parents made traversable, then the prefix bound over the hidden home.
        let parents = args.find("--perms 0755 --dir /root/.pyenv --perms 0755 --dir /root/.pyenv/versions");
        let bind = args.find("--ro-bind /root/.pyenv/versions/3.11.7 /root/.pyenv/versions/3.11.7");
        assert!(parents.is_some() && bind.is_some() && parents < bind, "{args}");
        assert!(!args.contains("--ro-bind /opt/venv"), "visible dirs need no bind: {args}");
        assert!(args.contains("--size 1024 --perms 1777 --tmpfs /tmp"));
        assert!(args.ends_with("--bind /tmp/agentopt-exec-1 /home/sandbox --chdir /home/sandbox"));
    }

    #[test]
    fn environment_is_rebuilt() {
        let cmd = plan().command(Path::new("/tmp/w"), &["-c", "pass"]);
        let env: Vec<(String, String)> = cmd
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_string_lossy().into(), v?.to_string_lossy().into())))
            .collect();
        assert!(env.iter().any(|(k, v)| k == "HOME" && v == SANDBOX_HOME));
        assert!(env.iter().all(|(k, _)| !k.contains("KEY")));
    }
}
