//! `Sandbox`: the top of `exec`. It probes once (`launcher::Plan::probe`), starts the fork servers
//! where they apply, starts sessions and validates proposed functions. Read down from here:
//! `session` → `worker` → `fork_server` → `launcher` → `view` / `memcg` / `seccomp`.

use std::sync::Arc;

use super::fork_server::{self, ForkServer};
use super::launcher::{Launcher, Plan};
use super::session::Session;
use super::worker::{Failure, Worker};
use super::{Error, SandboxConfig};
use crate::functions::{FunctionDef, IDENTIFIER_RULE, Registry, is_identifier};

/// Starts sessions; checks once whether isolation is available. Cheap to clone (sessions of clones
/// share the probe's findings).
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub config: SandboxConfig,
    plan: Arc<Plan>,
    /// Where they apply: the quick one started on first use (or `prestart`, or as `Deferred`'s
    /// check), the full one once the first sessions are served; when neither can start, sessions
    /// get sandboxes of their own.
    fork_servers: Arc<fork_server::Pair>,
}

impl Sandbox {
    /// Probes the interpreter and bubblewrap once (see `Plan::probe`: call it at start-up, not per
    /// conversation).
    pub fn new(config: SandboxConfig) -> Result<Sandbox, Error> {
        let fork_servers = Arc::new(fork_server::Pair::new(config.spare_sessions));
        Sandbox::sharing(config, fork_servers)
    }

    /// `new`, with servers (and their estimate of the sessions to come) that a `Deferred` holds
    /// before its probe is done.
    pub(super) fn sharing(
        config: SandboxConfig,
        fork_servers: Arc<fork_server::Pair>,
    ) -> Result<Sandbox, Error> {
        let plan = Plan::probe(&config)?;
        Ok(Sandbox { config, plan: Arc::new(plan), fork_servers })
    }

    /// `sharing` without the probe's bubblewrap run, where the quick fork server's start will be
    /// the check (`start_quick_server`); `None` where that does not apply.
    pub(super) fn checked_by_fork_server(
        config: SandboxConfig,
        fork_servers: Arc<fork_server::Pair>,
    ) -> Result<Option<Sandbox>, Error> {
        let plan = Plan::probe_by_fork_server(&config)?;
        Ok(plan.map(|plan| Sandbox { config, plan: Arc::new(plan), fork_servers }))
    }

    /// Starts the quick fork server and waits until it listens; false if it could not start.
    pub(super) async fn start_quick_server(&self) -> bool {
        self.fork_servers.start_quick(&self.launcher()).await
    }

    /// About `count` more sessions will be asked for: the fork servers keep no more spares than
    /// that, nor fewer than the sessions waiting (see `fork_server::Pair`).
    pub fn expect_sessions(&self, count: usize) {
        self.fork_servers.expect(count);
    }

    /// True when workers run under bubblewrap.
    pub fn is_isolated(&self) -> bool {
        self.plan.is_isolated()
    }

    /// True when sessions fork from one sandboxed server (see `fork_server`): under bubblewrap, as
    /// root (each child drops to its own uid), unless `config.fork_server` is off.
    pub fn forks_sessions(&self) -> bool {
        fork_server::applies(self.is_isolated(), self.plan.as_root(), self.config.fork_server)
    }

    /// Starts the quick fork server in the background now, so the first session does not wait for
    /// its interpreter and imports. Needs a tokio runtime; a no-op where the server does not apply.
    pub fn prestart(&self) {
        if self.forks_sessions()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let sandbox = self.clone();
            runtime.spawn(async move { sandbox.fork_server(&sandbox.launcher()).await });
        }
    }

    /// The launcher with this sandbox's limits.
    fn launcher(&self) -> Arc<Launcher> {
        Arc::new(Launcher { config: self.config.clone(), plan: self.plan.clone() })
    }

    /// The fork server sessions start from (`None`: each gets a sandbox of its own).
    async fn fork_server(&self, launcher: &Launcher) -> Option<Arc<ForkServer>> {
        if !self.forks_sessions() {
            return None;
        }
        let server = self.fork_servers.pick(launcher).await;
        if server.is_none() {
            tracing::warn!("no fork server could start; every session gets a sandbox of its own instead");
        }
        server
    }

    /// Marks a session or function check asked for until the guard drops: counted once served,
    /// not when asked, so a burst asking for more than the spares ready finds the server still
    /// forking for those waiting (see `fork_server::Pair`).
    fn asking(&self, launcher: &Launcher) -> Option<fork_server::Asking> {
        self.forks_sessions().then(|| self.fork_servers.asking(launcher))
    }

    /// A fresh, isolated Python session with the registry's functions defined.
    pub async fn session(&self, registry: &Registry) -> Result<Session, Error> {
        let launcher = self.launcher();
        let asking = self.asking(&launcher);
        let fork_server = self.fork_server(&launcher).await;
        // Served once its worker is forked: defining the registry's functions (an import of sympy
        // in a quick server's child, say) is not waiting for the server.
        Session::start(launcher, fork_server, registry, move || drop(asking)).await
    }

    /// Checks a proposed function inside the sandbox: the code compiles, defines a callable named
    /// `def.name`, its declared packages import, and its signature takes the parameters the schema
    /// declares (and needs no undeclared one). `Err` holds the message shown to the optimizer.
    pub async fn validate_function(&self, def: &FunctionDef) -> Result<Result<(), String>, Error> {
        if !is_identifier(&def.name) {
            return Ok(Err(format!("invalid function name `{}`: it must match {IDENTIFIER_RULE}", def.name)));
        }
        let launcher = self.launcher();
        let asking = self.asking(&launcher);
        let fork_server = self.fork_server(&launcher).await;
        // Preloaded like a session's, so a proposed function's `import sympy` is not charged to its
        // time limit (the worker finishes the preload before the clock starts).
        let mut worker = Worker::start(&launcher, fork_server.as_ref()).await?;
        drop(asking);
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
