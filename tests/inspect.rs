//! End-to-end tests of `agentopt functions` and `agentopt runs` on the fixture registries and run
//! directories of `support::fixtures` (written by the product's own record types).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use serde_json::Value;

fn fixtures() -> PathBuf {
    support::fixtures::dir().to_path_buf()
}

/// The binary, run from the fixtures folder (so `runs/` and `registries/` resolve there).
fn agentopt() -> Command {
    let mut cmd = Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(fixtures()).env("NO_COLOR", "1");
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

fn json_of(cmd: &mut Command) -> Value {
    serde_json::from_str(&stdout_of(cmd)).expect("stdout is one JSON document")
}

/// Runs a command expected to fail on bad input; returns its stderr.
fn bad_input(args: &[&str]) -> String {
    let out = agentopt().args(args).assert().code(2).get_output().stderr.clone();
    String::from_utf8(out).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn python() -> String {
    std::env::var("AGENTOPT_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn functions_list_resolves_every_kind_of_reference() {
    let text = stdout_of(agentopt().args(["functions", "list", "registries/a.json"]));
    assert!(text.contains("quadratic_roots(a: number, b: number, c: number)"), "{text}");
    assert!(text.contains("Number of positive divisors of n."), "{text}");

    let best = json_of(agentopt().args(["functions", "list", "demo", "--json"]));
    let names: Vec<&str> =
        best["functions"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["quadratic_roots", "count_divisors", "gcd_list"]);
    assert_eq!(best["functions"][2]["signature"], "gcd_list(numbers: array[integer], verbose?: boolean)");
    assert!(best["registry"].as_str().unwrap().ends_with("runs/demo/best/registry.json"));

    for (reference, file) in [("demo@1", "epochs/001"), ("demo@001", "epochs/001"), ("demo@best", "best")] {
        let v = json_of(agentopt().args(["functions", "list", reference, "--json"]));
        assert!(
            v["registry"].as_str().unwrap().ends_with(&format!("{file}/registry.json")),
            "{reference}: {v}"
        );
    }
    let run_path = fixtures().join("runs").join("demo");
    let v = json_of(agentopt().args(["functions", "list", &format!("{}@0", run_path.display()), "--json"]));
    assert_eq!(v["functions"].as_array().unwrap().len(), 2);

    // functions/NAME and a bare NAME, from a project folder with exported registries.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("functions")).unwrap();
    std::fs::copy(fixtures().join("registries/b.json"), tmp.path().join("functions/learned.json")).unwrap();
    for reference in ["functions/learned", "learned"] {
        let v = json_of(agentopt().current_dir(tmp.path()).args(["functions", "list", reference, "--json"]));
        assert_eq!(v["functions"][1]["name"], "gcd_list", "{reference}");
    }
}

#[test]
fn functions_show_prints_code_and_details() {
    let text = stdout_of(agentopt().args(["functions", "show", "registries/b.json", "gcd_list"]));
    assert!(!text.contains('\x1b'), "no colours when stdout is not a terminal");
    assert!(text.contains("def gcd_list(numbers):\n    \"\"\"gcd of all numbers."), "{text}");
    assert!(text.contains("Packages: functools"), "{text}");
    assert!(text.contains("numbers (array, required)"), "{text}");
    let v = json_of(agentopt().args(["functions", "show", "registries/b.json", "gcd_list", "--json"]));
    assert_eq!(v["function"]["packages"][0], "functools");
    assert!(v["function"]["code"].as_str().unwrap().contains("reduce(gcd"));
}

#[test]
fn functions_show_colours_only_a_terminal_without_no_color() {
    // util-linux `script` gives the command a pseudo-terminal as stdout.
    let bin = assert_cmd::cargo::cargo_bin("agentopt");
    let command = format!("{} functions show registries/a.json count_divisors", bin.display());
    let on_tty = |no_color: bool| {
        let mut cmd = StdCommand::new("script");
        cmd.args(["-qec", &command, "/dev/null"]).current_dir(fixtures()).env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        cmd.output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let Some(coloured) = on_tty(false) else {
        eprintln!("SKIP: util-linux `script` is not available to provide a terminal");
        return;
    };
    assert!(coloured.contains("\x1b[1;34mcount_divisors\x1b[0m"), "{coloured:?}");
    assert!(coloured.contains("\x1b[2;37m# Trial division up to sqrt(n).\x1b[0m"), "{coloured:?}");
    let plain = on_tty(true).unwrap();
    assert!(!plain.contains('\x1b') && plain.contains("def count_divisors(n):"), "{plain:?}");
}

#[test]
fn functions_diff_reports_added_removed_revised() {
    let text = stdout_of(agentopt().args(["functions", "diff", "registries/a.json", "registries/b.json"]));
    assert!(text.contains("added    gcd_list("), "{text}");
    assert!(text.contains("removed  count_divisors("), "{text}");
    assert!(text.contains("revised  quadratic_roots (code, description)"), "{text}");
    assert!(text.contains("\n-import math\n+import cmath\n"), "{text}");

    let v = json_of(agentopt().args(["functions", "diff", "demo@0", "demo@2", "--json"]));
    assert_eq!(v["diff"]["added"][0]["name"], "gcd_list");
    assert_eq!(v["diff"]["removed"].as_array().unwrap().len(), 0);
    assert_eq!(v["diff"]["unchanged"], serde_json::json!(["quadratic_roots", "count_divisors"]));

    let same = stdout_of(agentopt().args(["functions", "diff", "demo@0", "registries/a.json"]));
    assert!(same.contains("no changes (2 functions identical)"), "{same}");
}

#[test]
fn export_json_and_autogen() {
    let v = json_of(agentopt().args(["functions", "export", "registries/b.json", "--format", "json"]));
    let original: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("registries/b.json")).unwrap())
            .unwrap();
    assert_eq!(v, original);

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ag2.json");
    let msg =
        stdout_of(agentopt().args(["functions", "export", "demo", "--format", "autogen", "--out"]).arg(&out));
    assert!(msg.contains("wrote 3 function(s)"), "{msg}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["register_for_llm"][0]["func_sig"]["name"], "quadratic_roots");
    assert_eq!(v["register_for_llm"][0]["is_remove"], false);
    assert_eq!(v["tools"][2]["type"], "function");
    assert_eq!(v["tools"][2]["function"]["parameters"]["required"][0], "numbers");
    assert_eq!(v["functions"][2]["packages"], "functools");
    assert_eq!(v["functions"][2]["arguments"]["numbers"]["type"], "array");
    assert!(v["functions"][1]["code"].as_str().unwrap().starts_with("def count_divisors"));
}

#[test]
fn export_python_imports_and_runs_each_functions_own_code() {
    let tmp = tempfile::tempdir().unwrap();
    let module = tmp.path().join("learned.py");
    agentopt()
        .args(["functions", "export", "demo", "--format", "python", "-o"])
        .arg(&module)
        .assert()
        .success();
    // quadratic_roots and gcd_list both define `_helper`: each must keep its own.
    let script = "import json, learned\n\
                  print(json.dumps({'roots': learned.quadratic_roots(1, -3, 2), 'gcd': learned.gcd_list([84, -126]),\n\
                  'div': learned.count_divisors(36), 'all': learned.__all__,\n\
                  'req': learned.SCHEMAS['gcd_list']['required'], 'pk': learned.PACKAGES['gcd_list']}))";
    let out = match StdCommand::new(python()).arg("-c").arg(script).current_dir(tmp.path()).output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIP: no Python interpreter to import the export with ({e})");
            return;
        }
    };
    assert!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["roots"], serde_json::json!([1.0, 2.0]));
    assert_eq!(v["gcd"], 42);
    assert_eq!(v["div"], 9);
    assert_eq!(v["all"], serde_json::json!(["quadratic_roots", "count_divisors", "gcd_list"]));
    assert_eq!(v["req"], serde_json::json!(["numbers"]));
    assert_eq!(v["pk"], serde_json::json!(["functools"]));
}

