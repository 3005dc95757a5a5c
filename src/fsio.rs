//! Crash-safe file writes: a temp file in the same directory, fsync, then rename over the target.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` so that a reader (or a crash) sees either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    // Created 0666 less the umask, like any other file the user's tools write (a temp file is 0600),
    // so runs can be shared and served.
    use std::os::unix::fs::PermissionsExt;
    let mut tmp =
        tempfile::Builder::new().permissions(std::fs::Permissions::from_mode(0o666)).tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Pretty JSON with a trailing newline, written atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn follows_the_umask_like_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let atomic = dir.path().join("a.json");
        write_atomic(&atomic, b"{}").unwrap();
        let plain = dir.path().join("b.json");
        std::fs::write(&plain, b"{}").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }
}
