//! What sandboxed code can see of the file system: an allowlist (the system's `/usr`, a few `/etc`
//! files, the interpreter's own directories), read-only, plus a private `/tmp` and work directory;
//! over all of it, masks for what agentopt holds private (the config list in use, the cache, the
//! runs, the datasets, the checkout), wherever they are. Turned into bubblewrap arguments here.

use std::collections::BTreeSet;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// Entries of `/` a program may reach through its own paths: on merged-usr systems symlinks into
/// `/usr` (recreated as such), elsewhere real directories (bound read-only).
const SYSTEM_TOP: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// The `/etc` entries the interpreter and its modules read: the dynamic linker's configuration (for
/// numpy's and sympy's C extensions), name-service switch (user lookups go to the generated
/// `passwd`/`group`), local time, and Debian's alternatives (symlinks libraries such as BLAS go
/// through). Nothing with credentials; no SSL certificates (there is no network to use them on).
const ETC_ENTRIES: &[&str] =
    &["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "localtime", "timezone", "alternatives"];

/// The mount points that exist before any interpreter directory is bound (the rest are made).
const MADE_BY_VIEW: &[&str] = &["/", "/usr", "/etc", "/tmp", "/dev", "/proc", "/home"];

/// The empty file bound over private files, beside the generated `passwd` and `group`.
const EMPTY: &str = "empty";

/// Who the generated `/etc/passwd` and `/etc/group` list.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// agentopt's own uid and gid (what a worker keeps in a user namespace).
    pub uid: u32,
    pub gid: u32,
    /// The uids sessions drop to when agentopt runs as root (each listed as `sandbox`).
    pub session_uids: Option<Range<u32>>,
}

#[derive(Debug)]
enum Top {
    Symlink { name: String, target: PathBuf },
    Dir(PathBuf),
}

/// A path bound into the sandbox at `dest`, with `real` its canonical host path (to tell which
/// private paths it would show).
#[derive(Debug, Clone)]
struct Bound {
    dest: PathBuf,
    real: PathBuf,
}

/// The file-system view shared by every worker of one `Sandbox`.
#[derive(Debug)]
pub(crate) struct View {
    top: Vec<Top>,
    /// (host source, name under `/etc`).
    etc: Vec<(PathBuf, String)>,
    /// The interpreter's directories not otherwise visible, bound at their own paths.
    python: Vec<Bound>,
    /// Every directory the interpreter reported, outermost first: bound again inside a masked
    /// directory (where the system's or an outer bind no longer shows them).
    python_all: Vec<Bound>,
    /// Where private directories would show through a bind: each covered by an empty tmpfs.
    masked_dirs: Vec<PathBuf>,
    /// Where private files would show through a bind: each covered by an empty file.
    masked_files: Vec<PathBuf>,
    /// Holds the generated `passwd` and `group`, and the empty file masks show (removed with the view).
    identity_dir: TempDir,
}

