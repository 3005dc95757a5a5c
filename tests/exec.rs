//! Integration tests of the sandboxed executor against the real interpreter (`.venv/bin/python`) and
//! the real bubblewrap: state, timeouts, limits, isolation, learned functions, validation.

use std::time::Duration;

use agentopt::agent::proxy::format_execution;
use agentopt::exec::*;
use agentopt::functions::{FunctionDef, Registry};

fn config() -> SandboxConfig {
    SandboxConfig { timeout: Duration::from_secs(2), ..SandboxConfig::default() }
}

fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new(config()).expect("bubblewrap must work on the test machine");
    assert!(sandbox.is_isolated());
    sandbox
}

/// Two sessions forked from one sandbox's fork server (as root under bwrap).
async fn two_forked_sessions() -> (Sandbox, Session, Session) {
    let sandbox = sandbox();
    assert!(sandbox.forks_sessions(), "as root under bwrap, sessions fork from the fork server");
    let empty = Registry::default();
    let (a, b) = (sandbox.session(&empty).await.unwrap(), sandbox.session(&empty).await.unwrap());
    (sandbox, a, b)
}

fn function(name: &str, code: &str) -> FunctionDef {
    FunctionDef {
        name: name.into(),
        description: format!("test function {name}"),
        parameters: serde_json::json!({"type": "object", "properties": {}}),
        packages: vec![],
        code: code.into(),
    }
}

async fn session() -> Session {
    sandbox().session(&Registry::default()).await.expect("session starts")
}

#[tokio::test]
async fn state_persists_between_blocks() {
    let mut s = session().await;
    let first = s.run_code("x = 20\nimport sympy\nprint('set')").await;
    assert_eq!(first.status, ExecStatus::Ok, "{first:?}");
    assert_eq!(first.stdout, "set\n");
    let second = s.run_code("print(x + 22)").await;
    assert_eq!(second.stdout, "42\n", "{second:?}");
    // What the assistant reads of it (the model-facing text is composed in `agent`).
    assert_eq!(format_execution(&second), ("42".to_string(), true));
    let expr = s.run_code("sympy.Rational(1, 2) + x").await;
    assert_eq!(expr.result.as_deref(), Some("41/2"), "{expr:?}");
    s.close().await;
}

#[tokio::test]
async fn errors_report_a_traceback_without_worker_frames() {
    let mut s = session().await;
    let e = s.run_code("def f():\n    return 1/0\nf()").await;
    assert_eq!(e.status, ExecStatus::Error);
    assert!(e.stderr.contains("ZeroDivisionError"), "{e:?}");
    assert!(e.stderr.contains("return 1/0"), "source lines are quoted: {e:?}");
    assert!(!e.stderr.contains("agentopt-worker"), "worker frames leak: {e:?}");
    let (text, ok) = format_execution(&e);
    assert!(!ok && text.starts_with("Error: ") && text.contains("ZeroDivisionError"), "{text}");
    let syntax = s.run_code("def (").await;
    assert_eq!(syntax.status, ExecStatus::Error);
    assert!(syntax.stderr.contains("SyntaxError"), "{syntax:?}");
}

#[tokio::test]
async fn timeout_kills_and_the_session_recovers() {
    let mut s = session().await;
    s.run_code("y = 5").await;
    let t = s.run_code("while True: pass").await;
    assert_eq!(t.status, ExecStatus::Timeout, "{t:?}");
    assert!(t.duration_ms < 10_000, "killed at the limit, not waited for: {t:?}");
    let (text, ok) = format_execution(&t);
    assert!(!ok && text.contains("Timeout"), "{text}");
    let after = s.run_code("print('alive'); print('y' in globals())").await;
    assert_eq!(after.stdout, "alive\nFalse\n", "fresh state after restart: {after:?}");
}

#[tokio::test]
async fn output_printed_before_a_timeout_or_a_crash_is_kept() {
    let mut s = session().await;
    let t = s
        .run_code(
            "import sys\nprint('step 1 done', flush=True)\nprint('warn', file=sys.stderr)\nwhile True: pass",
        )
        .await;
    assert_eq!(t.status, ExecStatus::Timeout, "{t:?}");
    assert_eq!(t.stdout, "step 1 done\n", "{t:?}");
    assert!(t.stderr.starts_with("warn\n") && t.stderr.contains("Timeout"), "{t:?}");
    let c = s.run_code("print('before the crash')\nimport os\nos._exit(3)").await;
    assert_eq!(c.status, ExecStatus::Crashed, "{c:?}");
    assert_eq!(c.stdout, "before the crash\n", "{c:?}");
    // The assistant reads one message saying how it ended, once.
    let (text, _) = agentopt::agent::proxy::format_execution(&c);
    assert!(text.starts_with("before the crash\nError: "), "{text}");
    assert_eq!(text.matches("restarted").count(), 1, "{text}");
    let after = s.run_code("print('fresh')").await;
    assert_eq!(after.stdout, "fresh\n", "the next block's output is its own: {after:?}");
}