#[test]
fn export_python_keeps_awkward_sources_intact() {
    // Sources that cannot sit in a raw triple-quoted string: ''' inside, backslashes, CRLF endings.
    let tmp = tempfile::tempdir().unwrap();
    let code = "def tricky(s):\r\n    '''Doc with ''' + '''\\n'''\r\n    return s + '\\\\'\r\n";
    let registry = serde_json::json!({"functions": [{"name": "tricky", "description": "x",
        "parameters": {"type": "object", "properties": {"s": {"type": "string"}}, "required": ["s"]},
        "packages": [], "code": code}]});
    let file = tmp.path().join("tricky.json");
    std::fs::write(&file, registry.to_string()).unwrap();
    let module = tmp.path().join("tricky_mod.py");
    agentopt()
        .args(["functions", "export", "--format", "python", "--out"])
        .arg(&module)
        .arg(&file)
        .assert()
        .success();
    let out = match StdCommand::new(python())
        .args(["-c", "import tricky_mod; print(tricky_mod.tricky('a'))"])
        .current_dir(tmp.path())
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIP: no Python interpreter ({e})");
            return;
        }
    };
    assert!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\\\n");
}

#[test]
fn runs_list_and_show() {
    let text = stdout_of(agentopt().args(["runs", "list"]));
    assert!(text.contains("demo     completed       3  0.750  0.400 -> 0.667   $0.0421"), "{text}");
    assert!(text.contains("partial  killed          2  0.500  -"), "{text}");
    let v = json_of(agentopt().args(["runs", "list", "--json"]));
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    assert_eq!(v["runs"][0]["best_epoch"], 2);
    assert_eq!(v["runs"][0]["eval"]["after"]["correct"], 4);

    let text = stdout_of(agentopt().args(["runs", "show", "demo"]));
    assert!(text.contains("3 epoch(s), best epoch 2, stopped: last_epoch"), "{text}");
    // Epoch 1's cost: its conversations plus the optimizer step that built its registry.
    assert!(
        text.contains(
            "001    0.250  1/4, 1 errored  0.05–0.70  rollback        2         1  $0.0090  quadratic_roots\n"
        ),
        "{text}"
    );
    assert!(text.contains("002*   0.750  3/4             0.30–0.95  accept"), "{text}");
    assert!(text.contains("eval before: 2/5 correct (0.400), 1 errored"), "{text}");
    let v = json_of(agentopt().args(["runs", "show", "demo", "--json"]));
    assert_eq!(v["epochs"][1]["decision"], "rollback");
    assert_eq!(v["epochs"][1]["actions_applied"], 2);
    assert_eq!(v["epochs"][1]["actions"][2]["function"], "foo");
    assert_eq!(v["epochs"][1]["actions"][2]["outcome"], "rejected");
    assert_eq!(v["epochs"][2]["actions"][0]["action"], "add_function");
    assert_eq!(v["usage"]["usd"], 0.0421);

    // A run killed mid-way: no summary, a torn last event line; still shown.
    let v = json_of(agentopt().args(["runs", "show", "partial", "--json"]));
    // run.json says running, but nothing holds its lock.
    assert_eq!(v["status"], "killed");
    assert_eq!(v["epochs"][0]["score"], 0.5);
    // Epoch 1 was under way: scored so far, not decided, and shown as cut short.
    assert_eq!(v["epochs"][1]["decision"], Value::Null);
    assert_eq!(v["epochs"][1]["partial"], true);
    assert_eq!(v["epochs"][1]["actions_applied"], 1);
    assert_eq!(v["warnings"], serde_json::json!([]));
}

