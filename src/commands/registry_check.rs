//! A registry read from disk (`--functions`) is checked in the sandbox before any problem runs, as
//! the optimizer's proposals are: each function's code must define it, its packages import, its
//! schema fit its signature, its name leave Python's builtins alone, and its top-level code finish
//! within the time limit. A bad one is bad input naming the file and the function, not a failure
//! every conversation meets when the function is called.

use std::path::Path;

use futures::StreamExt;

use super::bad_input;
use crate::exec::runner::Runner;
use crate::functions::Registry;

/// How many functions are checked at once (each in a worker of its own).
const AT_ONCE: usize = 4;

pub async fn check(runner: &dyn Runner, registry: &Registry, path: &Path) -> anyhow::Result<()> {
    // Owned definitions: a closure over `&FunctionDef` makes the future not `Send` for every lifetime,
    // which callers that spawn it (the Python package) need.
    let outcomes: Vec<_> = futures::stream::iter(registry.functions.iter().cloned())
        .map(move |def| async move {
            let outcome = runner.validate_function(&def).await;
            (def, outcome)
        })
        .buffered(AT_ONCE)
        .collect()
        .await;
    for (index, (def, outcome)) in outcomes.into_iter().enumerate() {
        if let Err(problem) = outcome? {
            return Err(bad_input(anyhow::anyhow!(
                "`{}`: function #{} `{}` cannot be used: {problem}",
                path.display(),
                index + 1,
                def.name
            )));
        }
    }
    Ok(())
}