impl View {
    /// `python_paths`: what the interpreter reported it needs (prefixes, `sys.path`); `private`:
    /// host paths to keep out of sight. Writes the generated `/etc/passwd` and `/etc/group`.
    pub fn new(python_paths: &[PathBuf], private: &[PathBuf], identity: &Identity) -> std::io::Result<View> {
        let top = SYSTEM_TOP
            .iter()
            .filter_map(|name| {
                let path = Path::new("/").join(name);
                match std::fs::symlink_metadata(&path) {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        let target = std::fs::read_link(&path).ok()?;
                        Some(Top::Symlink { name: name.to_string(), target })
                    }
                    Ok(meta) if meta.is_dir() => Some(Top::Dir(path)),
                    _ => None,
                }
            })
            .collect();
        let etc = ETC_ENTRIES
            .iter()
            .map(|name| (Path::new("/etc").join(name), name.to_string()))
            .filter(|(path, _)| path.exists())
            .collect();
        let identity_dir = super::scratch::tempdir("etc")?;
        write_identity(identity_dir.path(), identity)?;
        let mut view = View {
            top,
            etc,
            python: Vec::new(),
            python_all: python_candidates(python_paths),
            masked_dirs: Vec::new(),
            masked_files: Vec::new(),
            identity_dir,
        };
        // Worked out once: every worker's command line repeats them.
        let system = view.system_binds();
        view.python = outermost(&view.python_all, &system);
        let visible: Vec<Bound> = system.into_iter().chain(view.python.iter().cloned()).collect();
        let private: BTreeSet<PathBuf> = private.iter().filter_map(|p| canonical(p)).collect();
        let (mut dirs, mut files) = (BTreeSet::new(), BTreeSet::new());
        for private in &private {
            for bound in &visible {
                let Ok(rest) = private.strip_prefix(&bound.real) else { continue };
                let dest = bound.dest.join(rest);
                if private.is_dir() {
                    dirs.insert(dest)
                } else {
                    files.insert(dest)
                };
            }
        }
        view.masked_dirs = dirs.into_iter().collect();
        view.masked_files = files.into_iter().collect();
        Ok(view)
    }

    /// `/usr`, real top-level system directories and the `/etc` entries, as bound.
    fn system_binds(&self) -> Vec<Bound> {
        let usr = Path::new("/usr");
        let dirs = self.top.iter().filter_map(|t| match t {
            Top::Dir(path) => Some(path.as_path()),
            Top::Symlink { .. } => None,
        });
        let etc = self.etc.iter().map(|(source, _)| source.as_path());
        std::iter::once(usr)
            .chain(dirs)
            .chain(etc)
            .filter_map(|p| Some(Bound { dest: p.to_path_buf(), real: canonical(p)? }))
            .collect()
    }

    /// The interpreter's directories bound under `/tmp` (a checkout cloned there): a session
    /// mounting a `/tmp` of its own binds them again into it, or it would hide the modules it has
    /// yet to import.
    pub fn interpreter_dirs_in_tmp(&self) -> Vec<String> {
        self.python
            .iter()
            .filter(|bound| bound.dest.starts_with("/tmp"))
            .map(|bound| lossy(&bound.dest))
            .collect()
    }

    /// bubblewrap's file-system arguments: the allowlist, `/tmp` (a tmpfs of `tmp_size` bytes when
    /// given), the masks, and the writable `home` at `inner_home`; the root itself read-only.
    /// `cgroups`: a host directory bound writable at `CGROUPS_INSIDE` (inside a directory only
    /// root may enter), where a fork server's sessions make their memory cgroups.
    pub fn bwrap_args(
        &self,
        tmp_size: Option<u64>,
        home: Home,
        inner_home: &str,
        cgroups: Option<&Path>,
    ) -> Vec<String> {
        let mut args = Args::default();
        args.push(&["--ro-bind", "/usr", "/usr"]);
        for top in &self.top {
            match top {
                Top::Symlink { name, target } => {
                    args.push(&["--symlink", &lossy(target), &format!("/{name}")])
                }
                Top::Dir(path) => args.push(&["--ro-bind", &lossy(path), &lossy(path)]),
            }
        }
        args.push(&["--dev", "/dev", "--proc", "/proc", "--perms", "0755", "--dir", "/etc"]);
        for (source, name) in &self.etc {
            args.push(&["--ro-bind", &lossy(source), &format!("/etc/{name}")]);
        }
        for name in ["passwd", "group"] {
            args.push(&["--ro-bind", &lossy(&self.identity_dir.path().join(name)), &format!("/etc/{name}")]);
        }
        // The private /tmp goes up before the interpreter is bound: a venv may itself live in /tmp.
        if let Some(size) = tmp_size {
            args.push(&["--size", &size.to_string()]);
        }
        args.push(&["--perms", "1777", "--tmpfs", "/tmp"]);
        for bound in &self.python {
            args.bind_ro(bound);
        }
        self.push_masks(&mut args);
        args.push(&["--perms", "0755", "--dir", "/home"]);
        match home {
            Home::Bind(workdir) => args.push(&["--bind", &lossy(workdir), inner_home]),
            Home::Server(socket_dir) => {
                if let Some(size) = tmp_size {
                    args.push(&["--size", &size.to_string()]);
                }
                let bound = format!("{inner_home}/{SERVER_DIR}");
                args.push(&["--perms", "0755", "--tmpfs", inner_home, "--bind", &lossy(socket_dir), &bound]);
            }
            Home::Tmpfs(size) => {
                args.push(&["--size", &size.to_string(), "--perms", "0700", "--tmpfs", inner_home])
            }
        }
        args.push(&["--chdir", inner_home]);
        if let Some(dir) = cgroups {
            let parent = Path::new(CGROUPS_INSIDE).parent().map(lossy).unwrap_or_default();
            args.push(&["--perms", "0700", "--dir", &parent, "--bind", &lossy(dir), CGROUPS_INSIDE]);
        }
        // bwrap's own root (a tmpfs holding the mount points) would otherwise be writable.
        args.push(&["--remount-ro", "/"]);
        args.0
    }

    /// Private paths the allowlist would show: directories covered by an empty tmpfs (interpreter
    /// directories inside them bound again), files by an empty file.
    fn push_masks(&self, args: &mut Args) {
        for dir in &self.masked_dirs {
            args.push(&["--tmpfs", &lossy(dir)]);
            // What was made under it is gone under the new tmpfs.
            args.1.retain(|made| !made.starts_with(dir));
            let inside: Vec<Bound> = self
                .python_all
                .iter()
                .filter(|b| b.dest.starts_with(dir) && &b.dest != dir)
                .cloned()
                .collect();
            for bound in outermost(&inside, &[]) {
                args.bind_ro(&bound);
            }
            // Read-only like the rest: in a user namespace the tmpfs would be the session's to fill.
            args.push(&["--remount-ro", &lossy(dir)]);
        }
        // An empty file of ours, not /dev/null: a device node opens as "permission denied" on the
        // nodev mounts of a user namespace, and a masked file should read the same everywhere.
        let empty = lossy(&self.identity_dir.path().join(EMPTY));
        for file in &self.masked_files {
            args.push(&["--ro-bind", &empty, &lossy(file)]);
        }
    }
}

