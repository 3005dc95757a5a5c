//! The executor seen by the conversation loop, the optimizer and `python:` metrics: a small trait over `exec::Sandbox`
//! so the loop can be unit-tested with a fake executor (no Python, no sandbox).

use async_trait::async_trait;

use crate::exec::{self, Execution};
use crate::functions::{FunctionDef, Registry};

/// Starts code sessions and validates proposed functions.
#[async_trait]
pub trait Runner: Send + Sync {
    /// A fresh session with the registry's functions defined.
    async fn session(&self, registry: &Registry) -> Result<Box<dyn CodeSession>, exec::Error>;
    /// `Ok(Err(message))` when the function is invalid; the message is shown to the optimizer.
    async fn validate_function(&self, def: &FunctionDef) -> Result<Result<(), String>, exec::Error>;
    /// About `count` more sessions will be asked for (a phase's conversations, some of which may
    /// run no code): an estimate, by which a runner that prepares sessions ahead of demand prepares
    /// no more than that (but always enough for the sessions waiting).
    fn expect_sessions(&self, _count: usize) {}
    /// True when this runner itself keeps sessions ready ahead of demand (a pool in front of it
    /// would only hold sessions that are never used).
    fn prepares_sessions(&self) -> bool {
        false
    }
}

/// One conversation's persistent Python session.
#[async_trait]
pub trait CodeSession: Send {
    async fn run_code(&mut self, code: &str) -> Execution;
    async fn call_function(&mut self, name: &str, arguments_json: &str) -> Execution;
    async fn close(self: Box<Self>);
}

#[async_trait]
impl Runner for exec::Sandbox {
    async fn session(&self, registry: &Registry) -> Result<Box<dyn CodeSession>, exec::Error> {
        Ok(Box::new(exec::Sandbox::session(self, registry).await?))
    }
    async fn validate_function(&self, def: &FunctionDef) -> Result<Result<(), String>, exec::Error> {
        exec::Sandbox::validate_function(self, def).await
    }
    fn expect_sessions(&self, count: usize) {
        exec::Sandbox::expect_sessions(self, count)
    }
    fn prepares_sessions(&self) -> bool {
        self.forks_sessions()
    }
}

#[async_trait]
impl CodeSession for exec::Session {
    async fn run_code(&mut self, code: &str) -> Execution {
        exec::Session::run_code(self, code).await
    }
    async fn call_function(&mut self, name: &str, arguments_json: &str) -> Execution {
        exec::Session::call_function(self, name, arguments_json).await
    }
    async fn close(self: Box<Self>) {
        exec::Session::close(*self).await
    }
}

/// A fake executor for unit tests: `print(X)` prints X, code containing `raise` fails, a learned
/// function returns `name(args)` unless its code contains `raise`; validation checks `def name(`.
#[cfg(test)]
pub mod fake {
    use super::*;
    use crate::exec::ExecStatus;

    pub struct FakeRunner;

    struct FakeSession {
        registry: Registry,
    }

    pub fn execution(code: &str, status: ExecStatus, stdout: &str, stderr: &str) -> Execution {
        Execution {
            code: code.into(),
            status,
            stdout: stdout.into(),
            stderr: stderr.into(),
            result: None,
            duration_ms: 1,
            truncated: false,
            shell: None,
        }
    }

    #[async_trait]
    impl Runner for FakeRunner {
        async fn session(&self, registry: &Registry) -> Result<Box<dyn CodeSession>, exec::Error> {
            Ok(Box::new(FakeSession { registry: registry.clone() }))
        }
        async fn validate_function(&self, def: &FunctionDef) -> Result<Result<(), String>, exec::Error> {
            if def.code.contains(&format!("def {}(", def.name)) {
                Ok(Ok(()))
            } else {
                Ok(Err(format!("the code does not define a callable named `{}`", def.name)))
            }
        }
    }

    #[async_trait]
    impl CodeSession for FakeSession {
        async fn run_code(&mut self, code: &str) -> Execution {
            if code.contains("raise") {
                return execution(code, ExecStatus::Error, "", &format!("Traceback: {code}"));
            }
            let out: String = code
                .lines()
                .filter_map(|l| l.trim().strip_prefix("print(")?.strip_suffix(')').map(|x| format!("{x}\n")))
                .collect();
            execution(code, ExecStatus::Ok, &out, "")
        }
        async fn call_function(&mut self, name: &str, arguments_json: &str) -> Execution {
            let code = format!("{name}({arguments_json})");
            match self.registry.get(name) {
                Some(f) if f.code.contains("raise") => {
                    execution(&code, ExecStatus::Error, "", "Traceback: boom")
                }
                Some(_) => {
                    let mut e = execution(&code, ExecStatus::Ok, "", "");
                    e.result = Some(format!("'{name}:{arguments_json}'"));
                    e
                }
                None => execution(&code, ExecStatus::Error, "", &format!("NameError: {name}")),
            }
        }
        async fn close(self: Box<Self>) {}
    }
}
