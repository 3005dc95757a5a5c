//! The sandbox as a normal user. Run as root (as CI is), the other tests only see sessions forked from
//! the root-only fork server; here `agentopt eval` runs again as `nobody` (through `setpriv`), where
//! each session gets a bubblewrap sandbox of its own inside a user namespace. The code must still run,
//! without root, network or a writable file system outside its work directory.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{Server, text};

/// What the code block prints, one line per property: its uid, whether it can reach the network, and
/// whether it can write outside its work directory (and inside it).
const PROBE: &str = "import os, socket
print('uid', os.getuid())
try:
    socket.create_connection(('127.0.0.1', PORT), timeout=2)
    print('network reachable')
except OSError:
    print('network unreachable')
for path in ['/usr/agentopt-probe', 'probe.txt']:
    try:
        open(path, 'w').write('x')
        print('wrote', path)
    except OSError:
        print('cannot write', path)
print(6 * 7)";

#[tokio::test(flavor = "multi_thread")]
async fn code_runs_sandboxed_as_a_normal_user() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("not root: every other sandbox test already runs as a normal user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    support::dataset(
        &dir.path().join("test.jsonl"),
        &[("p1", "What is 6*7? (one)", "42"), ("p2", "What is 6*7? (two)", "42")],
    );
    let port = std::sync::Arc::new(std::sync::OnceLock::<u16>::new());
    let probe_port = port.clone();
    let server = Server::start(dir.path(), Duration::ZERO, move |body| {
        let last = support::last(body);
        if last["role"] == "user" && support::messages(body).len() > 2 {
            let output = last["content"].as_str().unwrap_or("");
            let answer = output.lines().rev().find(|l| l.trim() == "42").unwrap_or("?").trim().to_string();
            return text(format!("\\boxed{{{answer}}}"));
        }
        let port = probe_port.get().copied().unwrap_or(9);
        text(format!("```python\n{}\n```", PROBE.replace("PORT", &port.to_string())))
    })
    .await;
    port.set(server.mock.address().port()).unwrap();
    let config = server.config.clone();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    let python = support::python_for_nobody(dir.path());
    let mut eval = assert_cmd::Command::new("setpriv");
    eval.args(["--reuid", support::NOBODY, "--regid", support::NOBODY, "--clear-groups", "--"])
        .arg(assert_cmd::cargo::cargo_bin("agentopt"))
        .current_dir(dir.path())
        .env_remove("OAI_CONFIG_LIST")
        .env("HOME", dir.path())
        .env("AGENTOPT_PYTHON", &python)
        .args(["eval", "--test", "test.jsonl", "--no-cache", "--json", "--concurrency", "2"])
        .arg("--config")
        .arg(&config)
        .args(["--out", "records.jsonl"])
        .timeout(Duration::from_secs(120));
    let summary = support::json_summary(&support::output_off_runtime(eval).await);
    assert_eq!(summary["correct"], 2, "{summary}");

    let records = std::fs::read_to_string(dir.path().join("records.jsonl")).unwrap();
    for line in records.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let stdout = record["executions"][0]["stdout"].as_str().unwrap_or("");
        let uid = stdout.lines().next().unwrap_or("");
        assert!(uid.starts_with("uid ") && uid != "uid 0", "{stdout}");
        assert!(stdout.contains("network unreachable"), "{stdout}");
        assert!(stdout.contains("cannot write /usr/agentopt-probe"), "{stdout}");
        assert!(stdout.contains("wrote probe.txt"), "{stdout}");
    }
    assert!(!Path::new("/usr/agentopt-probe").exists());
    assert!(!dir.path().join("probe.txt").exists(), "the work directory is the sandbox's own");
}