#[tokio::test]
async fn large_allocation_raises_memory_error() {
    let mut s = session().await;
    let e = s.run_code("b = bytearray(6 * 1024**3)").await;
    assert_eq!(e.status, ExecStatus::Error, "{e:?}");
    assert!(e.stderr.contains("MemoryError"), "{e:?}");
    let ok = s.run_code("print('still here')").await;
    assert_eq!(ok.stdout, "still here\n");
}

/// Processes on the host whose command line contains `pattern` (read from /proc: no pgrep needed).
fn count_processes(pattern: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).replace('\0', " ").contains(pattern))
        .count()
}

#[tokio::test]
async fn fork_bomb_is_capped_and_leaves_nothing_behind() {
    let marker = "4242.4242";
    // Forking a process holding sympy and numpy is slow on a loaded machine: allow more than 2 s.
    let sandbox = Sandbox::new(SandboxConfig { timeout: Duration::from_secs(20), ..config() }).unwrap();
    let mut s = sandbox.session(&Registry::default()).await.unwrap();
    let code = format!(
        "import os\nn = 0\nfor i in range(300):\n    try:\n        pid = os.fork()\n    except OSError:\n        \
         break\n    if pid == 0:\n        os.execv('/bin/sleep', ['sleep', '{marker}'])\n    n += 1\nprint(n)"
    );
    let e = s.run_code(&code).await;
    assert_eq!(e.status, ExecStatus::Ok, "{e:?}");
    let forked: usize = e.stdout.trim().parse().expect("a count");
    assert!(forked < 64, "the process cap held: {forked}");
    assert!(forked > 0);
    assert!(count_processes(marker) > 0, "the children exist while the session lives");
    s.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count_processes(marker), 0, "no process left behind");
}

#[tokio::test]
async fn timeout_kills_child_processes_too() {
    let marker = "4343.4343";
    let mut s = session().await;
    let t = s
        .run_code(&format!(
            "import subprocess, time\nsubprocess.Popen(['sleep', '{marker}'])\ntime.sleep(60)"
        ))
        .await;
    assert_eq!(t.status, ExecStatus::Timeout);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count_processes(marker), 0, "no process left behind");
}

#[tokio::test]
async fn writes_to_tmp_and_home_stay_private() {
    let name = format!("agentopt-sandbox-probe-{}", std::process::id());
    let mut s = session().await;
    let code = format!(
        "import os\nopen('/tmp/{name}', 'w').write('x')\nopen(os.path.expanduser('~/{name}'), 'w').write('x')\n\
         print(os.path.expanduser('~'), os.getcwd())"
    );
    let e = s.run_code(&code).await;
    assert_eq!(e.status, ExecStatus::Ok, "{e:?}");
    assert!(!std::path::Path::new(&format!("/tmp/{name}")).exists());
    assert!(!std::path::Path::new(&format!("/root/{name}")).exists());
    if let Some(home) = std::env::var_os("HOME") {
        assert!(!std::path::Path::new(&home).join(&name).exists());
    }
    let outside = s.run_code("open('/usr/agentopt-probe', 'w')").await;
    assert_eq!(outside.status, ExecStatus::Error, "the rest is read-only: {outside:?}");
    // Only the interpreter's own prefix is re-exposed under the hidden home directories.
    let hidden = s.run_code("import os; print(set(os.listdir('/root')) <= {'.pyenv'})").await;
    assert_eq!(hidden.stdout.trim(), "True", "the host's home is hidden: {hidden:?}");
    let cwd = std::env::current_dir().unwrap();
    let project = s.run_code(&format!("import os; print(os.listdir({:?}))", cwd.to_string_lossy())).await;
    assert!(!project.stdout.contains("Cargo.toml"), "agentopt's cwd is hidden: {project:?}");
}

#[tokio::test]
async fn worker_is_unprivileged_and_alone() {
    let mut s = session().await;
    let code = "import os\nstatus = open('/proc/self/status').read()\nprint('NoNewPrivs:\\t1' in status,                 'CapEff:\\t0000000000000000' in status, os.getuid() != 0)\n\
                print(len([p for p in os.listdir('/proc') if p.isdigit()]) < 10)";
    let e = s.run_code(code).await;
    assert_eq!(e.stdout, "True True True\nTrue\n", "no privileges, own PID namespace: {e:?}");
}

/// Code that writes `started` events to every descriptor it can (the protocol channel among them),
/// as if each were a new execution, and keeps running.
const FORGED_STARTS: &str = "import os, time
for _ in range(16):
    for fd in range(3, 16):
        try:
            os.write(fd, b'{\"event\": \"started\"}\\n')
        except OSError:
            pass
    time.sleep(0.5)
print('outlived the limit')";

#[tokio::test]
async fn forged_start_events_do_not_move_the_deadline() {
    for fork_server in [true, false] {
        let sandbox = Sandbox::new(SandboxConfig { fork_server, ..config() }).unwrap();
        let mut s = sandbox.session(&Registry::default()).await.unwrap();
        let t = s.run_code(FORGED_STARTS).await;
        assert_eq!(t.status, ExecStatus::Timeout, "fork server {fork_server}: {t:?}");
        assert!(t.duration_ms < 4_000, "killed at the 2 s limit: {t:?}");
        assert_eq!(s.run_code("print(1)").await.stdout, "1\n", "restarted");
    }
}

