//! Registries from Python: load, save and export them, check them in the sandbox as `--functions`
//! registries are checked, and call one function in a sandbox session of its own, the way the agent
//! calls it. Sandboxes are kept per time limit, so calls after the first do not start one again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::prelude::*;

use agentopt::agent::proxy::format_execution;
use agentopt::exec::Runner;
use agentopt::functions::Registry;

use crate::errors;
use crate::job::Job;

/// A registry from the Python half's JSON (always agentopt's own format).
pub fn parse_registry(py: Python<'_>, json: &str) -> PyResult<Registry> {
    serde_json::from_str(json).map_err(|e| errors::input(py, format!("invalid registry: {e}")))
}

#[pyfunction]
pub fn registry_load(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    let registry =
        Registry::load(&path).map_err(|e| errors::from_anyhow(py, agentopt::commands::bad_input(e)))?;
    serde_json::to_string(&registry).map_err(|e| errors::run(py, e.to_string()))
}

/// A registry given as JSON text in any accepted format, checked as a file would be; agentopt's format back.
#[pyfunction]
pub fn registry_load_json(py: Python<'_>, text: &str) -> PyResult<String> {
    let (registry, _) = Registry::parse(text, Path::new("<registry given in Python>"))
        .map_err(|e| errors::from_anyhow(py, agentopt::commands::bad_input(e)))?;
    serde_json::to_string(&registry).map_err(|e| errors::run(py, e.to_string()))
}

#[pyfunction]
pub fn registry_save(py: Python<'_>, json: &str, path: PathBuf) -> PyResult<()> {
    parse_registry(py, json)?.save(&path).map_err(|e| errors::from_anyhow(py, e.into()))
}

#[pyfunction]
pub fn registry_to_autogen(py: Python<'_>, json: &str) -> PyResult<String> {
    Ok(agentopt::inspect::export::to_autogen(&parse_registry(py, json)?).to_string())
}

/// The sandbox for code with this time limit, started once per process. Code never sees `hidden`
/// (the Python half passes the cache and the runs directory) nor the config list file the CLI's
/// lookup would find (env `OAI_CONFIG_LIST`, `./OAI_CONFIG_LIST`), which may hold keys.
pub async fn runner(exec_timeout: f64, hidden: Vec<PathBuf>) -> anyhow::Result<Arc<dyn Runner>> {
    type Runners = HashMap<(u64, Vec<PathBuf>), Arc<dyn Runner>>;
    static RUNNERS: OnceLock<Mutex<Runners>> = OnceLock::new();
    let runners = || RUNNERS.get_or_init(Default::default).lock().expect("sandbox cache");
    let key = (exec_timeout.to_bits(), hidden.clone());
    if let Some(runner) = runners().get(&key) {
        return Ok(runner.clone());
    }
    let lookup = agentopt::llm::config::list_file(&agentopt::llm::ModelOptions::default());
    let private = hidden
        .iter()
        .chain(lookup.iter())
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let (runner, probe) = agentopt::commands::train::sandbox(exec_timeout, false, 4, private)?;
    // Only a sandbox that probed well is kept: a failed probe is reported, and tried again next call.
    probe.ready().await?;
    runners().insert(key, runner.clone());
    Ok(runner)
}

/// Checks every function as a `--functions` registry is checked; `label` names it in the message.
#[pyfunction]
pub fn registry_check(
    py: Python<'_>,
    json: &str,
    label: String,
    exec_timeout: f64,
    hidden: Vec<PathBuf>,
) -> PyResult<()> {
    let registry = parse_registry(py, json)?;
    let ran = Job::quick().run(py, async move {
        let runner = runner(exec_timeout, hidden).await?;
        agentopt::commands::registry_check::check(&*runner, &registry, Path::new(&label)).await
    })?;
    ran.value.map_err(|e| errors::from_anyhow(py, e))
}

/// Calls `name` with `arguments_json` in a fresh session holding the registry. Returns
/// `(status, stdout, stderr, result repr, the text the assistant would be shown)`.
#[pyfunction]
pub fn call_function(
    py: Python<'_>,
    json: &str,
    name: String,
    arguments_json: String,
    exec_timeout: f64,
    hidden: Vec<PathBuf>,
) -> PyResult<(String, String, String, Option<String>, String)> {
    let registry = parse_registry(py, json)?;
    if registry.get(&name).is_none() {
        let known = registry.names().join(", ");
        return Err(errors::input(
            py,
            format!("no function named `{name}` in the registry (it has: {known})"),
        ));
    }
    let ran = Job::quick().run(py, async move {
        let runner = runner(exec_timeout, hidden).await?;
        let mut session = runner.session(&registry).await?;
        let execution = session.call_function(&name, &arguments_json).await;
        session.close().await;
        anyhow::Ok(execution)
    })?;
    let execution = ran.value.map_err(|e| errors::from_anyhow(py, e))?;
    let status = serde_json::to_value(execution.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let (text, _) = format_execution(&execution);
    Ok((status, execution.stdout, execution.stderr, execution.result, text))
}
