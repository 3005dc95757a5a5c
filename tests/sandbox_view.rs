//! What sandboxed code can see, end to end through `agentopt eval`: a config list with a key, a decoy
//! `.env` and the test set sit in a directory outside every place the sandbox used to hide (under
//! `/var/tmp`), and agentopt starts with descriptors 7 and 8 open on host files, as a shell's
//! `exec 7<secret 8>file` leaves them. A code block walks `/` reading every file it can and probes
//! every descriptor; it must find none of it, as root (sessions forked from the fork server, and in
//! sandboxes of their own) and as `nobody` (per-session sandboxes in a user namespace). numpy and
//! sympy still import, and so does a learned function's declared package.

mod support;

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, call, text};

/// Found in the decoy `.env`, the test set and the file behind descriptor 7 (the key is
/// `support::SECRET`). The code builds them from halves, so they never appear in it whole.
const DECOY: &str = "decoy-e8f1a7c3";
const ANSWERS: &str = "answers-5b2e91";
const FD_SECRET: &str = "fd-secret-91c4";

/// Walks the whole file system but /proc, /sys and /dev (kernel views, not files), reading every
/// regular file up to 1 MiB (the secrets are a few bytes) except under `/usr` and the interpreter's
/// prefixes: those are the public system and Python installation the allowlist shows on purpose, and
/// reading their ~230,000 files takes minutes on 2 cores, so there it only lists names. Then it lists
/// every descriptor above stderr, reading and writing those on files.
const WALK: &str = r#"import os, stat, sys
markers = ['sk-test-' + 'SECRET-d34db33f', 'decoy-' + 'e8f1a7c3', 'answers-' + '5b2e91', 'fd-secret-' + '91c4']
public = {os.path.realpath(p) for p in ('/usr', sys.prefix, sys.base_prefix)}
hits, seen, read = [], 0, 0
for root, dirs, files in os.walk('/'):
    if root == '/':
        dirs[:] = [d for d in dirs if d not in ('proc', 'sys', 'dev')]
    seen += len(files)
    real = os.path.realpath(root)
    if any(real == p or real.startswith(p + '/') for p in public):
        continue
    for name in files:
        path = os.path.join(root, name)
        try:
            if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > 1 << 20:
                continue
            with open(path, 'rb') as f:
                data = f.read()
        except OSError:
            continue
        read += 1
        hits += [path for m in markers if m.encode() in data]
print('files seen', seen, 'read', read)
print('hits', hits)
print('secret dir visible', os.path.exists('SECRET_DIR'))
try:
    print('test set reads', repr(open('TEST_SET').read()))
except OSError as e:
    print('test set unreadable', e)
fds = []
for fd in range(3, 256):
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        continue
    if not stat.S_ISREG(mode):  # the protocol's pipes or socket: reading one would block the session
        fds.append((fd, 'fifo' if stat.S_ISFIFO(mode) else 'sock' if stat.S_ISSOCK(mode) else oct(mode)))
        continue
    fds.append((fd, 'file'))
    try:
        fds.append((fd, os.pread(fd, 64, 0)))
    except OSError:
        pass
    try:
        os.write(fd, b'planted by sandboxed code')
        fds.append((fd, 'written'))
    except OSError:
        pass
print('descriptors', fds)
"#;

const IMPORTS: &str = "import numpy, sympy\nprint(int(numpy.arange(5).sum()), sympy.factorint(360))";

/// A learned function whose declared package is sympy.
fn registry(path: &Path) {
    let function = json!({
        "name": "divisor_count", "description": "Number of positive divisors of n.",
        "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        "packages": ["sympy"],
        "code": "import sympy\ndef divisor_count(n):\n    return int(sympy.divisor_count(n))\n",
    });
    std::fs::write(path, json!({"functions": [function]}).to_string()).unwrap();
}

/// Who runs agentopt, and how its sessions are isolated.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Whoever runs the tests, with the defaults (root: sessions forked from the fork server, each on a
    /// uid of its own; anyone else: a sandbox per session).
    Default,
    /// Root with `AGENTOPT_FORK_SERVER=0`: a sandbox per session.
    RootOwnSandbox,
    /// `nobody`: a sandbox per session inside a user namespace.
    Nobody,
}