#[tokio::test]
async fn code_cannot_lift_its_cpu_limit() {
    for fork_server in [true, false] {
        let sandbox = Sandbox::new(SandboxConfig { fork_server, ..config() }).unwrap();
        let mut s = sandbox.session(&Registry::default()).await.unwrap();
        let code = "import resource\nsoft, hard = resource.getrlimit(resource.RLIMIT_CPU)\n\
                    print(hard != resource.RLIM_INFINITY, soft <= hard)\n\
                    try:\n    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))\n    \
                    print('raised')\nexcept (ValueError, OSError):\n    print('refused')";
        let e = s.run_code(code).await;
        assert_eq!(e.stdout, "True True\nrefused\n", "fork server {fork_server}: {e:?}");
    }
}

#[tokio::test]
async fn root_sandboxes_keep_only_the_capabilities_they_need() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("not root: the sandbox runs in a user namespace and holds nothing on the host");
        return;
    }
    // Bits of CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_MODULE, CAP_SYS_RAWIO and CAP_SYS_PTRACE.
    let code = "def caps(pid, field):\n    for line in open('/proc/%s/status' % pid):\n        \
                if line.startswith(field):\n            return int(line.split()[1], 16)\n\
                import os\nmask = (1 << 12) | (1 << 13) | (1 << 16) | (1 << 17) | (1 << 19)\n\
                print(caps(os.getppid(), 'CapEff:') & mask)";
    for fork_server in [true, false] {
        let sandbox = Sandbox::new(SandboxConfig { fork_server, ..config() }).unwrap();
        let mut s = sandbox.session(&Registry::default()).await.unwrap();
        let e = s.run_code(code).await;
        // The parent: the fork server, or bubblewrap's init in a sandbox of its own. (The bounding
        // set stays; with no_new_privs set, no exec can gain from it.)
        assert_eq!(e.stdout, "0\n", "fork server {fork_server}: {e:?}");
    }
}

#[tokio::test]
async fn network_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut s = session().await;
    let code = format!("import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)");
    let e = s.run_code(&code).await;
    assert_eq!(e.status, ExecStatus::Error, "{e:?}");
    assert!(e.stderr.contains("Error"), "{e:?}");
}

#[tokio::test]
async fn environment_carries_no_secrets() {
    // SAFETY: set before the sandbox starts any worker; this test binary's other tests never read it.
    unsafe { std::env::set_var("OPENAI_API_KEY", "sk-test-secret-should-not-leak") };
    let mut s = session().await;
    let e = s.run_code("import os\nprint(sorted(os.environ))\nprint(os.environ.get('OPENAI_API_KEY'))").await;
    assert_eq!(e.status, ExecStatus::Ok, "{e:?}");
    assert!(!e.stdout.contains("sk-test-secret"), "{e:?}");
    assert!(!e.stdout.contains("OPENAI_API_KEY"), "{e:?}");
    assert!(e.stdout.ends_with("None\n"), "{e:?}");
}

