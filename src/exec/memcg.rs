//! Memory cgroups, one per session, where agentopt may make them (as root on a machine with a
//! writable memory controller, v1 or v2): a session's processes, memfds and tmpfs pages together
//! stay within `memory_bytes`, however many processes it starts. Elsewhere the per-process
//! address-space cap is the bound (see the README). Owns finding agentopt's own memory cgroup, the
//! `agentopt-PID` group made under it, the per-session groups, and removing the groups of agentopt
//! processes that died without doing so.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Which cgroup interface the memory controller speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    /// The files a limit is written to, in order (v1's swap-inclusive limit may not go below the
    /// plain one, so it comes second; the same value means no swap).
    fn limit_files(self) -> &'static [&'static str] {
        match self {
            Version::V1 => &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
            Version::V2 => &["memory.max", "memory.swap.max"],
        }
    }

    fn limit_values(self, bytes: u64) -> [String; 2] {
        match self {
            Version::V1 => [bytes.to_string(), bytes.to_string()],
            Version::V2 => [bytes.to_string(), "0".to_string()],
        }
    }
}

/// agentopt's own group (`agentopt-PID`) under the cgroup it was started in.
#[derive(Debug)]
pub(crate) struct Cgroups {
    dir: PathBuf,
    version: Version,
    next: AtomicU64,
}

/// One group under `Cgroups`: a worker's (its processes join it as they start) or a fork server's
/// (whose sessions each make their own inside it). Removed when dropped, once its processes are gone.
#[derive(Debug)]
pub(crate) struct Group {
    path: PathBuf,
}

impl Cgroups {
    /// agentopt's group, made now (first removing those of agentopt processes that are gone), or
    /// `None` where no memory cgroup can be made: not root, no memory controller, a read-only or
    /// undelegated hierarchy. Never an error: the address-space cap stays in force either way.
    pub fn create() -> Option<Cgroups> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let cgroup = fs::read_to_string("/proc/self/cgroup").ok()?;
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let (parent, version) = own_memory_cgroup(&cgroup, &mountinfo)?;
        sweep_dead(&parent);
        let dir = parent.join(format!("agentopt-{}", std::process::id()));
        let made = (|| -> io::Result<()> {
            if version == Version::V2 {
                // Children get a memory controller only where their parent hands it down.
                fs::write(parent.join("cgroup.subtree_control"), "+memory")?;
            }
            fs::create_dir_all(&dir)?;
            if version == Version::V2 {
                fs::write(dir.join("cgroup.subtree_control"), "+memory")?;
            }
            Ok(())
        })();
        let cgroups = Cgroups { dir, version, next: AtomicU64::new(0) };
        match made.and_then(|()| cgroups.probe()) {
            Ok(()) => Some(cgroups),
            Err(e) => {
                tracing::info!(
                    "no memory cgroup for sessions ({e}); each process's address space is capped instead"
                );
                let _ = fs::remove_dir(&cgroups.dir);
                None
            }
        }
    }

    /// A child group with a limit written must be possible, or none is used.
    fn probe(&self) -> io::Result<()> {
        let group = self.group("probe", Some(64 << 20))?;
        drop(group);
        Ok(())
    }

    /// A new group named `PREFIX-N`, limited to `limit` bytes when given.
    pub fn group(&self, prefix: &str, limit: Option<u64>) -> io::Result<Group> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let group = Group { path: self.dir.join(format!("{prefix}-{n}")) };
        fs::create_dir(&group.path)?;
        if let Some(bytes) = limit {
            self.limit(&group.path, bytes)?;
        }
        Ok(group)
    }

    fn limit(&self, path: &Path, bytes: u64) -> io::Result<()> {
        for (file, value) in self.session_limits(bytes) {
            let target = path.join(file);
            // The swap file is absent where swap accounting is off: then there is no swap to limit.
            if file.contains("sw") && !target.exists() {
                continue;
            }
            fs::write(&target, value)?;
        }
        Ok(())
    }

    /// The limit files and values for `bytes`: written here for a worker's group, and by a fork
    /// server's sessions for the groups they make inside the server's.
    pub fn session_limits(&self, bytes: u64) -> Vec<(&'static str, String)> {
        self.version.limit_files().iter().copied().zip(self.version.limit_values(bytes)).collect()
    }
}

impl Group {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `cgroup.procs` opened for writing, for a child to join the group between fork and exec
    /// (see `join`).
    pub fn procs(&self) -> io::Result<OwnedFd> {
        Ok(fs::OpenOptions::new().write(true).open(self.path.join("cgroup.procs"))?.into())
    }
}

