//! `Deferred`: a `Sandbox` whose probe runs on a blocking thread while the command goes on, so the
//! first model calls go out during the probe's interpreter and bubblewrap runs (0.1–0.2 s, longer
//! behind a pyenv shim) instead of after them. As root, the quick fork server's start takes the
//! place of the bubblewrap run (the full probe runs only if it fails). Sessions and validations
//! wait for the probe; a command that must not go on without a sandbox races its work against
//! `failure`.

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::fork_server;
use super::runner::{CodeSession, Runner};
use super::sandbox::Sandbox;
use super::{Error, SandboxConfig};
use crate::functions::{FunctionDef, Registry};

/// Cheap to clone: clones share one probe.
#[derive(Clone)]
pub struct Deferred {
    probed: Shared<BoxFuture<'static, Result<Sandbox, Arc<Error>>>>,
    /// The sandbox's fork servers, made before it: sessions expected while the probe runs are
    /// counted there.
    fork_servers: Arc<fork_server::Pair>,
    forks_likely: bool,
}

impl Deferred {
    /// Starts the probe (and then the fork server, see `Sandbox::prestart`). Needs a tokio runtime.
    /// Where sessions fork (as root, bwrap on PATH), the quick fork server's start is the check of
    /// bubblewrap; only if it fails does the full probe run, to find out why (or what else works).
    pub fn start(config: SandboxConfig) -> Deferred {
        let fork_servers = Arc::new(fork_server::Pair::new(config.spare_sessions));
        let (servers, first_servers) = (fork_servers.clone(), fork_servers.clone());
        // Until the probe is done, whether a pool in front should stand aside (see
        // `prepares_sessions`) is judged from what makes sessions fork.
        // SAFETY: geteuid has no preconditions and cannot fail.
        let forks_likely = config.fork_server && unsafe { libc::geteuid() } == 0;
        let probed = async move {
            let first = config.clone();
            if let Some(sandbox) = blocking(move || Sandbox::checked_by_fork_server(first, servers)).await?
                && sandbox.start_quick_server().await
            {
                return Ok(sandbox);
            }
            let servers = Arc::new(first_servers.following());
            let sandbox = blocking(move || Sandbox::sharing(config, servers)).await?;
            sandbox.prestart();
            Ok(sandbox)
        }
        .boxed()
        .shared();
        // Driven now, not on first use: the fork server should be starting while the models answer.
        tokio::spawn(probed.clone());
        Deferred { probed, fork_servers, forks_likely }
    }

    /// The probed sandbox, or why there is none (the same error for every caller).
    pub async fn ready(&self) -> Result<Sandbox, Arc<Error>> {
        self.probed.clone().await
    }

    /// Resolves only if the probe fails, with its error; pending forever once it has succeeded.
    pub async fn failure(&self) -> Arc<Error> {
        match self.ready().await {
            Err(e) => e,
            Ok(_) => std::future::pending().await,
        }
    }
}

/// Runs a probe step on a blocking thread.
async fn blocking<T: Send + 'static>(
    step: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Arc<Error>> {
    match tokio::task::spawn_blocking(step).await {
        Ok(done) => done.map_err(Arc::new),
        Err(join) => Err(Arc::new(Error::Protocol(format!("the sandbox probe failed: {join}")))),
    }
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred").field("probed", &self.probed.peek().map(|r| r.is_ok())).finish()
    }
}

#[async_trait]
impl Runner for Deferred {
    async fn session(&self, registry: &Registry) -> Result<Box<dyn CodeSession>, Error> {
        let sandbox = self.ready().await.map_err(Error::Probe)?;
        Ok(Box::new(sandbox.session(registry).await?))
    }
    async fn validate_function(&self, def: &FunctionDef) -> Result<Result<(), String>, Error> {
        self.ready().await.map_err(Error::Probe)?.validate_function(def).await
    }
    fn expect_sessions(&self, count: usize) {
        match self.probed.peek() {
            Some(Ok(sandbox)) => sandbox.expect_sessions(count),
            _ => self.fork_servers.expect(count),
        }
    }
    fn prepares_sessions(&self) -> bool {
        match self.probed.peek() {
            Some(Ok(sandbox)) => sandbox.forks_sessions(),
            Some(Err(_)) => false,
            None => self.forks_likely,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_probe_reaches_every_caller_and_failure() {
        let config =
            SandboxConfig { python: "/nonexistent/agentopt-test-python".into(), ..SandboxConfig::default() };
        let deferred = Deferred::start(config);
        let failure = deferred.failure().await;
        assert!(matches!(*failure, Error::Spawn { .. }), "{failure:?}");
        let session = deferred.session(&Registry::default()).await;
        assert!(matches!(session, Err(Error::Probe(ref e)) if matches!(**e, Error::Spawn { .. })));
        let message = format!("{}", deferred.ready().await.unwrap_err());
        assert!(message.contains("/nonexistent/agentopt-test-python"), "{message}");
    }
}
