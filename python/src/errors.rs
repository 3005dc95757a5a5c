//! Rust failures as the package's exceptions (`agentopt._errors`, all subclasses of `agentopt.Error`),
//! with the CLI's messages: bad input (exit 2 there) is `InputError`, any other failure `RunError`.

use pyo3::prelude::*;

use agentopt::commands::BadInput;

/// An instance of `agentopt._errors.<class>(message, *extra)` as a Python exception.
pub fn raise(py: Python<'_>, class: &str, message: String, extra: Option<String>) -> PyErr {
    let made = py.import("agentopt._errors").and_then(|m| m.getattr(class)).and_then(|c| match extra {
        Some(extra) => c.call1((message, extra)),
        None => c.call1((message,)),
    });
    match made {
        Ok(value) => PyErr::from_value(value),
        Err(e) => e,
    }
}

pub fn input(py: Python<'_>, message: impl Into<String>) -> PyErr {
    raise(py, "InputError", message.into(), None)
}

pub fn run(py: Python<'_>, message: impl Into<String>) -> PyErr {
    raise(py, "RunError", message.into(), None)
}

/// A command's error, classified as the CLI classifies it for its exit code.
pub fn from_anyhow(py: Python<'_>, err: anyhow::Error) -> PyErr {
    let message = format!("{err:#}");
    if err.chain().any(|e| e.is::<BadInput>()) { input(py, message) } else { run(py, message) }
}
