//! `agentopt functions list|show|diff|export|import`: read a registry (a file in any format
//! `Registry::load` takes, `functions/NAME`, a run, `RUN@EPOCH`, `RUN@best`) and print, compare or
//! export it, or convert it into agentopt's own registry format.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use super::bad_input;
use crate::cli::{ExportFormat, FunctionsAction, FunctionsArgs};
use crate::functions::{Format, Registry};
use crate::inspect::diff::{RegistryDiff, diff_registries};
use crate::inspect::{export, highlight, resolve_registry, table};

pub async fn run(args: FunctionsArgs) -> anyhow::Result<ExitCode> {
    let runs_dir = args.runs_dir.as_path();
    let out = match &args.action {
        FunctionsAction::List { registry } => {
            let (path, reg) = load(registry, runs_dir)?;
            list(&path, &reg, args.json)
        }
        FunctionsAction::Show { registry, name } => {
            let (path, reg) = load(registry, runs_dir)?;
            show(&path, &reg, name, args.json)?
        }
        FunctionsAction::Diff { a, b } => {
            let (path_a, reg_a) = load(a, runs_dir)?;
            let (path_b, reg_b) = load(b, runs_dir)?;
            let diff = diff_registries(&reg_a, &reg_b);
            if args.json {
                json_text(&json!({"a": path_a, "b": path_b, "diff": diff}))
            } else {
                render_diff(&diff, &path_a, &path_b)
            }
        }
        FunctionsAction::Export { registry, format, out } => {
            let (path, reg) = load(registry, runs_dir)?;
            let text = match format {
                ExportFormat::Json => json_text(&serde_json::to_value(&reg)?),
                ExportFormat::Autogen => json_text(&export::to_autogen(&reg)),
                ExportFormat::Python => export::to_python(&reg, &path.display().to_string()),
            };
            match out {
                None => text,
                Some(file) => {
                    crate::fsio::write_atomic(file, text.as_bytes())
                        .with_context(|| format!("Failed to write `{}`", file.display()))?;
                    if args.json {
                        json_text(&json!({"written": file, "functions": reg.names()}))
                    } else {
                        format!("wrote {} function(s) to {}\n", reg.functions.len(), file.display())
                    }
                }
            }
        }
        FunctionsAction::Import { source, out } => import(source, out.as_deref(), runs_dir, args.json)?,
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves and reads a registry; both failures are the user's input at fault (exit 2).
fn load(reference: &str, runs_dir: &Path) -> anyhow::Result<(PathBuf, Registry)> {
    let (path, registry, _) = load_with_format(reference, runs_dir)?;
    Ok((path, registry))
}

fn load_with_format(reference: &str, runs_dir: &Path) -> anyhow::Result<(PathBuf, Registry, Format)> {
    let path = resolve_registry(reference, runs_dir).map_err(bad_input)?;
    let (registry, format) = Registry::load_with_format(&path).map_err(bad_input)?;
    Ok((path, registry, format))
}

/// `functions import`: the registry in agentopt's format on stdout, or written to `out` with a line
/// saying what was read. Loading already checked every function, so what is written loads as it is.
fn import(source: &str, out: Option<&Path>, runs_dir: &Path, as_json: bool) -> anyhow::Result<String> {
    let (path, reg, format) = load_with_format(source, runs_dir)?;
    let text = json_text(&serde_json::to_value(&reg)?);
    let Some(file) = out else { return Ok(text) };
    reg.save(file)?;
    Ok(if as_json {
        json_text(&json!({"source": path, "format": format, "written": file, "functions": reg.names()}))
    } else {
        format!(
            "imported {} function(s) from {} ({format}) to {}\n",
            reg.functions.len(),
            path.display(),
            file.display()
        )
    })
}

fn json_text(v: &Value) -> String {
    // Serializing a `Value` cannot fail.
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

/// Colours only for a person at a terminal who has not opted out.
fn use_color() -> bool {
    std::io::stdout().is_terminal() && crate::env::var(crate::env::NO_COLOR).is_none()
}

fn list(path: &Path, reg: &Registry, as_json: bool) -> String {
    if as_json {
        let items: Vec<Value> = reg
            .functions
            .iter()
            .map(|f| {
                json!({"name": f.name, "signature": table::signature(f), "description": f.description,
                             "packages": f.packages})
            })
            .collect();
        return json_text(&json!({"registry": path, "functions": items}));
    }
    if reg.functions.is_empty() {
        return format!("{}: no functions\n", path.display());
    }
    let rows: Vec<Vec<String>> =
        reg.functions.iter().map(|f| vec![table::signature(f), first_line(&f.description)]).collect();
    let n = reg.functions.len();
    let plural = if n == 1 { "function" } else { "functions" };
    format!("{} ({n} {plural})\n\n{}", path.display(), table::render(&["function", "description"], &rows))
}

fn show(path: &Path, reg: &Registry, name: &str, as_json: bool) -> anyhow::Result<String> {
    let Some(f) = reg.get(name) else {
        let known = if reg.functions.is_empty() { "none".to_string() } else { reg.names().join(", ") };
        return Err(bad_input(anyhow::anyhow!(
            "No function `{name}` in registry `{}` (functions: {known})",
            path.display()
        )));
    };
    if as_json {
        return Ok(json_text(&json!({"registry": path, "signature": table::signature(f), "function": f})));
    }
    let color = use_color();
    let bold = |s: &str| if color { format!("\x1b[1m{s}\x1b[0m") } else { s.to_string() };
    let mut out = format!("{}\n\n", bold(&table::signature(f)));
    for line in f.description.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out.push_str(&format!("\n{}\n", bold("Parameters")));
    let empty = serde_json::Map::new();
    let props = f.parameters["properties"].as_object().unwrap_or(&empty);
    if props.is_empty() {
        out.push_str("  (none)\n");
    }
    let required: Vec<&str> = f.parameters["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (pname, schema) in props {
        let ty = schema["type"].as_str().unwrap_or("any");
        let req = if required.contains(&pname.as_str()) { "required" } else { "optional" };
        let desc = schema["description"].as_str().unwrap_or("");
        out.push_str(&format!("  {pname} ({ty}, {req}) {desc}\n").replace(" \n", "\n"));
    }
    let packages = if f.packages.is_empty() { "(none)".to_string() } else { f.packages.join(", ") };
    out.push_str(&format!("\n{} {packages}\n\n{}\n", bold("Packages:"), bold("Code")));
    out.push_str(&highlight::highlight_ansi(&f.code, color));
    if !f.code.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

fn render_diff(diff: &RegistryDiff, a: &Path, b: &Path) -> String {
    let color = use_color();
    let paint = |sgr: &str, s: &str| if color { format!("\x1b[{sgr}m{s}\x1b[0m") } else { s.to_string() };
    let mut out = format!("--- {}\n+++ {}\n", a.display(), b.display());
    if diff.is_empty() {
        out.push_str(&format!("no changes ({} functions identical)\n", diff.unchanged.len()));
        return out;
    }
    for f in &diff.added {
        out.push_str(&paint("32", &format!("added    {}", table::signature(f))));
        out.push('\n');
    }
    for f in &diff.removed {
        out.push_str(&paint("31", &format!("removed  {}", table::signature(f))));
        out.push('\n');
    }
    for r in &diff.revised {
        let mut parts = Vec::new();
        for (changed, what) in [
            (!r.code_diff.is_empty(), "code"),
            (!r.description_diff.is_empty(), "description"),
            (r.parameters_changed, "parameters"),
            (r.packages_changed, "packages"),
        ] {
            if changed {
                parts.push(what);
            }
        }
        out.push_str(&paint("33", &format!("revised  {} ({})", r.name, parts.join(", "))));
        out.push('\n');
    }
    if !diff.unchanged.is_empty() {
        out.push_str(&format!("unchanged {}\n", diff.unchanged.join(", ")));
    }
    for r in &diff.revised {
        if r.parameters_changed {
            out.push_str(&format!(
                "\n{}: parameters {} -> {}\n",
                r.name,
                table::signature(&r.old),
                table::signature(&r.new)
            ));
        }
        if r.packages_changed {
            out.push_str(&format!(
                "\n{}: packages [{}] -> [{}]\n",
                r.name,
                r.old.packages.join(", "),
                r.new.packages.join(", ")
            ));
        }
        for d in [&r.description_diff, &r.code_diff] {
            if d.is_empty() {
                continue;
            }
            out.push('\n');
            for line in d.lines() {
                let sgr = match line.as_bytes().first() {
                    Some(b'+') => "32",
                    Some(b'-') => "31",
                    Some(b'@') => "36",
                    _ => "",
                };
                out.push_str(&if sgr.is_empty() { line.to_string() } else { paint(sgr, line) });
                out.push('\n');
            }
        }
    }
    out
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}