#[tokio::test]
async fn each_function_runs_its_own_code() {
    let registry = Registry {
        functions: vec![
            function("double", "def double(x):\n    return 2 * x\n"),
            function("square", "def square(x):\n    print('squaring')\n    return x * x\n"),
        ],
    };
    let mut s = sandbox().session(&registry).await.unwrap();
    let d = s.call_function("double", r#"{"x": 7}"#).await;
    assert_eq!((d.status, d.result.as_deref()), (ExecStatus::Ok, Some("14")), "{d:?}");
    let q = s.call_function("square", r#"{"x": 7}"#).await;
    assert_eq!((q.status, q.result.as_deref()), (ExecStatus::Ok, Some("49")), "{q:?}");
    assert_eq!(format_execution(&q), ("squaring\n49".to_string(), true));
    let again = s.call_function("double", r#"{"x": 1}"#).await;
    assert_eq!(again.result.as_deref(), Some("2"), "AG2's late-binding bug: {again:?}");
    let in_code = s.run_code("print(double(3), square(3))").await;
    assert_eq!(in_code.stdout, "squaring\n6 9\n", "{in_code:?}");
}

#[tokio::test]
async fn function_errors_come_back_as_data() {
    let broken = FunctionDef {
        packages: vec!["no_such_pkg_abc".into()],
        ..function("broken", "def broken():\n    pass\n")
    };
    let registry = Registry {
        functions: vec![function("boom", "def boom(n):\n    raise ValueError(f'bad {n}')\n"), broken],
    };
    let mut s = sandbox().session(&registry).await.unwrap();
    let e = s.call_function("boom", r#"{"n": 3}"#).await;
    assert_eq!(e.status, ExecStatus::Error);
    assert!(e.stderr.contains("Traceback") && e.stderr.contains("ValueError: bad 3"), "{e:?}");
    assert!(e.stderr.contains("raise ValueError"), "{e:?}");
    let bad_json = s.call_function("boom", "{n: 3").await;
    assert_eq!(bad_json.status, ExecStatus::Error);
    assert!(bad_json.stderr.contains("not valid JSON"), "{bad_json:?}");
    let missing = s.call_function("nope", "{}").await;
    assert!(missing.stderr.contains("no function named `nope`"), "{missing:?}");
    let undefined = s.call_function("broken", "").await;
    assert_eq!(undefined.status, ExecStatus::Error);
    assert!(
        undefined.stderr.contains("could not be defined") && undefined.stderr.contains("no_such_pkg_abc")
    );
    let wrong_args = s.call_function("boom", r#"{"m": 1}"#).await;
    assert!(wrong_args.stderr.contains("unexpected keyword argument"), "{wrong_args:?}");
}

#[tokio::test]
async fn a_function_that_hangs_or_exits_at_import_fails_only_itself_within_the_time_limit() {
    let cases = [
        ("loops", "while True: pass\ndef loops(): pass\n", "did not finish within 2 s"),
        ("leaves", "import os\nos._exit(5)\ndef leaves(): pass\n", "crashed Python"),
    ];
    for (name, code, expected) in cases {
        let registry =
            Registry { functions: vec![function(name, code), function("ok", "def ok():\n    return 1\n")] };
        let started = std::time::Instant::now();
        let mut s = sandbox().session(&registry).await.expect("the session starts all the same");
        assert!(started.elapsed() < Duration::from_secs(20), "{name}: {:?}", started.elapsed());
        let call = s.call_function(name, "{}").await;
        assert_eq!(call.status, ExecStatus::Error, "{call:?}");
        assert!(call.stderr.contains(expected), "{name}: {call:?}");
        let code = s.run_code("print(6 * 7)").await;
        assert_eq!(code.stdout, "42\n", "code blocks still run: {code:?}");
        // A restart (after a timeout) does not pay for the hang again.
        let started = std::time::Instant::now();
        assert_eq!(s.run_code("while True: pass").await.status, ExecStatus::Timeout);
        assert_eq!(s.run_code("print(1)").await.stdout, "1\n");
        assert!(started.elapsed() < Duration::from_secs(15), "{name}: {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn a_registry_function_named_like_a_builtin_never_replaces_it() {
    let registry = Registry { functions: vec![function("len", "def len(x):\n    return 99\n")] };
    let mut s = sandbox().session(&registry).await.unwrap();
    assert_eq!(s.run_code("print(len('ab'))").await.stdout, "2\n");
    let call = s.call_function("len", r#"{"x": 1}"#).await;
    assert!(call.stderr.contains("is a Python builtin"), "{call:?}");
}

#[tokio::test]
async fn text_that_is_not_unicode_comes_back_escaped() {
    let mut s = session().await;
    let e = s.run_code("print('a\\udcffb')\n'c\\ud800'").await;
    assert_eq!(e.status, ExecStatus::Ok, "{e:?}");
    assert_eq!(e.stdout, "a\\udcffb\n", "{e:?}");
    assert_eq!(e.result.as_deref(), Some("'c\\ud800'"), "{e:?}");
    assert_eq!(s.run_code("print(1)").await.stdout, "1\n", "the session lives on");
}

#[tokio::test]
async fn output_over_the_cap_is_truncated() {
    let sandbox = Sandbox::new(SandboxConfig { output_cap_bytes: 1000, ..config() }).unwrap();
    let mut s = sandbox.session(&Registry::default()).await.unwrap();
    let e = s.run_code("print('a' * 5000)\nimport os\nos.system('yes | head -c 5000')").await;
    assert!(e.truncated, "{e:?}");
    assert!(e.stdout.len() < 1200, "{}", e.stdout.len());
    assert!(e.stdout.contains("output truncated"), "{e:?}");
    let (text, _) = agentopt::agent::proxy::format_execution(&e);
    assert_eq!(text.matches("truncated").count(), 1, "one marker: {text}");
}

#[tokio::test]
async fn subprocess_output_is_captured() {
    let mut s = session().await;
    let e = s
        .run_code("import os, sys\nos.system('echo from-shell')\nprint('from-python')\nsys.stdout.buffer.write(b'bytes\\n')")
        .await;
    assert_eq!(e.status, ExecStatus::Ok, "{e:?}");
    assert_eq!(e.stdout, "from-shell\nfrom-python\nbytes\n", "in order: {e:?}");
    let tail = s.run_code("import os\nprint('a')\nos.system('echo b')").await;
    assert_eq!(tail.stdout, "a\nb\n", "{tail:?}");
}

#[tokio::test]
async fn validation_accepts_good_functions_and_explains_bad_ones() {
    let sandbox = sandbox();
    let good = FunctionDef {
        packages: vec!["sympy".into()],
        parameters: serde_json::json!({"type": "object", "properties": {"a": {}, "b": {}, "c": {}}}),
        ..function(
            "roots",
            "import sympy\ndef roots(a, b, c):\n    return sympy.solve(a*sympy.Symbol('x')**2 + b*sympy.Symbol('x') + c)\n",
        )
    };
    assert_eq!(sandbox.validate_function(&good).await.unwrap(), Ok(()));
    let cases = [
        (function("f", "def f(:\n  pass"), "SyntaxError"),
        (function("f", "def g():\n    return 1\n"), "does not define `f`"),
        (function("f", "f = 3\n"), "not callable"),
        (
            FunctionDef {
                packages: vec!["no_such_package_xyz".into()],
                ..function("f", "def f():\n    return 1\n")
            },
            "cannot be imported",
        ),
        (function("f", "while True: pass\ndef f(): pass\n"), "did not finish"),
        (function("f", "raise RuntimeError('top')\n"), "RuntimeError: top"),
        (
            FunctionDef {
                parameters: serde_json::json!({"type": "object", "properties": {"a": {"type": "number"}}}),
                ..function("f", "def f(x):\n    return x\n")
            },
            "declare `a`",
        ),
        (function("f", "def f(x):\n    return x\n"), "requires `x`"),
        (function("print", "def print(*a):\n    pass\n"), "is a Python builtin"),
        (function("f", "import os\nos._exit(4)\n"), "crashed Python"),
    ];
    for (def, expected) in cases {
        let verdict = sandbox.validate_function(&def).await.unwrap();
        let message = verdict.expect_err(expected);
        assert!(message.contains(expected), "expected `{expected}` in: {message}");
    }
}

#[tokio::test]
async fn a_dead_worker_is_reported_and_replaced() {
    let mut s = session().await;
    s.run_code("z = 1").await;
    let e = s.run_code("import os\nos._exit(3)").await;
    assert_eq!(e.status, ExecStatus::Crashed, "{e:?}");
    assert!(e.stderr.contains("exited with status 3"), "{e:?}");
    let after = s.run_code("print('z' in globals())").await;
    assert_eq!(after.stdout, "False\n", "{after:?}");
    let exit0 = s.run_code("import sys\nprint('bye')\nsys.exit(0)").await;
    assert_eq!((exit0.status, exit0.stdout.as_str()), (ExecStatus::Ok, "bye\n"), "{exit0:?}");
    let exit2 = s.run_code("import sys\nsys.exit(2)").await;
    assert_eq!(exit2.status, ExecStatus::Error, "{exit2:?}");
    let eof = s.run_code("input()").await;
    assert!(eof.stderr.contains("EOFError"), "stdin is empty: {eof:?}");
}

#[tokio::test]
async fn dropping_a_session_kills_its_processes_and_leaves_no_files_on_the_host() {
    let marker = "4444.4444";
    let file = format!("agentopt-drop-probe-{}", std::process::id());
    let mut s = session().await;
    let e = s
        .run_code(&format!(
            "import subprocess\nopen('{file}', 'w').write('x')\nsubprocess.Popen(['sleep', '{marker}'])"
        ))
        .await;
    assert_eq!(e.status, ExecStatus::Ok, "{e:?}");
    // A session's directory is a tmpfs of its own: its files never reach the host's temp dirs
    // (where an earlier design kept them, one per session or inside the fork server's).
    let host_copies = || {
        let dirs = |path: &std::path::Path| -> Vec<std::path::PathBuf> {
            std::fs::read_dir(path).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
        };
        let top = dirs(&std::env::temp_dir());
        let nested = top.iter().flat_map(|d| dirs(d)).collect::<Vec<_>>();
        top.iter().chain(&nested).filter(|d| d.join(&file).exists()).count()
    };
    assert_eq!(host_copies(), 0, "the work directory is not on the host's disk");
    assert_eq!(count_processes(marker), 1);
    drop(s);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count_processes(marker), 0, "no process left behind");
    assert_eq!(host_copies(), 0, "nothing is left behind");
}

#[tokio::test]
async fn sessions_run_concurrently() {
    let sandbox = sandbox();
    let empty = Registry::default();
    let (a, b) = tokio::join!(sandbox.session(&empty), sandbox.session(&empty));
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    a.run_code("v = 'a'").await;
    b.run_code("v = 'b'").await;
    assert_eq!(a.run_code("print(v)").await.stdout, "a\n");
    assert_eq!(b.run_code("print(v)").await.stdout, "b\n");
}

#[tokio::test]
async fn forked_sessions_are_apart_from_each_other() {
    let (_sandbox, mut a, mut b) = two_forked_sessions().await;
    let whoami = "import os\nopen('mine', 'w').write('secret')\nprint(os.getuid(), os.getcwd())";
    let (ea, eb) = (a.run_code(whoami).await, b.run_code(whoami).await);
    let (ua, da) = ea.stdout.trim().split_once(' ').unwrap_or_else(|| panic!("{ea:?}"));
    let (ub, db) = eb.stdout.trim().split_once(' ').unwrap_or_else(|| panic!("{eb:?}"));
    assert_ne!(ua, ub, "a uid each");
    assert_ne!(da, db, "a work directory each");
    let peek = b.run_code(&format!("print(open({:?}).read())", format!("{da}/mine"))).await;
    assert_eq!(peek.status, ExecStatus::Error, "b cannot read a's files: {peek:?}");
    // Not even there: b's home is a tmpfs of its own over the server's.
    assert!(peek.stderr.contains("FileNotFoundError"), "{peek:?}");
    let kill = b.run_code(&format!("import os, signal\nos.kill({}, signal.SIGKILL)", "os.getppid()")).await;
    assert_eq!(kill.status, ExecStatus::Error, "nor signal the fork server: {kill:?}");
    assert_eq!(a.run_code("print(open('mine').read())").await.stdout, "secret\n");
}

/// Forked sessions each have a PID namespace of their own: one cannot see, signal or read the
/// other's processes (nor the fork server), and what a session started, even in a session of its
/// own (setsid), dies with it.
#[tokio::test]
async fn forked_sessions_see_only_their_own_processes() {
    let marker = "4343.4343";
    let (_sandbox, mut a, mut b) = two_forked_sessions().await;
    let started = a
        .run_code(&format!(
            "import subprocess\np = subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\nprint(p.pid)"
        ))
        .await;
    let pid: u32 = started.stdout.trim().parse().unwrap_or_else(|_| panic!("{started:?}"));
    // The pids /proc shows, and how many of them run a's sleep.
    let list = format!(
        "import os\npids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n\
         print(pids, sum(b'{marker}' in open('/proc/%d/cmdline' % p, 'rb').read() for p in pids))"
    );
    // The sleep's command line shows once its exec is through: ask again for a while.
    let mut seen_by_a = a.run_code(&list).await;
    for _ in 0..40 {
        if seen_by_a.stdout.ends_with(" 1\n") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        seen_by_a = a.run_code(&list).await;
    }
    assert_eq!(seen_by_a.stdout, format!("[1, 2, {pid}] 1\n"), "a sees its own: {seen_by_a:?}");
    let seen_by_b = b.run_code(&list).await;
    assert_eq!(seen_by_b.stdout, "[1, 2] 0\n", "b sees its namespace's init and itself: {seen_by_b:?}");
    // a's pid means nothing in b's namespace: no such process, or b's own (never a's sleep).
    let signal = b
        .run_code(&format!(
            "import os, signal\ntry:\n    os.kill({pid}, signal.SIGKILL)\n    print('sent')\n\
             except OSError as e:\n    print(type(e).__name__)"
        ))
        .await;
    assert_eq!(signal.stdout, "ProcessLookupError\n", "{signal:?}");
    let init = b.run_code("import os, signal\nos.kill(1, signal.SIGKILL)").await;
    assert!(init.stderr.contains("PermissionError"), "nor signal its namespace's init: {init:?}");
    assert_eq!(count_processes(marker), 1, "a's sleep still runs");
    drop(a);
    for _ in 0..50 {
        if count_processes(marker) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count_processes(marker), 0, "a's setsid process died with its session");
}

#[tokio::test]
async fn forked_sessions_cannot_reach_each_other_over_the_network() {
    let (_sandbox, mut a, mut b) = two_forked_sessions().await;
    let listen = "import socket\ntry:\n    server = socket.socket()\n    server.bind(('127.0.0.1', 0))\n    \
                  server.listen()\n    print(server.getsockname()[1])\nexcept OSError as e:\n    print('no loopback', e)";
    let listening = a.run_code(listen).await;
    let port = listening.stdout.trim().parse::<u16>().ok();
    let reach = match port {
        Some(port) => format!(
            "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    \
             print('reached')\nexcept OSError:\n    print('unreachable')"
        ),
        None => "print('unreachable')".to_string(),
    };
    let e = b.run_code(&reach).await;
    assert_eq!(e.stdout, "unreachable\n", "a listened ({listening:?}); b: {e:?}");
}

#[tokio::test]
async fn a_session_sees_neither_another_session_s_home_nor_the_fork_server_s_socket() {
    // Each session's home is a tmpfs of its own over the server's, which hides the directory
    // holding the server's socket: no code can connect there and take a spare.
    let (_sandbox, mut a, mut b) = two_forked_sessions().await;
    let planted = a
        .run_code("import os\nopen('mine.txt', 'w').write('a')\nprint(os.getcwd() == os.environ['HOME'])")
        .await;
    assert_eq!(planted.stdout, "True\n", "{planted:?}");
    let look = "import os, socket\n\
                home = os.environ['HOME']\n\
                print(os.path.dirname(home), os.listdir(os.path.dirname(home)) == [os.path.basename(home)])\n\
                print(os.path.exists('/home/sandbox/.server'), os.listdir(home))\n\
                s = socket.socket(socket.AF_UNIX)\n\
                try:\n    s.connect('/home/sandbox/.server/.fork-server.sock')\n    print('connected')\n\
                except OSError as e:\n    print(type(e).__name__)";
    let e = b.run_code(look).await;
    assert_eq!(e.stdout, "/home/sandbox True\nFalse []\nFileNotFoundError\n", "{e:?}");
}

#[tokio::test]
async fn a_session_cannot_change_its_network_namespace() {
    // Network namespaces are reused once their sessions end (their processes all gone): what makes
    // that safe is that code can leave nothing there: no interface brought up, no setting written.
    let sandbox = sandbox();
    let mut s = sandbox.session(&Registry::default()).await.unwrap();
    let code = "import fcntl, socket, struct\n\
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                try:\n    fcntl.ioctl(s, 0x8914, struct.pack('16sH14s', b'lo', 1, bytes(14)))\n    print('up')\n\
                except OSError as e:\n    print('refused', e.errno)\n\
                try:\n    open('/proc/sys/net/ipv4/ip_default_ttl', 'w').write('12')\n    print('written')\n\
                except OSError as e:\n    print('refused', e.errno in (1, 13, 30))";
    let e = s.run_code(code).await;
    assert_eq!(e.stdout, "refused 1\nrefused True\n", "{e:?}");
}

#[tokio::test]
async fn processes_that_leave_the_session_s_group_end_with_it() {
    let (setsid, double_fork) = ("4646.4646", "4747.4747");
    let sandbox = Sandbox::new(SandboxConfig { timeout: Duration::from_secs(20), ..config() }).unwrap();
    let mut s = sandbox.session(&Registry::default()).await.unwrap();
    let code = format!(
        "import os, subprocess\nsubprocess.Popen(['setsid', 'sleep', '{setsid}'])\n\
         if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        \
         os.execv('/bin/sleep', ['sleep', '{double_fork}'])\n    os._exit(0)\n\
         import time\ntime.sleep(0.5)\nprint('started')"
    );
    let e = s.run_code(&code).await;
    assert_eq!(e.stdout, "started\n", "{e:?}");
    assert_eq!(
        (count_processes(setsid), count_processes(double_fork)),
        (1, 1),
        "running while the session lives"
    );
    s.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        (count_processes(setsid), count_processes(double_fork)),
        (0, 0),
        "nothing outlives the session"
    );
}

#[tokio::test]
async fn later_sessions_come_with_sympy_already_imported() {
    // The first sessions fork from the quick server; once the full one has imported sympy (in the
    // background, at low priority) sessions fork from it and find sympy loaded. Code of either runs
    // at the normal priority, its own and its scheduling group's (spares wait at a lower one).
    let sandbox = sandbox();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let probe = "import os, sys\n\
                 group = open('/proc/self/autogroup').read().split()[-1] \
                 if os.path.exists('/proc/self/autogroup') else '0'\n\
                 print('sympy' in sys.modules, os.getpriority(os.PRIO_PROCESS, 0), group)";
    loop {
        let mut s = sandbox.session(&Registry::default()).await.unwrap();
        let e = s.run_code(probe).await;
        if e.stdout == "True 0 0\n" {
            let solved = s.run_code("import sympy\nprint(sympy.solve(sympy.Symbol('x') - 2))").await;
            assert_eq!(solved.stdout, "[2]\n", "{solved:?}");
            break;
        }
        assert_eq!(e.stdout, "False 0 0\n", "{e:?}");
        assert!(std::time::Instant::now() < deadline, "the full fork server never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn sessions_with_a_sandbox_each_still_work() {
    let sandbox = Sandbox::new(SandboxConfig { fork_server: false, ..config() }).unwrap();
    assert!(!sandbox.forks_sessions());
    let mut s = sandbox.session(&Registry::default()).await.unwrap();
    s.run_code("x = 41").await;
    assert_eq!(s.run_code("print(x + 1)").await.stdout, "42\n");
    let t = s.run_code("while True: pass").await;
    assert_eq!(t.status, ExecStatus::Timeout, "{t:?}");
    assert_eq!(s.run_code("print(1)").await.stdout, "1\n", "restarted");
}

#[test]
fn refuses_without_a_sandbox_unless_allowed() {
    // A bwrap that cannot work: PATH without it is not controllable per test, so use a missing python.
    let missing = SandboxConfig { python: "/nonexistent/python".into(), ..config() };
    assert!(matches!(Sandbox::new(missing), Err(Error::Spawn { .. })));
}

#[tokio::test]
async fn a_bare_interpreter_name_is_found_through_path() {
    // No .venv, no AGENTOPT_PYTHON: `python3` from PATH (a pyenv shim here). Without numpy and sympy
    // installed there the session still runs (they are only preloaded when present).
    let sandbox = Sandbox::new(SandboxConfig { python: "python3".into(), ..config() })
        .expect("bwrap works and python3 is on PATH: nothing to refuse");
    assert!(sandbox.is_isolated());
    let mut s = sandbox.session(&Registry::default()).await.unwrap();
    assert_eq!(s.run_code("print(1 + 1)").await.stdout, "2\n");
}

/// The unsandboxed fallback; run by hand with bwrap hidden: `PATH=/nonexistent target/debug/deps/exec-* --ignored`.
#[tokio::test]
#[ignore]
async fn unsandboxed_fallback_when_allowed() {
    assert!(matches!(Sandbox::new(config()), Err(Error::NoSandbox { .. })));
    let sandbox = Sandbox::new(SandboxConfig { allow_unsandboxed: true, ..config() }).unwrap();
    assert!(!sandbox.is_isolated());
    let mut s = sandbox.session(&Registry::default()).await.unwrap();
    assert_eq!(s.run_code("print(1+1)").await.stdout, "2\n");
}

#[test]
fn sessions_can_move_between_tasks() {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<Session>();
    assert_send_sync::<Sandbox>();
}

/// Calls sandbox escapes are made of fail with the filter's errno in every kind of session, while
/// threads, subprocesses and forks (what math code uses) still work.
#[tokio::test]
async fn a_system_call_filter_refuses_escapes_but_not_ordinary_work() {
    let code = r#"import ctypes, errno, os, socket, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
def failing(call, *args):
    ctypes.set_errno(0)
    return 'ok' if call(*args) == 0 else errno.errorcode[ctypes.get_errno()]
def opening(family):
    try:
        socket.socket(family, socket.SOCK_STREAM if family != 16 else socket.SOCK_RAW).close()
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
def memfd():
    try:
        os.memfd_create('x')
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
seccomp = [l.split()[1] for l in open('/proc/self/status') if l.startswith('Seccomp:')]
print('filter', seccomp)
print('vsock', opening(40), 'netlink', opening(16), 'unix', opening(socket.AF_UNIX), 'inet', opening(socket.AF_INET))
print('userns', failing(libc.unshare, 0x10000000), 'mount', failing(libc.mount, b'none', b'/tmp', b'tmpfs', 0, None))
print('ptrace', failing(libc.ptrace, 0, 0, 0, 0), 'memfd', memfd())
box = []
t = threading.Thread(target=lambda: box.append(6 * 7)); t.start(); t.join()
pid = os.fork()
if pid == 0:
    os._exit(7)
print('thread', box, 'fork', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print('subprocess', subprocess.run(['sh', '-c', 'echo $((6*7))'], capture_output=True, text=True).stdout.strip())
"#;
    for fork_server in [true, false] {
        let sandbox = Sandbox::new(SandboxConfig { fork_server, ..config() }).unwrap();
        let mut s = sandbox.session(&Registry::default()).await.unwrap();
        let e = s.run_code(code).await;
        assert_eq!(
            e.stdout,
            "filter ['2']\nvsock EAFNOSUPPORT netlink EAFNOSUPPORT unix ok inet ok\n\
             userns EPERM mount EPERM\nptrace EPERM memfd ENOSYS\nthread [42] fork 7\nsubprocess 42\n",
            "fork server {fork_server}: {e:?}"
        );
    }
}

/// A session's home and `/tmp` are size-capped and its own: filling them ends in ENOSPC, not a
/// full host disk, and a file one session leaves in `/tmp` is not there for the next.
#[tokio::test]
async fn disk_is_capped_per_session_and_private() {
    let fill = r#"import errno, os
def fill(dir):
    written = 0
    try:
        for i in range(8):
            with open(os.path.join(dir, 'f%d' % i), 'wb') as f:
                f.write(b'x' * (3 << 20))
            written += 3
    except OSError as e:
        return '%s after %d MiB' % (errno.errorcode[e.errno], written)
    return 'no limit'
home = os.environ['HOME']
print(os.getcwd() == home, fill(home), fill('/tmp'))
open('/tmp/left-behind', 'w').write('from an earlier session')
"#;
    let config = || SandboxConfig { file_size_bytes: 8 << 20, ..config() };
    for fork_server in [true, false] {
        let sandbox = Sandbox::new(SandboxConfig { fork_server, ..config() }).unwrap();
        let mut first = sandbox.session(&Registry::default()).await.unwrap();
        let e = first.run_code(fill).await;
        assert_eq!(
            e.stdout, "True ENOSPC after 6 MiB ENOSPC after 6 MiB\n",
            "fork server {fork_server}: {e:?}"
        );
        let mut second = sandbox.session(&Registry::default()).await.unwrap();
        let e = second
            .run_code("import os\nprint(os.path.exists('/tmp/left-behind'), os.listdir(os.environ['HOME']))")
            .await;
        // Also where the interpreter lives under /tmp (a checkout cloned there): forked sessions bind
        // it again into their own /tmp.
        assert_eq!(e.stdout, "False []\n", "fork server {fork_server}: {e:?}");
        first.close().await;
    }
}

/// As root, a session's processes share one memory limit: four children of 400 MiB each, every one
/// under the per-process address-space cap, cannot all live in a 1 GiB session.
#[tokio::test]
async fn memory_is_capped_per_session_not_per_process() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("not root: no memory cgroup can be made; the address-space cap is the bound");
        return;
    }
    let code = r#"import subprocess, sys
hog = "import time\nb = b'x' * (400 << 20)\ntime.sleep(3)"
children = [subprocess.Popen([sys.executable, '-c', hog]) for _ in range(4)]
print(sorted(child.wait() for child in children))
"#;
    for fork_server in [true, false] {
        let config = SandboxConfig {
            fork_server,
            memory_bytes: 1 << 30,
            timeout: Duration::from_secs(20),
            ..SandboxConfig::default()
        };
        let sandbox = Sandbox::new(config).unwrap();
        let mut s = sandbox.session(&Registry::default()).await.unwrap();
        let e = s.run_code(code).await;
        // The kernel kills the largest process of the group: a child, whose status is -9.
        assert!(e.stdout.contains("-9"), "fork server {fork_server}: {e:?}");
        let after = s.run_code("print('alive')").await;
        assert_eq!(after.stdout, "alive\n", "the session itself goes on: {after:?}");
    }
}