fn write_report(tmp: &Path) -> (PathBuf, String) {
    let out = tmp.join("report.html");
    agentopt().args(["runs", "report", "demo", "--out"]).arg(&out).assert().success();
    let html = std::fs::read_to_string(&out).unwrap();
    (out, html)
}

#[test]
fn report_is_self_contained_and_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, html) = write_report(tmp.path());
    for needle in [
        "<svg class=\"score-plot\"",
        "<svg class=\"rate-bars\"",
        "class=\"pt-rollback\"",
        "epoch 1: 0.250 (rolled back)",
        "Number Theory",
        "95% CI",
        // Against the best registry so far (epoch 1 was rolled back): against epoch 1 it read 2.
        "Epoch 002 vs best epoch 000: <span class=\"fixed\">1 fixed</span>, <span class=\"broke\">0 broken</span>",
        "<span class=\"del\">-import math</span>",
        "$0.0421",
        "<span class=\"broke\">rejected</span> add_function <code>foo</code> — code does not define `foo` &lt;img",
    ] {
        assert!(html.contains(needle), "report lacks {needle:?}");
    }
    // LLM-written text is escaped: the fixtures carry <script> in a problem and in a docstring.
    assert!(!html.to_lowercase().contains("<script"), "unescaped script tag");
    assert!(html.contains("Not &lt;/pre&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; markup."));
    // Nothing is fetched: no external references besides the SVG namespace.
    let stripped = html.replace("http://www.w3.org/2000/svg", "");
    for bad in ["http://", "https://", "src=\"", "href=\"", "<link", "<img", "<iframe", "@import", "url("] {
        assert!(!stripped.contains(bad), "report references {bad:?}");
    }

    // The default output path is inside the run.
    let runs = tmp.path().join("runs");
    copy_dir(&fixtures().join("runs/demo"), &runs.join("demo"));
    let v = json_of(agentopt().args(["runs", "report", "demo", "--json", "--runs-dir"]).arg(&runs));
    assert!(v["report"].as_str().unwrap().ends_with("demo/report.html"));
    assert!(runs.join("demo/report.html").is_file());
}