/// Where a fork server finds the memory cgroup directory its sessions make their groups in.
pub const CGROUPS_INSIDE: &str = "/run/agentopt/memcg";

/// Where, inside a fork server's home, the host directory holding its socket is bound.
pub const SERVER_DIR: &str = ".server";

/// Where a sandbox's writable home comes from.
#[derive(Debug, Clone, Copy)]
pub enum Home<'a> {
    /// A host directory bound writable (a worker where bwrap cannot cap a tmpfs).
    Bind(&'a Path),
    /// A fork server's: a tmpfs only root may write, over which each session mounts its own, with
    /// the host directory where agentopt reaches the server's socket bound at `SERVER_DIR` in it.
    /// Nothing in that host directory is ever a session's mount point, so removing it at the end
    /// unmounts nothing (a directory that is a mount point in 64 live namespaces took 10-40 ms).
    Server(&'a Path),
    /// A private tmpfs of this many bytes: a worker's disk, bounded, and gone with the sandbox even
    /// after a kill -9 of agentopt.
    Tmpfs(u64),
}

/// bubblewrap arguments under construction, remembering the directories made so far.
#[derive(Default)]
struct Args(Vec<String>, BTreeSet<PathBuf>);

impl Args {
    fn push(&mut self, items: &[&str]) {
        self.0.extend(items.iter().map(|s| s.to_string()));
    }

    /// Binds `bound` read-only at its own path, first making its missing parents traversable
    /// (bwrap would make them 0700, unreadable after the uid drop).
    fn bind_ro(&mut self, bound: &Bound) {
        let mut parents: Vec<PathBuf> = bound.dest.ancestors().skip(1).map(Path::to_path_buf).collect();
        parents.reverse();
        for parent in parents {
            if !MADE_BY_VIEW.iter().any(|m| Path::new(m) == parent) && self.1.insert(parent.clone()) {
                self.push(&["--perms", "0755", "--dir", &lossy(&parent)]);
            }
        }
        let real = lossy(&bound.real);
        self.push(&["--ro-bind", &real, &lossy(&bound.dest)]);
    }
}

/// The interpreter's reported paths that exist, as `Bound`s sorted by where they are mounted (so an
/// outer directory comes before what it holds).
fn python_candidates(paths: &[PathBuf]) -> Vec<Bound> {
    let mut candidates: Vec<Bound> = paths
        .iter()
        .filter(|p| p.is_absolute() && p.as_path() != Path::new("/"))
        .filter_map(|p| Some(Bound { dest: p.clone(), real: canonical(p)? }))
        .collect();
    candidates.sort_by(|a, b| a.dest.cmp(&b.dest));
    candidates.dedup_by(|a, b| a.dest == b.dest);
    candidates
}

/// Of `candidates` (sorted), those not shown already: by `shown`, or by an earlier candidate, as
/// spelled where it is mounted; and not inside `/usr`, which the `/bin`, `/lib`… symlinks point into.
fn outermost(candidates: &[Bound], shown: &[Bound]) -> Vec<Bound> {
    let mut kept: Vec<Bound> = Vec::new();
    for candidate in candidates {
        let inside = |b: &Bound| candidate.dest.starts_with(&b.dest);
        let spelled_in_system = candidate.dest.components().nth(1).is_some_and(|first| {
            let first = first.as_os_str().to_string_lossy();
            first == "usr" || SYSTEM_TOP.contains(&first.as_ref())
        });
        let in_usr = spelled_in_system
            && candidate.real.starts_with("/usr")
            && shown.iter().any(|b| b.dest == Path::new("/usr"));
        if !in_usr && !shown.iter().any(inside) && !kept.iter().any(inside) {
            kept.push(candidate.clone());
        }
    }
    kept
}

fn lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The canonical form of `path`; `None` for one that does not exist (nothing there to show).
fn canonical(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// `/etc/passwd` and `/etc/group` naming root, nobody and the session's own uid: enough for
/// `pwd.getpwuid(os.getuid())` and `getpass`, nothing of the host's accounts.
fn write_identity(dir: &Path, identity: &Identity) -> std::io::Result<()> {
    let mut passwd = String::from("root:x:0:0:root:/root:/usr/sbin/nologin\n");
    let mut group = String::from("root:x:0:\n");
    let mut sandbox_ids: Vec<(u32, u32)> = Vec::new();
    if identity.uid != 0 {
        sandbox_ids.push((identity.uid, identity.gid));
    }
    if let Some(range) = &identity.session_uids {
        sandbox_ids.extend(range.clone().map(|uid| (uid, uid)));
    }
    for (uid, gid) in sandbox_ids.into_iter().filter(|(uid, _)| *uid != 65534) {
        passwd.push_str(&format!("sandbox:x:{uid}:{gid}:sandbox:/home/sandbox:/usr/sbin/nologin\n"));
        group.push_str(&format!("sandbox:x:{gid}:\n"));
    }
    passwd.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    group.push_str("nogroup:x:65534:\n");
    for (name, text) in [("passwd", passwd), ("group", group), (EMPTY, String::new())] {
        let mut file = std::fs::File::create(dir.join(name))?;
        file.write_all(text.as_bytes())?;
    }
    // Readable by bwrap and by sessions after their uid drop.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    for name in ["passwd", "group", EMPTY] {
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity { uid: 0, gid: 0, session_uids: Some(1_100_000..1_100_003) }
    }

    #[test]
    fn only_the_system_the_interpreter_and_the_private_dirs_are_mounted() {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join("venv");
        std::fs::create_dir_all(venv.join("lib")).unwrap();
        let view = View::new(&[venv.clone(), venv.join("lib"), "/usr/lib".into()], &[], &identity()).unwrap();
        let args = view.bwrap_args(Some(1024), Home::Tmpfs(4096), "/home/sandbox", None).join(" ");
        assert!(args.starts_with("--ro-bind /usr /usr"), "{args}");
        assert!(!args.contains("--ro-bind / /"), "no whole-root bind: {args}");
        assert!(!args.contains("/usr/lib /usr/lib"), "already under /usr: {args}");
        let venv = venv.to_string_lossy();
        assert_eq!(args.matches(&format!("--ro-bind {venv} {venv}")).count(), 1, "{args}");
        assert!(!args.contains(&format!("{venv}/lib {venv}/lib")), "inside another bind: {args}");
        let tmp = args.find("--tmpfs /tmp").unwrap();
        assert!(tmp < args.find(&format!("--ro-bind {venv}")).unwrap(), "venvs in /tmp survive: {args}");
        assert!(
            args.contains("--ro-bind /etc/ld.so.cache /etc/ld.so.cache")
                || !Path::new("/etc/ld.so.cache").exists()
        );
        assert!(!args.contains("/etc/shadow") && !args.contains("--ro-bind /etc /etc"), "{args}");
        assert!(args.contains("--size 1024 --perms 1777 --tmpfs /tmp"));
        assert!(
            args.contains("--size 4096 --perms 0700 --tmpfs /home/sandbox --chdir /home/sandbox"),
            "{args}"
        );
        assert!(args.ends_with("--tmpfs /home/sandbox --chdir /home/sandbox --remount-ro /"), "{args}");
    }

    #[test]
    fn private_paths_inside_the_allowlist_are_masked_and_the_interpreter_inside_them_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let checkout = root.join("checkout");
        let site = checkout.join(".venv/lib/site-packages");
        std::fs::create_dir_all(&site).unwrap();
        let secret = site.join("OAI_CONFIG_LIST");
        std::fs::write(&secret, "[]").unwrap();
        let prefix = root.join("prefix");
        let runs = prefix.join("runs");
        std::fs::create_dir_all(&runs).unwrap();
        let view = View::new(
            &[prefix.clone(), site.clone()],
            &[checkout.clone(), secret.clone(), runs.clone()],
            &identity(),
        )
        .unwrap();
        let args = view.bwrap_args(None, Home::Bind(Path::new("/tmp/w")), "/home/sandbox", None).join(" ");
        let show = |p: &Path| p.to_string_lossy().into_owned();
        assert!(args.contains(&format!("--tmpfs {}", show(&runs))), "{args}");
        assert!(
            !args.contains(&format!("--tmpfs {}", show(&checkout))),
            "only the venv of it is bound: {args}"
        );
        let empty = show(&view.identity_dir.path().join(EMPTY));
        assert!(args.contains(&format!("--ro-bind {empty} {}", show(&secret))), "{args}");
        let site_bind = args.find(&format!("--ro-bind {} {}", show(&site), show(&site))).unwrap();
        let mask = args.find(&format!("--ro-bind {empty} {}", show(&secret))).unwrap();
        assert!(site_bind < mask, "the mask goes over the bind: {args}");
        assert!(args.contains(&format!("--perms 0755 --dir {}", show(&checkout))), "{args}");
    }

    #[test]
    fn a_masked_checkout_keeps_the_venv_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let checkout = dir.path().canonicalize().unwrap().join("checkout");
        let venv = checkout.join(".venv");
        std::fs::create_dir_all(&venv).unwrap();
        // An editable install puts the checkout itself on sys.path.
        let view = View::new(&[venv.clone(), checkout.clone()], std::slice::from_ref(&checkout), &identity())
            .unwrap();
        let args = view.bwrap_args(None, Home::Bind(Path::new("/tmp/w")), "/home/sandbox", None).join(" ");
        let (checkout, venv) = (checkout.to_string_lossy(), venv.to_string_lossy());
        let bound = args.find(&format!("--ro-bind {checkout} {checkout}")).unwrap();
        let masked = args.find(&format!("--tmpfs {checkout}")).unwrap();
        let venv_again = args.find(&format!("--ro-bind {venv} {venv}")).unwrap();
        let sealed = args.find(&format!("--remount-ro {checkout}")).unwrap();
        assert!(bound < masked && masked < venv_again && venv_again < sealed, "{args}");
    }

    #[test]
    fn generated_accounts_list_only_the_sandbox_uids() {
        let view = View::new(&[], &[], &identity()).unwrap();
        let passwd = std::fs::read_to_string(view.identity_dir.path().join("passwd")).unwrap();
        assert_eq!(passwd.lines().count(), 5, "{passwd}");
        assert!(passwd.contains("sandbox:x:1100002:1100002:"));
        let group = std::fs::read_to_string(view.identity_dir.path().join("group")).unwrap();
        assert!(group.contains("sandbox:x:1100000:") && group.contains("nogroup:x:65534:"));
    }
}
