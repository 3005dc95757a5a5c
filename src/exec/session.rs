//! `Session`: one conversation's Python worker. Runs code blocks and learned-function calls against
//! persistent state, and replaces the worker (fresh state, functions re-defined) after a timeout or crash.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::fork_server::ForkServer;
use super::launcher::Launcher;
use super::worker::{Failure, Worker};
use super::{Error, ExecStatus, Execution};
use crate::functions::Registry;

/// One conversation's Python process: variables survive between blocks; no code is replayed.
pub struct Session {
    launcher: Arc<Launcher>,
    /// Where its workers fork from; `None`: each gets a sandbox of its own.
    fork_server: Option<Arc<ForkServer>>,
    /// The registry's functions as the worker's `define` request takes them.
    functions: Vec<Value>,
    /// `None` after a failed restart; the next execution tries again.
    worker: Option<Worker>,
}

impl Session {
    /// `forked` runs once the first worker has started, before the registry's functions are defined.
    pub(crate) async fn start(
        launcher: Arc<Launcher>,
        fork_server: Option<Arc<ForkServer>>,
        registry: &Registry,
        forked: impl FnOnce(),
    ) -> Result<Session, Error> {
        let functions = registry
            .functions
            .iter()
            .map(|f| json!({"name": f.name, "code": f.code, "packages": f.packages}))
            .collect();
        let mut session = Session { launcher, fork_server, functions, worker: None };
        let worker = Worker::start(&session.launcher, session.fork_server.as_ref()).await;
        forked();
        session.worker = Some(session.defined(worker?).await?);
        Ok(session)
    }

    /// A worker with the registry's functions defined. Top-level code that hangs or kills its
    /// worker costs this conversation one time limit, not the whole run: a second worker starts
    /// with every function marked as failed to define (the reason is what calling one reports), and
    /// the session keeps that for its later restarts.
    async fn fresh_worker(&mut self) -> Result<Worker, Error> {
        let worker = Worker::start(&self.launcher, self.fork_server.as_ref()).await?;
        self.defined(worker).await
    }

    /// `worker` with the registry's functions defined (see `fresh_worker`).
    async fn defined(&mut self, mut worker: Worker) -> Result<Worker, Error> {
        if self.functions.is_empty() {
            return Ok(worker);
        }
        let request = json!({"op": "define", "functions": self.functions});
        let failure = match worker.request(&request, self.launcher.config.timeout).await {
            // A function that fails to define is reported to the assistant when it is called.
            Ok((reply, _)) => {
                if let Some(errors) = reply.get("errors").and_then(Value::as_object)
                    && !errors.is_empty()
                {
                    tracing::debug!("registry functions that failed to define: {errors:?}");
                }
                return Ok(worker);
            }
            Err(Failure::Timeout) => {
                worker.kill().await;
                format!(
                    "defining the registry's functions did not finish within {} s (top-level code \
                     must only define functions and import modules)",
                    self.launcher.config.timeout.as_secs_f64()
                )
            }
            Err(Failure::Died(message)) => {
                format!("defining the registry's functions crashed Python: {message}")
            }
        };
        tracing::debug!("{failure}");
        for function in &mut self.functions {
            let name = function["name"].clone();
            *function = json!({"name": name, "error": failure});
        }
        let mut worker = Worker::start(&self.launcher, self.fork_server.as_ref()).await?;
        let request = json!({"op": "define", "functions": self.functions});
        match worker.request(&request, self.launcher.config.timeout).await {
            Ok(_) => Ok(worker),
            Err(_) => Err(Error::Protocol(format!("a worker failed again after {failure}"))),
        }
    }

    /// Runs a code block in the session's persistent namespace.
    pub async fn run_code(&mut self, code: &str) -> Execution {
        self.execute(code.to_string(), json!({"op": "exec", "code": code})).await
    }

    /// Calls a learned function by name with raw JSON arguments (an object).
    pub async fn call_function(&mut self, name: &str, arguments_json: &str) -> Execution {
        let shown = format!("{name}({arguments_json})");
        // Models send "" for functions without parameters.
        let raw = if arguments_json.trim().is_empty() { "{}" } else { arguments_json };
        let args = match serde_json::from_str::<Value>(raw) {
            Ok(args @ Value::Object(_)) => args,
            Ok(other) => {
                let message = format!(
                    "Error: the arguments of `{name}` must be a JSON object of named parameters, got {other}"
                );
                return Execution::refused(shown, message);
            }
            Err(e) => {
                let message = format!(
                    "Error: the arguments of `{name}` are not valid JSON ({e}); send a JSON object such \
                     as {{\"x\": 1}}"
                );
                return Execution::refused(shown, message);
            }
        };
        self.execute(shown, json!({"op": "call", "name": name, "args": args})).await
    }

    async fn execute(&mut self, shown: String, request: Value) -> Execution {
        let cap = self.launcher.config.output_cap_bytes;
        if self.worker.is_none() {
            match self.fresh_worker().await {
                Ok(worker) => self.worker = Some(worker),
                Err(e) => {
                    return Execution::failed(
                        shown,
                        ExecStatus::Crashed,
                        format!("The Python session could not be started: {e}"),
                        0,
                    );
                }
            }
        }
        let Some(worker) = self.worker.as_mut() else { unreachable!("a worker was just started") };
        let started = Instant::now();
        let outcome = worker.request(&request, self.launcher.config.timeout).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        // What the code printed before it was cut short is kept: it is often the clue to why.
        let partial = worker.take_partial();
        match outcome {
            Ok((reply, ran)) => Execution::from_reply(shown, &reply, ran.as_millis() as u64, cap),
            Err(Failure::Timeout) => {
                self.restart().await;
                let message = format!(
                    "Timeout: the code ran longer than {} s and was killed. The Python session was \
                     restarted: variables, imports and definitions from earlier code blocks are gone.",
                    self.launcher.config.timeout.as_secs_f64()
                );
                Execution::cut_short(shown, ExecStatus::Timeout, partial, message, duration_ms, cap)
            }
            Err(Failure::Died(how)) => {
                self.restart().await;
                let message = format!(
                    "{how}. The Python session was restarted: variables, imports and definitions from \
                     earlier code blocks are gone."
                );
                Execution::cut_short(shown, ExecStatus::Crashed, partial, message, duration_ms, cap)
            }
        }
    }

    /// Kills the worker (its whole process group) and starts a fresh one.
    async fn restart(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.kill().await;
        }
        match self.fresh_worker().await {
            Ok(worker) => self.worker = Some(worker),
            Err(e) => tracing::warn!("restarting the Python session failed (retried on next use): {e}"),
        }
    }

    /// Ends the worker (also done on drop).
    pub async fn close(mut self) {
        if let Some(worker) = self.worker.take() {
            worker.kill().await;
        }
    }
}