/// Moves the calling process into the group whose `cgroup.procs` is `procs` ("0" names the writer).
/// Async-signal-safe: one write(2), no allocation, so it may run in a `pre_exec`.
pub(crate) fn join(procs: &OwnedFd) -> io::Result<()> {
    // SAFETY: writing one byte from a static buffer to a descriptor we own.
    let written = unsafe { libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) };
    if written == 1 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

impl Drop for Group {
    /// Removes the group (and the groups sessions made inside it) once its processes have exited:
    /// a kill is asynchronous, so this retries for a while on a thread of its own.
    fn drop(&mut self) {
        let path = std::mem::take(&mut self.path);
        if remove_tree(&path).is_ok() {
            return;
        }
        std::thread::spawn(move || {
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(20));
                if remove_tree(&path).is_ok() {
                    return;
                }
            }
            tracing::debug!("memory cgroup {} still busy; removed at the next start", path.display());
        });
    }
}

/// Removes a cgroup directory and the groups inside it (a cgroup's files go with its directory).
fn remove_tree(path: &Path) -> io::Result<()> {
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path())?;
            }
        }
    }
    match fs::remove_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes the `agentopt-PID` groups of processes no longer alive (killed before they could).
fn sweep_dead(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) =
            name.to_str().and_then(|n| n.strip_prefix("agentopt-")).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !super::scratch::alive(pid) {
            let _ = remove_tree(&entry.path());
        }
    }
}

/// The directory of this process's memory cgroup and its interface, from `/proc/self/cgroup` and
/// `/proc/self/mountinfo`: v1's `memory` hierarchy when mounted, else the v2 unified one.
fn own_memory_cgroup(cgroup: &str, mountinfo: &str) -> Option<(PathBuf, Version)> {
    let mounts: Vec<Mount> = mountinfo.lines().filter_map(Mount::parse).collect();
    for line in cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        if controllers.split(',').any(|c| c == "memory")
            && let Some(mount) =
                mounts.iter().find(|m| m.fstype == "cgroup" && m.options.split(',').any(|o| o == "memory"))
        {
            return Some((mount.locate(path)?, Version::V1));
        }
    }
    let path = cgroup.lines().find_map(|line| line.strip_prefix("0::"))?;
    let mount = mounts.iter().find(|m| m.fstype == "cgroup2")?;
    let dir = mount.locate(path)?;
    let controllers = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    controllers.split_whitespace().any(|c| c == "memory").then_some((dir, Version::V2))
}

/// One line of `/proc/self/mountinfo`, the fields used here.
struct Mount<'a> {
    root: &'a str,
    point: &'a str,
    fstype: &'a str,
    options: &'a str,
}

impl<'a> Mount<'a> {
    fn parse(line: &'a str) -> Option<Mount<'a>> {
        let (left, right) = line.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let mut right = right.split(' ');
        let fstype = right.next()?;
        let _source = right.next()?;
        Some(Mount { root: left.get(3)?, point: left.get(4)?, fstype, options: right.next()? })
    }

    /// Where a cgroup path (relative to the hierarchy's root) is under this mount.
    fn locate(&self, path: &str) -> Option<PathBuf> {
        let inside = path.strip_prefix(self.root.trim_end_matches('/')).unwrap_or(path);
        Some(Path::new(self.point).join(inside.trim_start_matches('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_V1: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n";

    #[test]
    fn a_v1_memory_hierarchy_is_found_under_its_mount() {
        let cgroup = "8:pids:/\n4:memory:/process_api/2a52\n0::/\n";
        let (dir, version) = own_memory_cgroup(cgroup, MOUNTINFO_V1).unwrap();
        assert_eq!(dir, Path::new("/sys/fs/cgroup/memory/process_api/2a52"));
        assert_eq!(version, Version::V1);
    }

    #[test]
    fn a_mount_of_a_subtree_is_joined_relative_to_its_root() {
        let mount = Mount::parse("35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory")
            .unwrap();
        assert_eq!(mount.locate("/docker/abc/sub").unwrap(), Path::new("/sys/fs/cgroup/memory/sub"));
        assert_eq!(mount.locate("/docker/abc").unwrap(), Path::new("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn no_memory_controller_means_no_groups() {
        let mountinfo = "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n";
        assert!(own_memory_cgroup("8:pids:/\n", mountinfo).is_none());
    }

    #[test]
    fn limits_forbid_swap() {
        assert_eq!(Version::V1.limit_values(5), ["5".to_string(), "5".to_string()]);
        assert_eq!(Version::V2.limit_values(5), ["5".to_string(), "0".to_string()]);
    }
}
