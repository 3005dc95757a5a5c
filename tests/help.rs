//! The real binary's `--help`, for the top level and every subcommand found by walking the help
//! itself: every argument, option and subcommand line carries a description, defaults are shown, and
//! `chat` (one conversation) offers no `--concurrency`.

use assert_cmd::Command;

fn help(path: &[&str]) -> String {
    let out = Command::cargo_bin("agentopt").unwrap().args(path).arg("--help").assert().success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

/// One entry of a help section: its first line, and its description if it has one.
#[derive(Debug)]
struct Entry {
    section: String,
    line: String,
    description: Option<String>,
}

/// The entries of the `Commands:`, `Arguments:` and `Options:` sections. clap writes a description
/// either after two or more spaces on the entry's line or, in its next-line layout, on the lines below
/// indented deeper than any entry; a default or a list of possible values comes after it.
fn entries(text: &str) -> Vec<Entry> {
    let lines: Vec<&str> = text.lines().collect();
    let mut section = None;
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            section = line.strip_suffix(':').filter(|s| ["Commands", "Arguments", "Options"].contains(s));
            continue;
        }
        let Some(section) = section else { continue };
        let indent = line.len() - line.trim_start().len();
        // Entries start at column 2 (`  -v, --verbose`, `  train`) or 6 (`      --json`); deeper
        // lines belong to the entry above.
        if line.trim().is_empty() || indent > 6 {
            continue;
        }
        let same_line = line.trim().split_once("  ").map(|(_, rest)| rest.trim()).filter(|d| !d.is_empty());
        let next_line = lines
            .get(i + 1)
            .filter(|next| next.len() - next.trim_start().len() > 6 && !next.trim().is_empty())
            .map(|next| next.trim());
        out.push(Entry {
            section: section.to_string(),
            line: line.trim().to_string(),
            // `[default: 10]` alone is clap's, not a description.
            description: same_line.or(next_line).filter(|d| !d.starts_with('[')).map(str::to_string),
        });
    }
    out
}

/// Every subcommand path, found by walking the `Commands:` sections (clap's own `help` left out).
fn subcommands() -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut queue = vec![Vec::<String>::new()];
    while let Some(path) = queue.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        for e in entries(&help(&args)).into_iter().filter(|e| e.section == "Commands") {
            let name = e.line.split_whitespace().next().unwrap().to_string();
            if name != "help" {
                let mut sub = path.clone();
                sub.push(name);
                queue.push(sub);
            }
        }
        found.push(path);
    }
    found.sort();
    found
}

/// The block of help text describing one flag: its line and the deeper-indented lines below it.
fn flag_block(text: &str, flag: &str) -> String {
    let mut lines = text.lines().skip_while(|l| !l.trim_start().starts_with(flag));
    let first = lines.next().unwrap_or_else(|| panic!("no {flag} in:\n{text}"));
    let rest: Vec<&str> = lines.take_while(|l| l.is_empty() || l.len() - l.trim_start().len() > 6).collect();
    format!("{first}\n{}", rest.join("\n"))
}

#[test]
fn every_argument_and_subcommand_has_a_description() {
    let paths = subcommands();
    let mut missing = Vec::new();
    for path in &paths {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        let found = entries(&text);
        assert!(found.iter().any(|e| e.line.starts_with("-h, --help")), "help not parsed: {text}");
        for e in found.iter().filter(|e| e.description.is_none()) {
            missing.push(format!("agentopt {} --help: {} `{}`", path.join(" "), e.section, e.line));
        }
    }
    assert!(missing.is_empty(), "entries without a description:\n{}", missing.join("\n"));
    // The walk found the nested subcommands, so they were checked too.
    let names: Vec<String> = paths.iter().map(|p| p.join(" ")).collect();
    for expected in ["train", "chat", "functions import", "functions export", "runs list", "runs report"] {
        assert!(names.iter().any(|n| n == expected), "`{expected}` not found among {names:?}");
    }
}

#[test]
fn defaults_are_shown_and_epochs_say_what_they_count() {
    let train = help(&["train"]);
    let epochs = flag_block(&train, "--epochs");
    assert!(epochs.contains("[default: 10]"), "{epochs}");
    assert!(epochs.contains("N evaluations") && epochs.contains("N−1 optimizer steps"), "{epochs}");
    for (flag, default) in
        [("--patience", "3"), ("--actions-per-step", "3"), ("--concurrency", "8"), ("--runs-dir", "runs")]
    {
        let block = flag_block(&train, flag);
        assert!(block.contains(&format!("[default: {default}]")), "{block}");
    }
    let export = flag_block(&help(&["functions", "export"]), "--format");
    assert!(export.contains("[default: json]") && export.contains("autogen"), "{export}");
    assert!(flag_block(&help(&["chat"]), "--max-turns").contains("[default: 15]"));
}

#[test]
fn only_commands_that_run_many_conversations_offer_concurrency() {
    let chat = help(&["chat"]);
    assert!(!chat.contains("--concurrency"), "{chat}");
    for flag in ["--exec-timeout", "--config", "--model", "--runs-dir", "--no-cache", "--json"] {
        assert!(chat.contains(flag), "chat keeps {flag}: {chat}");
    }
    for sub in ["train", "eval"] {
        assert!(help(&[sub]).contains("--concurrency <N>"), "{sub} keeps --concurrency");
    }
    let refused =
        Command::cargo_bin("agentopt").unwrap().args(["chat", "hi", "--concurrency", "2"]).assert().code(2);
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(stderr.contains("--concurrency"), "{stderr}");
}
