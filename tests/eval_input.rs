//! `agentopt eval` on input it must refuse, and on SIGTERM: a `base_url` that is not an http(s) URL
//! an empty test set and a registry with an unusable function (eval and train) are bad input (exit
//! 2, naming what is wrong) before anything runs; SIGTERM stops the eval like Ctrl-C and exits 130;
//! without bubblewrap eval and train refuse (the probe runs while the first calls go out) and leave
//! `--out` and the runs directory as they were; a bubblewrap that fails is reported with the probe's
//! reason (the quick fork server's failed start, which stands in for the probe as root, is not).

mod support;

use std::time::Duration;

use support::{Server, text};

fn eval(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("agentopt"));
    cmd.current_dir(dir).env_remove("OAI_CONFIG_LIST").args(["eval", "--no-cache", "--test", "test.jsonl"]);
    cmd
}

#[test]
fn a_base_url_that_is_not_an_http_url_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    support::dataset(&dir.path().join("test.jsonl"), &[("p1", "What is 6*7?", "42")]);
    for url in ["not a url", "file:///etc/passwd", "localhost:8080/v1"] {
        let config = dir.path().join("OAI_CONFIG_LIST.json");
        let list = serde_json::json!([{"model": "m", "api_key": "sk-x", "base_url": url}]);
        std::fs::write(&config, list.to_string()).unwrap();
        let out = eval(dir.path()).arg("--config").arg(&config).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.contains("entry 1") && stderr.contains("base_url"), "{url}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_test_set_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test.jsonl"), "\n").unwrap();
    let server = Server::start(dir.path(), Duration::ZERO, |_| text("\\boxed{42}")).await;
    let mut cmd = eval(dir.path());
    cmd.arg("--config").arg(&server.config);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("test.jsonl") && stderr.contains("holds no problems"), "{stderr}");
    assert!(server.bodies().await.is_empty(), "no model call for nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_with_an_unusable_function_is_bad_input_before_any_problem_runs() {
    let dir = tempfile::tempdir().unwrap();
    support::dataset(&dir.path().join("test.jsonl"), &[("p1", "What is 6*7?", "42")]);
    let server = Server::start(dir.path(), Duration::ZERO, |_| text("\\boxed{42}")).await;
    let function = |name: &str, code: &str| {
        serde_json::json!({"name": name, "description": "d", "code": code,
                           "parameters": {"type": "object", "properties": {}}})
    };
    let cases = [
        ("undefined", function("helper", "def other():\n    return 1\n"), "does not define `helper`"),
        ("builtin", function("print", "def print():\n    return 1\n"), "is a Python builtin"),
        ("hangs", function("slow", "while True: pass\ndef slow(): pass\n"), "did not finish within 2 s"),
    ];
    for (file, bad, expected) in cases {
        let registry = dir.path().join(format!("{file}.json"));
        let functions = [function("fine", "def fine():\n    return 1\n"), bad];
        std::fs::write(&registry, serde_json::json!({"functions": functions}).to_string()).unwrap();
        let commands: [&[&str]; 2] = [
            &["eval", "--test", "test.jsonl"],
            &["train", "--train", "test.jsonl", "--test", "test.jsonl", "--allow-overlap", "--run", "r"],
        ];
        for args in commands {
            let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("agentopt"));
            cmd.current_dir(dir.path()).env_remove("OAI_CONFIG_LIST").args(args);
            cmd.args(["--no-cache", "--exec-timeout", "2", "--functions"]).arg(&registry);
            cmd.arg("--config").arg(&server.config);
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} {file}: {stderr}");
            let named = format!("{file}.json");
            assert!(stderr.contains(&named) && stderr.contains("function #2"), "{args:?}: {stderr}");
            assert!(stderr.contains(expected), "{args:?}: {stderr}");
        }
        assert!(!dir.path().join("runs/r").exists(), "train made no run of a bad registry");
    }
    assert!(server.bodies().await.is_empty(), "no model call before the registry is checked");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_an_eval_with_exit_130() {
    let dir = tempfile::tempdir().unwrap();
    let problems: Vec<(String, String)> =
        (1..=6).map(|i| (format!("p{i}"), format!("What is {i}*7?"))).collect();
    let rows: Vec<(&str, &str, &str)> =
        problems.iter().map(|(id, p)| (id.as_str(), p.as_str(), "42")).collect();
    support::dataset(&dir.path().join("test.jsonl"), &rows);
    let server = Server::start(dir.path(), Duration::from_millis(400), |_| text("\\boxed{42}")).await;
    let mut child = eval(dir.path())
        .arg("--config")
        .arg(&server.config)
        .args(["--concurrency", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while server.bodies().await.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "no model call came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SAFETY: signalling a child process we spawned and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_bubblewrap_eval_and_train_refuse_and_leave_their_files_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    support::dataset(&dir.path().join("test.jsonl"), &[("p1", "What is 6*7?", "42")]);
    // Slower than the probe: its failure, not the conversation's end, decides.
    let server = Server::start(dir.path(), Duration::from_millis(800), |_| text("\\boxed{42}")).await;
    let out_file = dir.path().join("out.jsonl");
    std::fs::write(&out_file, "an earlier eval's records\n").unwrap();
    let commands: [&[&str]; 2] = [
        &["eval", "--test", "test.jsonl", "--out", "out.jsonl"],
        &["train", "--train", "test.jsonl", "--test", "test.jsonl", "--allow-overlap", "--run", "r"],
    ];
    for args in commands {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("agentopt"));
        // No bwrap on this PATH; the interpreter is found by its full path.
        cmd.current_dir(dir.path()).env_remove("OAI_CONFIG_LIST").env("PATH", "/nonexistent").args(args);
        cmd.arg("--no-cache").arg("--config").arg(&server.config);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("No sandbox available") && stderr.contains("bwrap"), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "an earlier eval's records\n");
    assert!(!dir.path().join("runs/r").exists(), "train made no run without a sandbox");
}

#[tokio::test]
async fn a_bubblewrap_that_fails_is_reported_as_the_probe_found_it() {
    // As root the quick fork server's start is the bubblewrap check; when it fails, the full probe
    // runs and its reason is what the user sees (and --unsafe-no-sandbox still falls back).
    let dir = tempfile::tempdir().unwrap();
    support::dataset(&dir.path().join("test.jsonl"), &[("p1", "What is 6*7?", "42")]);
    // Slower than the probe, as above.
    let server = Server::start(dir.path(), Duration::from_millis(800), |_| text("\\boxed{42}")).await;
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let bwrap = bin.join("bwrap");
    std::fs::write(&bwrap, "#!/bin/sh\necho 'bwrap: this one never works' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&bwrap, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    for (extra, code) in [(None, 1), (Some("--unsafe-no-sandbox"), 0)] {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("agentopt"));
        cmd.current_dir(dir.path()).env_remove("OAI_CONFIG_LIST").env("PATH", &path);
        cmd.args(["eval", "--test", "test.jsonl", "--no-cache", "--config"]).arg(&server.config).args(extra);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{extra:?}: {stderr}");
        assert!(stderr.contains("this one never works"), "the probe's reason: {stderr}");
        if extra.is_none() {
            assert!(stderr.contains("No sandbox available"), "{stderr}");
        } else {
            assert!(stderr.contains("UNSANDBOXED"), "{stderr}");
        }
    }
}
