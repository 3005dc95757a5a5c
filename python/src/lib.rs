//! `agentopt._agentopt`: the native half of the Python package. Long calls run on one Tokio runtime
//! with the GIL released (`job`); failures become the package's exceptions (`errors`); everything
//! crosses to the Python half (`python/agentopt/`) as JSON, which that half shapes into objects.

mod commands;
mod dropin;
mod errors;
mod job;
mod sandbox;

use pyo3::prelude::*;

#[pymodule]
fn _agentopt(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // As the CLI logs (warnings unless RUST_LOG says otherwise), but to `sys.stderr` through the
    // jobs' flushes, like the notes; a host that set up its own subscriber keeps it.
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("agentopt=warn"));
    let notes = job::notes().clone();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || notes.clone())
        .with_target(false)
        .with_ansi(false)
        .try_init();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(commands::train, m)?)?;
    m.add_function(wrap_pyfunction!(commands::resume, m)?)?;
    m.add_function(wrap_pyfunction!(commands::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(commands::grade, m)?)?;
    m.add_function(wrap_pyfunction!(sandbox::registry_load, m)?)?;
    m.add_function(wrap_pyfunction!(sandbox::registry_load_json, m)?)?;
    m.add_function(wrap_pyfunction!(sandbox::registry_save, m)?)?;
    m.add_function(wrap_pyfunction!(sandbox::registry_to_autogen, m)?)?;
    m.add_function(wrap_pyfunction!(sandbox::registry_check, m)?)?;
    m.add_function(wrap_pyfunction!(sandbox::call_function, m)?)?;
    m.add_function(wrap_pyfunction!(dropin::optimizer_step, m)?)?;
    Ok(())
}
