//! Turning what a user types into a registry file or a run directory.
//!
//! A registry reference is, in this order of preference: a path to a registry file; `functions/NAME`
//! or a bare `NAME` found at `functions/NAME.json`; a run (a name under the runs directory, or a path to a
//! run directory), meaning its learned `best/registry.json`; `RUN@EPOCH` (`RUN@3` or `RUN@003`) for the
//! registry tried in that epoch, and `RUN@best`.

use std::path::{Path, PathBuf};

use super::Error;
use crate::run_dir::RunDir;

/// The project's folder of exported registries (SPEC §8), relative to the working directory.
const FUNCTIONS_DIR: &str = "functions";

/// Finds the registry file a reference names. Errors list every place that was looked at.
pub fn resolve_registry(reference: &str, runs_dir: &Path) -> Result<PathBuf, Error> {
    let as_path = Path::new(reference);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    // `@` splits RUN@EPOCH; a file name containing `@` was handled just above.
    if let Some((run, epoch)) = reference.rsplit_once('@') {
        let dir = resolve_run(run, runs_dir)?;
        return epoch_registry(reference, &dir, epoch);
    }
    let mut tried = vec![as_path.to_path_buf()];
    let name = reference.strip_prefix("functions/").unwrap_or(reference);
    if !name.is_empty() && !name.contains('/') {
        let stem = name.strip_suffix(".json").unwrap_or(name);
        let exported = Path::new(FUNCTIONS_DIR).join(format!("{stem}.json"));
        if exported.is_file() {
            return Ok(exported);
        }
        tried.push(exported);
    }
    for dir in run_candidates(reference, runs_dir) {
        if is_run_dir(&dir) {
            let best = RunDir::at(&dir).best_registry();
            if best.is_file() {
                return Ok(best);
            }
            tried.push(best);
            return Err(Error::RegistryNotFound { reference: reference.into(), tried });
        }
        tried.push(RunDir::at(&dir).best_registry());
    }
    Err(Error::RegistryNotFound { reference: reference.into(), tried })
}

/// Finds a run directory: a path to one, or a name under `runs_dir`.
pub fn resolve_run(reference: &str, runs_dir: &Path) -> Result<PathBuf, Error> {
    let candidates = run_candidates(reference, runs_dir);
    if let Some(dir) = candidates.iter().find(|d| is_run_dir(d)) {
        return Ok(dir.clone());
    }
    Err(Error::RunNotFound { reference: reference.into(), tried: candidates })
}

/// A run directory holds at least one of the files the trainer writes first or last.
pub fn is_run_dir(dir: &Path) -> bool {
    let run = RunDir::at(dir);
    [run.run_json(), run.summary(), run.events(), run.epochs_dir()].iter().any(|f| f.exists())
}

fn run_candidates(reference: &str, runs_dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![runs_dir.join(reference)];
    let as_path = PathBuf::from(reference);
    if !out.contains(&as_path) {
        out.push(as_path);
    }
    out
}

fn epoch_registry(reference: &str, run: &Path, epoch: &str) -> Result<PathBuf, Error> {
    let (path, label) = if epoch.eq_ignore_ascii_case("best") {
        (RunDir::at(run).best_registry(), "best".to_string())
    } else {
        let n: u32 = epoch
            .parse()
            .map_err(|_| Error::BadEpoch { reference: reference.into(), epoch: epoch.into() })?;
        (RunDir::at(run).epoch_registry(n as usize), format!("{n:03}"))
    };
    if path.is_file() {
        return Ok(path);
    }
    Err(Error::EpochNotFound {
        run: run.display().to_string(),
        epoch: label,
        path,
        present: present_epochs(run),
    })
}

/// The epoch directories of a run, for error messages.
fn present_epochs(run: &Path) -> String {
    let names: Vec<String> =
        RunDir::at(run).epoch_numbers().unwrap_or_default().iter().map(|n| format!("{n:03}")).collect();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with_epochs(root: &Path) -> PathBuf {
        let run = root.join("runs").join("r1");
        for p in ["epochs/000/registry.json", "epochs/002/registry.json", "best/registry.json"] {
            let f = run.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, r#"{"functions": []}"#).unwrap();
        }
        std::fs::write(run.join("run.json"), "{}").unwrap();
        run
    }

    #[test]
    fn run_references() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs");
        let run = run_with_epochs(tmp.path());
        assert_eq!(resolve_registry("r1", &runs).unwrap(), run.join("best/registry.json"));
        assert_eq!(resolve_registry("r1@best", &runs).unwrap(), run.join("best/registry.json"));
        assert_eq!(resolve_registry("r1@2", &runs).unwrap(), run.join("epochs/002/registry.json"));
        assert_eq!(resolve_registry("r1@000", &runs).unwrap(), run.join("epochs/000/registry.json"));
        let by_path = format!("{}@0", run.display());
        assert_eq!(
            resolve_registry(&by_path, Path::new("elsewhere")).unwrap(),
            run.join("epochs/000/registry.json")
        );
        let file = run.join("epochs/002/registry.json");
        assert_eq!(resolve_registry(file.to_str().unwrap(), &runs).unwrap(), file);
    }

    #[test]
    fn errors_name_what_was_looked_for() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs");
        run_with_epochs(tmp.path());
        let e = resolve_registry("r1@7", &runs).unwrap_err().to_string();
        assert!(e.contains("epochs/007/registry.json") && e.contains("000, 002"), "{e}");
        let e = resolve_registry("r1@x", &runs).unwrap_err().to_string();
        assert!(e.contains("Bad epoch `x`"), "{e}");
        let e = resolve_registry("nope", &runs).unwrap_err().to_string();
        assert!(e.contains("functions/nope.json") && e.contains("runs/nope/best/registry.json"), "{e}");
        let e = resolve_registry("nope@1", &runs).unwrap_err().to_string();
        assert!(e.starts_with("No run `nope`"), "{e}");
    }
}
