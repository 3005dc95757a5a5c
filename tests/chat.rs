//! End-to-end tests of `agentopt chat`: the real binary, its stdin piped (one line per question),
//! against a scripted OpenAI-compatible server; every saved conversation must parse as a training
//! `ConversationRecord`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use agentopt::agent::{ConversationRecord, End};
use serde_json::{Value, json};
use support::{Server, call, text};

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// `agentopt chat` in `dir` against the server, with `stdin` as the human's lines.
fn chat(dir: &Path, server: &Server, args: &[&str], stdin: &str) -> Output {
    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir)
        .env_remove("OAI_CONFIG_LIST")
        .env_remove("OPENAI_API_KEY")
        .env("AGENTOPT_PYTHON", python())
        .timeout(Duration::from_secs(120))
        .arg("chat")
        .args(args)
        .args(["--no-cache", "--config"])
        .arg(&server.config)
        .write_stdin(stdin);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The saved record, parsed as the trainer's type.
fn record(path: &Path) -> ConversationRecord {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not a ConversationRecord: {e}\n{text}"))
}

/// The path after `saved:` in the human output.
fn saved(out: &Output) -> PathBuf {
    let text = stdout(out);
    let line = text.lines().find_map(|l| l.strip_prefix("saved:")).expect("no `saved:` line");
    PathBuf::from(line.trim())
}

fn is_math(body: &Value) -> bool {
    body["messages"][1]["content"].as_str().is_some_and(|s| s.contains("Problem:\n"))
}

fn last_text(body: &Value) -> String {
    support::last(body)["content"].as_str().unwrap_or("").to_string()
}

const CODE: &str = "Let me compute it.\n```python\nprint(6 * 7)\n```";