/// The code's reports, one execution each: the imports, the walk, the learned function's call.
async fn run_as(mode: Mode) -> Vec<Value> {
    let secrets = tempfile::Builder::new().prefix("agentopt-view-").tempdir_in("/var/tmp").unwrap();
    let secret_dir = secrets.path().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    for dir in [&secret_dir, &work.path().to_path_buf()] {
        std::fs::set_permissions(dir, PermissionsExt::from_mode(0o777)).unwrap();
    }
    std::fs::write(secret_dir.join(".env"), format!("API_TOKEN={DECOY}\n")).unwrap();
    // As nobody the interpreter is a venv of the test's own, which the sandbox shows: the test set goes
    // there, to be masked inside the allowlist (elsewhere it is out of sight anyway).
    let python_for_nobody = matches!(mode, Mode::Nobody).then(|| support::python_for_nobody(work.path()));
    let test_set = match &python_for_nobody {
        Some(python) => python.parent().and_then(Path::parent).unwrap().join("test.jsonl"),
        None => secret_dir.join("test.jsonl"),
    };
    std::fs::write(
        &test_set,
        json!({"id": "p1", "problem": "How many divisors has 360?", "answer": "24",
                                     "solution": ANSWERS})
        .to_string()
            + "\n",
    )
    .unwrap();
    std::fs::write(secret_dir.join("fd7.txt"), FD_SECRET).unwrap();
    std::fs::write(secret_dir.join("fd8.txt"), "").unwrap();
    let functions = secret_dir.join("registry.json");
    registry(&functions);

    let walk = WALK
        .replace("SECRET_DIR", &secret_dir.to_string_lossy())
        .replace("TEST_SET", &test_set.to_string_lossy());
    let server = Server::start(&secret_dir, Duration::ZERO, move |body| {
        let turns = support::messages(body).iter().filter(|m| m["role"] == "assistant").count();
        match turns {
            // The imports first: in a sandbox of its own the worker imports numpy and sympy in a
            // background thread, whose open module files the walk's descriptor scan would see.
            0 => text(format!("```python\n{IMPORTS}\n```")),
            1 => text(format!("```python\n{walk}\n```")),
            2 => call("divisor_count", json!({"n": 360})),
            _ => text("\\boxed{24}"),
        }
    })
    .await;
    for entry in std::fs::read_dir(&secret_dir).unwrap() {
        std::fs::set_permissions(entry.unwrap().path(), PermissionsExt::from_mode(0o644)).unwrap();
    }

    let mut cmd = match mode {
        Mode::Nobody => {
            let mut cmd = std::process::Command::new("setpriv");
            cmd.args(["--reuid", support::NOBODY, "--regid", support::NOBODY, "--clear-groups", "--"])
                .arg(assert_cmd::cargo::cargo_bin("agentopt"))
                .env("AGENTOPT_PYTHON", python_for_nobody.as_ref().unwrap())
                .env("HOME", work.path());
            cmd
        }
        Mode::Default | Mode::RootOwnSandbox => {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("agentopt"))
        }
    };
    if let Mode::RootOwnSandbox = mode {
        cmd.env("AGENTOPT_FORK_SERVER", "0");
    }
    cmd.current_dir(work.path())
        .env_remove("OAI_CONFIG_LIST")
        .args(["eval", "--no-cache", "--json", "--exec-timeout", "120", "--test"])
        .arg(&test_set)
        .arg("--config")
        .arg(&server.config)
        .arg("--functions")
        .arg(&functions)
        .args(["--out", "records.jsonl"]);
    let fd7 = std::fs::File::open(secret_dir.join("fd7.txt")).unwrap();
    let fd8 = std::fs::OpenOptions::new().append(true).open(secret_dir.join("fd8.txt")).unwrap();
    let (read_fd, write_fd) = (fd7.as_raw_fd(), fd8.as_raw_fd());
    // SAFETY: dup2 is async-signal-safe; the copies it makes are inheritable, as a shell's would be.
    unsafe {
        cmd.pre_exec(move || {
            for (from, to) in [(read_fd, 7), (write_fd, 8)] {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let summary = support::json_summary(&out);
    assert_eq!(summary["correct"], 1, "{mode:?}: {summary}");
    assert_eq!(
        std::fs::read_to_string(secret_dir.join("fd8.txt")).unwrap(),
        "",
        "{mode:?}: wrote through fd 8"
    );

    let records = std::fs::read_to_string(work.path().join("records.jsonl")).unwrap();
    assert!(!records.contains(support::SECRET) && !records.contains(DECOY), "{mode:?}: {records}");
    assert!(!records.contains(ANSWERS) && !records.contains(FD_SECRET), "{mode:?}: {records}");
    let record: Value = serde_json::from_str(records.lines().next().unwrap()).unwrap();
    record["executions"].as_array().cloned().unwrap_or_default()
}

fn stdout(execution: &Value) -> &str {
    execution["stdout"].as_str().unwrap_or("")
}

async fn sees_nothing_private(mode: Mode) {
    let executions = run_as(mode).await;
    assert_eq!(executions.len(), 3, "{mode:?}: {executions:?}");
    let walk = stdout(&executions[1]);
    let seen: usize = walk
        .lines()
        .find_map(|l| l.strip_prefix("files seen "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{mode:?}: {executions:?}"));
    assert!(seen > 10_000, "{mode:?}: the walk must reach the system and the interpreter: {walk}");
    assert!(walk.contains("hits []"), "{mode:?}: {walk}");
    assert!(walk.contains("secret dir visible False"), "{mode:?}: {walk}");
    let test_set = walk.lines().find(|l| l.starts_with("test set ")).unwrap_or("?");
    assert!(test_set == "test set reads ''" || test_set.contains("No such file"), "{mode:?}: {test_set}");
    // Only the protocol's two ends: pipes in a sandbox of its own, a socket when forked.
    let descriptors = walk.lines().find_map(|l| l.strip_prefix("descriptors ")).unwrap_or("?");
    let protocol = descriptors.matches("'fifo'").count() + descriptors.matches("'sock'").count();
    assert!(protocol == 2 && !descriptors.contains("'file'"), "{mode:?}: {descriptors}");
    assert_eq!(executions[0]["status"], "ok", "{mode:?}: {:?}", executions[0]);
    assert!(stdout(&executions[0]).contains("10 {2: 3, 3: 2, 5: 1}"), "{mode:?}: {:?}", executions[0]);
    assert_eq!(executions[2]["result"], "24", "{mode:?}: {:?}", executions[2]);
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

#[tokio::test(flavor = "multi_thread")]
async fn forked_sessions_see_nothing_private() {
    sees_nothing_private(Mode::Default).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_in_sandboxes_of_their_own_see_nothing_private() {
    if !is_root() {
        eprintln!("not root: the other test already runs unprivileged");
        return;
    }
    sees_nothing_private(Mode::RootOwnSandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unprivileged_user_s_sessions_see_nothing_private() {
    if !is_root() {
        eprintln!("not root: cannot switch to nobody (the forked test ran as this user)");
        return;
    }
    sees_nothing_private(Mode::Nobody).await;
}
