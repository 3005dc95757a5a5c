//! Round trips of the real binary between agentopt's registry and AG2's shapes: an
//! `export --format autogen` file and an AG2 AgentOptimizer function list are read by `functions list`,
//! `functions import` and `eval --functions`; a file in no accepted format is bad input (exit 2) naming
//! the file, and an entry at fault is named by index and field.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::{Value, json};
use support::{Server, text};

fn agentopt(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("agentopt").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").env_remove("OAI_CONFIG_LIST");
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

fn stderr_of_bad_input(cmd: &mut Command) -> String {
    String::from_utf8(cmd.assert().code(2).get_output().stderr.clone()).unwrap()
}

fn fixture_registry() -> PathBuf {
    support::fixtures::dir().join("registries/a.json")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// What a user of AG2's notebook holds after `json.dump(optimizer._best_functions, f)`: records as
/// `AgentOptimizer._update_function_call` stores them, in the spellings the optimizer model sends
/// (arguments as a dict or as a JSON string, packages as a string or a list).
fn ag2_list() -> Value {
    json!([
        {"name": "evaluate_expression",
         "description": "Evaluate arithmetic or mathematical expressions provided as strings.",
         "arguments": {"expression": {"type": "string", "description": "The mathematical expression to evaluate."}},
         "packages": "sympy",
         "code": "from sympy import sympify\n\ndef evaluate_expression(expression):\n    return str(sympify(expression))\n"},
        {"name": "solve_linear",
         "description": "Solve a*x + b = 0 for x.",
         "arguments": "{\"a\": {\"type\": \"number\"}, \"b\": {\"type\": \"number\"}}",
         "packages": ["sympy", "numpy"],
         "code": "def solve_linear(a, b):\n    return -b / a\n"}
    ])
}

#[test]
fn an_autogen_export_lists_and_imports_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("autogen.json");
    agentopt(dir.path())
        .args(["functions", "export"])
        .arg(fixture_registry())
        .args(["--format", "autogen", "--out"])
        .arg(&exported)
        .assert()
        .success();

    let listed = stdout_of(agentopt(dir.path()).args(["functions", "list", "autogen.json"]));
    assert!(listed.contains("quadratic_roots(a: number, b: number, c: number)"), "{listed}");
    assert!(listed.contains("Number of positive divisors of n."), "{listed}");

    let shown =
        stdout_of(agentopt(dir.path()).args(["functions", "show", "autogen.json", "quadratic_roots"]));
    assert!(shown.contains("a (number, required) x**2 coefficient"), "{shown}");

    let imported = dir.path().join("back.json");
    agentopt(dir.path())
        .args(["functions", "import", "autogen.json", "--out"])
        .arg(&imported)
        .assert()
        .success();
    assert_eq!(read_json(&imported), read_json(&fixture_registry()), "the round trip loses nothing");
}

#[test]
fn an_ag2_function_list_lists_and_imports_into_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ag2.json"), ag2_list().to_string()).unwrap();

    let listed = stdout_of(agentopt(dir.path()).args(["functions", "list", "ag2.json"]));
    assert!(listed.contains("evaluate_expression(expression: string)"), "{listed}");
    assert!(listed.contains("solve_linear(a: number, b: number)"), "{listed}");

    let said = stdout_of(agentopt(dir.path()).args(["functions", "import", "ag2.json", "--out", "reg.json"]));
    assert!(said.contains("2 function(s)") && said.contains("AG2 AgentOptimizer function list"), "{said}");
    let registry = read_json(&dir.path().join("reg.json"));
    let second = &registry["functions"][1];
    assert_eq!(second["packages"], json!(["sympy", "numpy"]));
    assert_eq!(second["parameters"]["type"], "object");
    assert_eq!(second["parameters"]["required"], json!(["a", "b"]));
    assert_eq!(registry["functions"][0]["packages"], json!(["sympy"]));

    // The written file is agentopt's own format, read as such.
    let json_list: Value = serde_json::from_str(&stdout_of(agentopt(dir.path()).args([
        "functions",
        "list",
        "reg.json",
        "--json",
    ])))
    .unwrap();
    let names: Vec<&str> =
        json_list["functions"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["evaluate_expression", "solve_linear"]);
    let machine = stdout_of(agentopt(dir.path()).args([
        "functions",
        "import",
        "ag2.json",
        "--out",
        "reg2.json",
        "--json",
    ]));
    let machine: Value = serde_json::from_str(&machine).unwrap();
    assert_eq!(machine["format"], "ag2_function_list");
    assert_eq!(read_json(&dir.path().join("reg2.json")), registry);
}

#[tokio::test(flavor = "multi_thread")]
async fn eval_offers_the_functions_of_an_ag2_list() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ag2.json"), ag2_list().to_string()).unwrap();
    support::dataset(&dir.path().join("test.jsonl"), &[("p1", "What is 6*7?", "42")]);
    let server = Server::start(dir.path(), Duration::ZERO, |_| text("\\boxed{42}")).await;
    let mut cmd = agentopt(dir.path());
    cmd.args(["eval", "--no-cache", "--test", "test.jsonl", "--functions", "ag2.json", "--config"])
        .arg(&server.config);
    let out = support::output_off_runtime(cmd).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bodies = server.bodies().await;
    assert!(!bodies.is_empty());
    assert_eq!(support::tools(&bodies[0]), ["evaluate_expression", "solve_linear"]);
}

#[test]
fn a_file_in_no_accepted_format_is_bad_input_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("garbage.json"), r#"{"weights": [1, 2, 3]}"#).unwrap();
    for sub in ["list", "import"] {
        let e = stderr_of_bad_input(agentopt(dir.path()).args(["functions", sub, "garbage.json"]));
        assert!(e.contains("garbage.json") && e.contains("without `functions` (keys: weights)"), "{e}");
        assert!(e.contains("AG2 AgentOptimizer's function list"), "it says what would be read: {e}");
    }
    assert!(!dir.path().join("reg.json").exists());

    // A list whose second record lacks its code: the file, the entry and the field are named.
    let mut list = ag2_list();
    list[1].as_object_mut().unwrap().remove("code");
    std::fs::write(dir.path().join("partial.json"), list.to_string()).unwrap();
    let e = stderr_of_bad_input(agentopt(dir.path()).args([
        "functions",
        "import",
        "partial.json",
        "--out",
        "reg.json",
    ]));
    assert!(e.contains("partial.json` (read as AG2 AgentOptimizer function list)"), "{e}");
    assert!(e.contains("function #1 (`solve_linear`): missing field `code`"), "{e}");
    assert!(!dir.path().join("reg.json").exists(), "nothing is written from a bad file");
}