#[test]
fn report_renders_in_headless_chromium() {
    let setup = StdCommand::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-test-tools.sh"))
        .output();
    let browser = match setup {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        other => {
            eprintln!(
                "SKIP: chromium is absent and could not be installed by scripts/setup-test-tools.sh: {other:?}"
            );
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let (report, _) = write_report(tmp.path());
    let url = format!("file://{}", report.display());
    let run = |extra: &[&str]| {
        let profile = tempfile::tempdir().unwrap();
        let out = StdCommand::new("timeout")
            .arg("120")
            .arg(&browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = run(&["--dump-dom"]);
    assert!(dom.contains("<svg class=\"score-plot\""), "rendered DOM lacks the score plot");
    assert!(dom.contains("<svg class=\"rate-bars\""), "rendered DOM lacks the bars");
    assert!(dom.contains("Function changes per epoch"));

    let png = tmp.path().join("report.png");
    run(&[&format!("--screenshot={}", png.display()), "--window-size=1000,1600"]);
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // A blank page compresses to a few kilobytes; charts, tables and text take far more.
    assert!(bytes.len() > 30_000, "screenshot looks blank ({} bytes)", bytes.len());
}

#[test]
fn bad_references_exit_2_with_what_was_looked_for() {
    let e = bad_input(&["functions", "list", "nope"]);
    assert!(e.contains("No registry `nope`") && e.contains("functions/nope.json"), "{e}");
    let e = bad_input(&["functions", "list", "demo@x"]);
    assert!(e.contains("Bad epoch `x`"), "{e}");
    let e = bad_input(&["functions", "list", "demo@7"]);
    assert!(e.contains("epochs/007/registry.json") && e.contains("000, 001, 002"), "{e}");
    let e = bad_input(&["functions", "show", "demo", "nope"]);
    assert!(e.contains("No function `nope`") && e.contains("gcd_list"), "{e}");
    let e = bad_input(&["functions", "diff", "registries/a.json", "ghost@best"]);
    assert!(e.contains("No run `ghost`"), "{e}");
    let e = bad_input(&["runs", "show", "ghost"]);
    assert!(e.contains("No run `ghost`"), "{e}");
    let e = bad_input(&["runs", "report", "ghost"]);
    assert!(e.contains("No run `ghost`"), "{e}");

    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.json");
    std::fs::write(&broken, "{\"functions\": [\n  {\"name\": 1}\n]}").unwrap();
    let e = bad_input(&["functions", "list", broken.to_str().unwrap()]);
    assert!(e.contains("broken.json") && e.contains("line 2"), "{e}");
}
