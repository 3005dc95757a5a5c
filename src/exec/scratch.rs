//! The sandbox's scratch directories under `$TMPDIR` (`agentopt-KIND-PID-XXXXXX`): made here, so
//! each name carries the process that owns it, and the ones of processes that died without cleaning
//! up (kill -9, a crash) are removed when the next agentopt process makes its first one.

use std::path::Path;
use std::sync::Once;

use tempfile::TempDir;

const PREFIX: &str = "agentopt-";
/// The kinds of scratch directory; only these are ever swept.
const KINDS: [&str; 4] = ["fork", "exec", "etc", "probe"];

/// A new scratch directory of `kind` (one of `KINDS`), removed when dropped.
pub fn tempdir(kind: &str) -> std::io::Result<TempDir> {
    debug_assert!(KINDS.contains(&kind));
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| sweep(&std::env::temp_dir()));
    tempfile::Builder::new().prefix(&format!("{PREFIX}{kind}-{}-", std::process::id())).tempdir()
}

/// Removes the scratch directories in `dir` whose process is gone. A pid that is alive may be
/// another program by now; its directory is left alone (the cost is disk, never someone's files).
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else { continue };
        if pid != std::process::id() && !alive(pid) && entry.file_type().is_ok_and(|t| t.is_dir()) {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => tracing::debug!("removed stale scratch directory {}", entry.path().display()),
                Err(e) => tracing::debug!("could not remove stale {}: {e}", entry.path().display()),
            }
        }
    }
}

/// The pid in `agentopt-KIND-PID-XXXXXX`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (kind, rest) = rest.split_once('-')?;
    if !KINDS.contains(&kind) {
        return None;
    }
    rest.split_once('-')?.0.parse().ok()
}

pub(crate) fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_owner() {
        assert_eq!(owner_pid("agentopt-fork-123-AbC9x1"), Some(123));
        assert_eq!(owner_pid("agentopt-bench-123-AbC9x1"), None);
        assert_eq!(owner_pid("agentopt-fork-AbC9x1"), None);
        assert_eq!(owner_pid("other-fork-1-x"), None);
    }

    #[test]
    fn sweeps_only_the_dead() {
        let tmp = tempfile::tempdir().unwrap();
        // A pid above the kernel's maximum (4194304) belongs to no process.
        let dead = tmp.path().join("agentopt-fork-99999999-abcdef");
        let living = tmp.path().join(format!("agentopt-exec-{}-abcdef", std::process::id()));
        let foreign = tmp.path().join("agentopt-bench-99999999-abcdef");
        for d in [&dead, &living, &foreign] {
            std::fs::create_dir_all(d.join("home")).unwrap();
        }
        sweep(tmp.path());
        assert!(!dead.exists());
        assert!(living.exists() && foreign.exists());
    }
}