/// Proposes code first; boxes (math) or reports and TERMINATEs (general) whatever it is told next.
async fn server(dir: &Path) -> Server {
    Server::start(dir, Duration::ZERO, |body| {
        if support::messages(body).len() == 2 {
            return text(CODE);
        }
        let told = last_text(body);
        if is_math(body) {
            text(format!("So \\boxed{{{told}}}."))
        } else {
            text(format!("Result: {told}\nTERMINATE"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn always_feedback_reaches_the_assistant_instead_of_running() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let out = chat(dir.path(), &server, &["What is 6*7?", "--save", "c.json"], "FEEDBACK: use sympy\n\n");
    let bodies = server.bodies().await;
    assert_eq!(bodies.len(), 2);
    let last = support::last(&bodies[1]);
    assert_eq!(
        (last["role"].as_str(), last["content"].as_str()),
        (Some("user"), Some("FEEDBACK: use sympy"))
    );
    // General chat: AG2 AssistantAgent-style system prompt, the task verbatim.
    assert!(bodies[0]["messages"][0]["content"].as_str().unwrap().contains("TERMINATE"));
    assert_eq!(bodies[0]["messages"][1]["content"], "What is 6*7?");
    let r = record(&dir.path().join("c.json"));
    assert!(r.executions.is_empty(), "the code must not run: {:?}", r.executions);
    assert_eq!(r.end, End::Answered);
    let shown = stdout(&out);
    assert!(shown.contains("print(6 * 7)") && !shown.contains("ran:"), "{shown}");
    assert!(shown.contains("The assistant wants to end"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn always_empty_input_runs_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let out = chat(dir.path(), &server, &["What is 6*7?", "--save", "c.json"], "\n\n");
    let bodies = server.bodies().await;
    assert_eq!(bodies.len(), 2);
    assert_eq!(last_text(&bodies[1]), "42");
    let shown = stdout(&out);
    let code_at = shown.find("print(6 * 7)").unwrap();
    let ran_at = shown.find("ran: ok").unwrap();
    assert!(code_at < ran_at, "code is shown before it runs:\n{shown}");
    assert!(shown[ran_at..].contains("42") && shown.contains("Result: 42"), "{shown}");
    let r = record(&dir.path().join("c.json"));
    assert_eq!(r.executions.len(), 1);
    assert_eq!(r.executions[0].stdout.trim(), "42");
    assert_eq!((r.end, r.turns), (End::Answered, 2));
    assert!(r.usage.calls == 2 && r.usage.usd > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_ends_the_chat_and_saves_it_under_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let out = chat(dir.path(), &server, &["What is 6*7?", "--math"], "exit\n");
    assert_eq!(server.bodies().await.len(), 1);
    let path = saved(&out);
    assert!(path.starts_with("runs/chat") && path.extension().is_some_and(|e| e == "json"), "{path:?}");
    let r = record(&dir.path().join(&path));
    assert_eq!(r.end, End::Exited);
    assert!(r.executions.is_empty());
    assert_eq!(r.messages.len(), 3);
    assert!(stdout(&out).contains("ended by the human"));
}

#[tokio::test(flavor = "multi_thread")]
async fn terminate_mode_asks_only_when_the_assistant_ends() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let args = ["What is 6*7?", "--math", "--human-input", "terminate", "--save", "c.json"];
    // The first end is refused with feedback, the second accepted with an empty line.
    let out = chat(dir.path(), &server, &args, "Are you sure?\n\n");
    let shown = stdout(&out);
    assert!(!shown.contains("run the code above"), "no question before running:\n{shown}");
    assert_eq!(shown.matches("The assistant wants to end").count(), 2, "{shown}");
    let bodies = server.bodies().await;
    assert_eq!(bodies.len(), 3);
    assert_eq!(last_text(&bodies[1]), "42");
    assert_eq!(last_text(&bodies[2]), "Are you sure?");
    let r = record(&dir.path().join("c.json"));
    assert_eq!((r.end, r.executions.len()), (End::Answered, 1));
    assert_eq!(r.answer.as_deref(), Some("Are you sure?"));
}

#[tokio::test(flavor = "multi_thread")]
async fn never_runs_unattended_with_functions_and_grades() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::ZERO, |body| {
        let last = support::last(body);
        if last["role"] == "tool" {
            return text(format!("\\boxed{{{}}}", last["content"].as_str().unwrap().trim()));
        }
        assert_eq!(support::tools(body), ["add"]);
        call("add", json!({"a": 40, "b": 2}))
    })
    .await;
    let registry = json!({"functions": [{"name": "add", "description": "Adds two integers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
        "packages": [], "code": "def add(a, b):\n    return a + b\n"}]});
    std::fs::write(dir.path().join("reg.json"), registry.to_string()).unwrap();
    let args = ["What is 40+2?", "--human-input", "never", "--functions", "reg.json"];
    let out = chat(dir.path(), &server, &[&args[..], &["--answer", "42", "--save", "c.json"]].concat(), "");
    let shown = stdout(&out);
    assert!(shown.contains("→ call add(") && shown.contains("ran: ok"), "{shown}");
    assert!(shown.contains("verdict: correct"), "{shown}");
    let r = record(&dir.path().join("c.json"));
    assert!(r.is_correct() && r.end == End::Answered && r.reference == "42");
    assert_eq!(r.functions, ["add"]);
    assert!(r.executions[0].code.starts_with("add("));

    // A wrong reference is reported, and --json prints the record (with where it was saved) alone.
    let args = ["What is 40+2?", "--human-input", "never", "--functions", "reg.json", "--answer", "41"];
    let out = chat(dir.path(), &server, &[&args[..], &["--json"]].concat(), "");
    let value: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(value["correct"], false);
    let saved = dir.path().join(value["saved"].as_str().unwrap());
    assert_eq!(serde_json::to_value(record(&saved)).unwrap()["answer"], "42");
}

/// The first Ctrl-C while the chat waits for the human ends it, and the conversation is still saved.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_ends_the_chat_and_saves_it() {
    use std::io::Read;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentopt"))
        .current_dir(dir.path())
        .env_remove("OAI_CONFIG_LIST")
        .env("AGENTOPT_PYTHON", python())
        .args(["chat", "What is 6*7?", "--save", "c.json", "--no-cache", "--config"])
        .arg(&server.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first question's prompt, keeping stdin open so only the signal can end the wait.
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\n> ") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "no question before the end of output: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    stdout.read_to_end(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {}", String::from_utf8_lossy(&seen));
    let r = record(&dir.path().join("c.json"));
    assert_eq!((r.end, r.executions.len()), (End::Exited, 0));
    assert!(String::from_utf8_lossy(&seen).contains("saved:"));
}

/// `agentopt chat ARGS --save c.json` through a pseudo-terminal (util-linux `script`), where the
/// program sees a terminal on stdin, answered with `stdin`; `None` (the test skips) without `script`.
async fn chat_in_a_terminal(dir: &Path, server: &Server, args: &str, stdin: &str) -> Option<Output> {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` command");
        return None;
    }
    let command = format!(
        "'{}' chat {args} --save c.json --no-cache --config '{}'",
        env!("CARGO_BIN_EXE_agentopt"),
        server.config.display()
    );
    let mut cmd = assert_cmd::Command::new("script");
    cmd.current_dir(dir)
        .env_remove("OAI_CONFIG_LIST")
        .env("AGENTOPT_PYTHON", python())
        .args(["-qec", &command, "/dev/null"])
        .timeout(Duration::from_secs(120))
        .write_stdin(stdin.to_string());
    let out = support::output_off_runtime(cmd).await;
    assert!(out.status.success(), "{out:?}");
    Some(out)
}

/// Through a pseudo-terminal, where the program sees a terminal on stdin.
#[tokio::test(flavor = "multi_thread")]
async fn works_through_a_pseudo_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let Some(out) = chat_in_a_terminal(dir.path(), &server, "'What is 6*7?'", "FEEDBACK: check it\n\n").await
    else {
        return;
    };
    // The terminal echoes the human's lines; the program must not echo them a second time.
    // (In the transcript: the summary after it repeats the answer, which quotes the feedback.)
    let text = stdout(&out);
    let transcript = text.split("── end:").next().unwrap();
    assert_eq!(transcript.matches("FEEDBACK: check it").count(), 2, "{text}");
    let bodies = server.bodies().await;
    assert_eq!(last_text(&bodies[1]), "FEEDBACK: check it");
    let r = record(&dir.path().join("c.json"));
    assert_eq!((r.end, r.executions.len()), (End::Answered, 0));
}

/// NEVER stops at --max-turns; a failed model call ends the chat as errored (exit 1), still saved.
#[tokio::test(flavor = "multi_thread")]
async fn turn_limit_and_model_failure_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Duration::ZERO, |body| {
        if support::problem(body).contains("BROKEN") || last_text(body).contains("BROKEN") {
            return support::Reply::Status(400, r#"{"error": {"message": "bad request"}}"#.into());
        }
        text(format!("```python\nprint({})\n```", support::messages(body).len()))
    })
    .await;
    let args = ["What is 6*7?", "--math", "--human-input", "never", "--max-turns", "3", "--save", "c.json"];
    chat(dir.path(), &server, &args, "");
    let r = record(&dir.path().join("c.json"));
    assert_eq!((r.end, r.turns, r.executions.len()), (End::MaxTurns, 3, 3));

    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    let out = cmd
        .current_dir(dir.path())
        .env_remove("OAI_CONFIG_LIST")
        .env("AGENTOPT_PYTHON", python())
        .args(["chat", "BROKEN", "--save", "e.json", "--no-cache", "--config"])
        .arg(&server.config)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let r = record(&dir.path().join("e.json"));
    assert_eq!(r.end, End::Errored);
    assert!(r.errored().is_some() && stdout(&out).contains("error:"));
}

/// ```sh and ```bash blocks run in the same sandbox as Python: private files stay hidden, output and
/// a failing exit status reach the assistant, and the record keeps the shell source.
#[tokio::test(flavor = "multi_thread")]
async fn shell_blocks_run_sandboxed_like_python() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("OAI_CONFIG_LIST.json");
    let script = format!(
        "```sh\necho $((6*7)) in $HOME\ncat '{}' || echo config-hidden\n```\n```bash\necho \"${{BASH_VERSION:+bash}}\"; exit 3\n```",
        config.display()
    );
    let server = Server::start(dir.path(), Duration::ZERO, move |body| {
        if support::messages(body).len() == 2 {
            return text(script.clone());
        }
        text(format!("Result: {}\nTERMINATE", last_text(body)))
    })
    .await;
    chat(dir.path(), &server, &["List it.", "--human-input", "never", "--save", "c.json"], "");
    let bodies = server.bodies().await;
    assert!(bodies[0]["messages"][0]["content"].as_str().unwrap().contains("```sh block"));
    let told = last_text(&bodies[1]);
    assert!(told.contains("42 in /home/sandbox") && told.contains("config-hidden"), "{told}");
    assert!(!told.contains(support::SECRET), "{told}");
    assert!(told.contains("bash") && told.contains("exit status 3"), "{told}");
    let r = record(&dir.path().join("c.json"));
    let shells: Vec<Option<&str>> = r.executions.iter().map(|e| e.shell.as_deref()).collect();
    assert_eq!(shells, [Some("sh"), Some("bash")]);
    assert!(r.executions[0].code.starts_with("echo $((6*7))"));
    assert_eq!(r.executions[1].status, agentopt::exec::ExecStatus::Error);
}

/// The opening of a conversation: the task it was given.
fn opening(body: &Value) -> String {
    body["messages"][1]["content"].as_str().unwrap_or("").to_string()
}

/// TOP hands MID on, MID hands LEAF on (whatever it is offered), LEAF answers; each reports the
/// result it got back.
async fn delegating_server(dir: &Path) -> Server {
    Server::start(dir, Duration::ZERO, |body| {
        let last = support::last(body);
        if last["role"] == "tool" {
            return text(format!("Result: {}\nTERMINATE", last["content"].as_str().unwrap_or("")));
        }
        match opening(body).as_str() {
            "TOP" => call("call", json!({"task": "MID"})),
            "MID" => call("call", json!({"task": "LEAF"})),
            _ => text("leaf done\nTERMINATE"),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn delegation_nests_records_sums_usage_and_stops_at_the_depth_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = delegating_server(dir.path()).await;
    let out =
        chat(dir.path(), &server, &["TOP", "--delegate", "--human-input", "never", "--save", "c.json"], "");
    let bodies = server.bodies().await;
    let offered = |task: &str| {
        bodies.iter().filter(|b| opening(b) == task).all(|b| support::tools(b).contains(&"call".to_string()))
    };
    assert!(offered("TOP") && offered("MID"), "depth 0 and 1 may delegate");
    assert!(
        bodies.iter().filter(|b| opening(b) == "LEAF").all(|b| support::tools(b).is_empty()),
        "depth 2 may not"
    );
    let r = record(&dir.path().join("c.json"));
    assert_eq!((r.end, r.answer.as_deref()), (End::Answered, Some("Result: Result: leaf done")));
    let mid = &r.delegated[0];
    assert_eq!((mid.task.as_str(), mid.depth, mid.result.as_str()), ("MID", 1, "Result: leaf done"));
    let leaf = &mid.record.delegated[0];
    assert_eq!((leaf.task.as_str(), leaf.depth, leaf.result.as_str()), ("LEAF", 2, "leaf done"));
    assert!(leaf.record.delegated.is_empty());
    // Usage adds up the tree: TOP 2 calls, MID 2, LEAF 1.
    assert_eq!((r.usage.calls, mid.record.usage.calls, leaf.record.usage.calls), (5, 3, 1));
    assert!(r.executions[0].code.starts_with("call(") && r.executions[0].stdout == "Result: leaf done");
    let shown = stdout(&out);
    assert!(shown.contains("┌─ delegated (depth 1) ─\nMID"), "{shown}");
    assert!(shown.contains("│   │   leaf done"), "depth 2 is indented twice:\n{shown}");
    assert!(shown.contains("delegated: 2 task(s), nested 2 deep"), "{shown}");

    // One level only: MID's call is refused, and it is told why.
    let out = chat(
        dir.path(),
        &server,
        &["TOP", "--delegate", "--max-depth", "1", "--human-input", "never", "--save", "d.json"],
        "",
    );
    let r = record(&dir.path().join("d.json"));
    let mid = &r.delegated[0];
    assert!(mid.record.delegated.is_empty());
    assert!(mid.result.contains("no further delegation: the depth limit (--max-depth 1)"), "{}", mid.result);
    assert!(stdout(&out).contains("delegated: 1 task(s), nested 1 deep"));
}

#[tokio::test(flavor = "multi_thread")]
async fn delegated_turns_count_against_max_turns_and_the_budget_ends_a_chat_saved() {
    let dir = tempfile::tempdir().unwrap();
    let server = delegating_server(dir.path()).await;
    let args = ["TOP", "--delegate", "--human-input", "never", "--max-turns", "3", "--save", "c.json"];
    chat(dir.path(), &server, &args, "");
    let r = record(&dir.path().join("c.json"));
    // TOP, MID and LEAF took one turn each: LEAF answered, MID and TOP had none left.
    assert_eq!(
        (r.turns, r.delegated[0].record.turns, r.delegated[0].record.delegated[0].record.turns),
        (1, 1, 1)
    );
    assert_eq!(r.end, End::MaxTurns);
    assert_eq!(
        r.delegated[0].result,
        "the delegated conversation ran out of turns (--max-turns) without an answer"
    );

    // Each call costs 100 * 0.001/1000 + 20 * 0.002/1000 = $0.00014: a $0.0003 budget allows two.
    let mut cmd = assert_cmd::Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir.path())
        .env_remove("OAI_CONFIG_LIST")
        .env("AGENTOPT_PYTHON", python())
        .args([
            "chat",
            "TOP",
            "--delegate",
            "--human-input",
            "never",
            "--max-usd",
            "0.0003",
            "--save",
            "b.json",
        ])
        .args(["--no-cache", "--config"])
        .arg(&server.config)
        .timeout(Duration::from_secs(120));
    let out = support::output_off_runtime(cmd).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let r = record(&dir.path().join("b.json"));
    assert_eq!(r.end, End::Errored);
    assert!(r.errored().unwrap().contains("budget"), "{:?}", r.errored());
    assert!(r.usage.usd <= 0.0003 && r.usage.calls == 2, "{:?}", r.usage);
}

/// With --human-input always, handing a task on is confirmed like running code, through a terminal.
#[tokio::test(flavor = "multi_thread")]
async fn delegation_asks_for_confirmation_in_a_pseudo_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = delegating_server(dir.path()).await;
    // The call, MID's refused call, MID's end, TOP's end: four questions, four Enters.
    let Some(out) = chat_in_a_terminal(dir.path(), &server, "TOP --delegate --max-depth 1", "\n\n\n\n").await
    else {
        return;
    };
    let shown = stdout(&out);
    assert_eq!(shown.matches("[Enter] hand the task to a fresh assistant").count(), 2, "{shown}");
    assert!(shown.contains("│   The assistant wants to end"), "MID's question is indented:\n{shown}");
    let r = record(&dir.path().join("c.json"));
    assert_eq!((r.end, r.delegated.len()), (End::Answered, 1));
}

/// `--stream` prints each reply as it arrives, and the transcript and record come out as without it.
#[tokio::test(flavor = "multi_thread")]
async fn streamed_output_equals_the_whole_reply() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let args = ["What is 6*7?", "--human-input", "never", "--save"];
    let whole = chat(dir.path(), &server, &[&args[..], &["a.json"]].concat(), "");
    let streamed = chat(dir.path(), &server, &[&args[..], &["b.json", "--stream"]].concat(), "");
    // Everything before `saved:`, with the run times (which differ between runs) left out.
    let transcript = |out: &Output| {
        let text = stdout(out).split("saved:").next().unwrap().to_string();
        text.lines()
            .map(|l| if l.starts_with("── ran:") { "── ran ──" } else { l })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(transcript(&streamed), transcript(&whole));
    assert!(
        transcript(&whole).contains("── assistant ──\nLet me compute it.\n```python\nprint(6 * 7)\n```\n")
    );
    let bodies = server.bodies().await;
    assert!(bodies[..2].iter().all(|b| b.get("stream").is_none()));
    assert!(bodies[2..].iter().all(|b| b["stream"] == true && b["stream_options"]["include_usage"] == true));
    let (a, b) = (record(&dir.path().join("a.json")), record(&dir.path().join("b.json")));
    assert_eq!(
        (a.messages, a.usage.calls, a.usage.input_tokens),
        (b.messages, b.usage.calls, b.usage.input_tokens)
    );
}

/// `exit` inside a delegated conversation ends the whole chat at once: no level above makes
/// another model call, and everything so far is saved.
#[tokio::test(flavor = "multi_thread")]
async fn exit_in_a_delegate_ends_every_level() {
    let dir = tempfile::tempdir().unwrap();
    let server = delegating_server(dir.path()).await;
    let out = chat(dir.path(), &server, &["TOP", "--delegate", "--save", "c.json"], "\nexit\n");
    assert_eq!(server.bodies().await.len(), 2, "TOP's call and MID's reply only");
    let r = record(&dir.path().join("c.json"));
    assert_eq!((r.end, r.delegated[0].record.end), (End::Exited, End::Exited));
    assert!(stdout(&out).contains("└─ back from depth 1: the delegated conversation was ended by the human"));
}
