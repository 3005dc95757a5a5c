//! Writing a registry for use outside agentopt.
//!
//! - `json`: the registry file itself (SPEC §8).
//! - `autogen`: one JSON object with everything AG2 needs, in the shapes its APIs take:
//!   `register_for_llm` is the list `AgentOptimizer.step()` returns (`{"func_sig", "is_remove"}`, fed to
//!   `assistant.update_function_signature(**item)`); `tools` are the same signatures in the OpenAI tool
//!   shape `{"type": "function", "function": {...}}` (for `update_tool_signature` or any OpenAI client);
//!   `functions` are AgentOptimizer's own records `{name, description, arguments (the properties map),
//!   packages (space-separated), code}` (the `add_function` arguments), from which the executor's
//!   `function_map` is built with `exec` — or import the
//!   `python` export and pass its functions to `register_function`.
//! - `python`: an importable module. Each function's source is kept verbatim in a raw string and
//!   executed in its own namespace, so every function keeps its own imports and helpers (two functions
//!   may both define `_helper`) and runs *its own* code. The module exposes each function by name,
//!   `SCHEMAS` (name → JSON Schema of the parameters), `DESCRIPTIONS`, `PACKAGES` and `__all__`.

use serde_json::{Value, json};

use crate::functions::Registry;

/// The `autogen` export (see the module documentation).
pub fn to_autogen(registry: &Registry) -> Value {
    let sig = |f: &crate::functions::FunctionDef| json!({"name": f.name, "description": f.description, "parameters": f.parameters});
    json!({
        "register_for_llm": registry.functions.iter()
            .map(|f| json!({"func_sig": sig(f), "is_remove": false})).collect::<Vec<_>>(),
        "tools": registry.functions.iter()
            .map(|f| json!({"type": "function", "function": sig(f)})).collect::<Vec<_>>(),
        "functions": registry.functions.iter().map(|f| json!({
            "name": f.name,
            "description": f.description,
            // AG2 keeps the properties map here and wraps it in an object schema itself.
            "arguments": f.parameters.get("properties").cloned().unwrap_or_else(|| json!({})),
            "packages": f.packages.join(" "),
            "code": f.code,
        })).collect::<Vec<_>>(),
    })
}

/// The `python` export: the text of an importable module (see the module documentation).
pub fn to_python(registry: &Registry, source: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "\"\"\"Functions learned by agentopt (exported from {}).\n\n\
         Each function runs its own source, executed in a private namespace so its imports and helpers\n\
         stay its own. SCHEMAS maps each name to the JSON Schema of its parameters.\n\"\"\"\n\n",
        docstring_text(source)
    ));
    out.push_str("import linecache as _linecache\n\n");
    out.push_str("_AGENTOPT_SOURCES = {}\n\n");
    for f in &registry.functions {
        out.push_str(&format!("_AGENTOPT_SOURCES[{}] = {}\n\n", py_str(&f.name), py_source_literal(&f.code)));
    }
    out.push_str(
        "\ndef _agentopt_define(name):\n    \
         # Register the source with linecache so tracebacks show the function's real lines.\n    \
         filename = \"<agentopt:%s>\" % name\n    \
         source = _AGENTOPT_SOURCES[name]\n    \
         _linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)\n    \
         namespace = {\"__name__\": __name__, \"__builtins__\": __builtins__}\n    \
         exec(compile(source, filename, \"exec\"), namespace)\n    \
         return namespace[name]\n\n\n",
    );
    for f in &registry.functions {
        out.push_str(&format!("{0} = _agentopt_define({1})\n", f.name, py_str(&f.name)));
    }
    let obj = |pick: &dyn Fn(&crate::functions::FunctionDef) -> Value| {
        let map: serde_json::Map<String, Value> =
            registry.functions.iter().map(|f| (f.name.clone(), pick(f))).collect();
        py_literal(&Value::Object(map), 0)
    };
    out.push_str(&format!("\nSCHEMAS = {}\n", obj(&|f| f.parameters.clone())));
    out.push_str(&format!("\nDESCRIPTIONS = {}\n", obj(&|f| Value::String(f.description.clone()))));
    out.push_str(&format!("\nPACKAGES = {}\n", obj(&|f| json!(f.packages))));
    let names: Vec<String> = registry.functions.iter().map(|f| py_str(&f.name)).collect();
    out.push_str(&format!("\n__all__ = [{}]\n", names.join(", ")));
    out
}

/// A Python string literal: JSON string escapes are all valid in Python too.
fn py_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// Text safe inside a `"""` docstring: JSON escaping turns every `"` into `\"` and every `\` into `\\`.
fn docstring_text(s: &str) -> String {
    let quoted = py_str(s);
    quoted[1..quoted.len() - 1].to_string()
}

/// Source code as a readable raw triple-quoted string when it can be one, else an escaped literal.
fn py_source_literal(code: &str) -> String {
    let raw_ok =
        !code.contains("'''") && !code.ends_with('\\') && !code.ends_with('\'') && !code.contains('\r');
    if raw_ok { format!("r'''{code}'''") } else { py_str(code) }
}

/// A JSON value written as a Python literal (dicts, lists, str, numbers, True/False/None).
fn py_literal(v: &Value, indent: usize) -> String {
    let pad = "    ".repeat(indent + 1);
    let close = "    ".repeat(indent);
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(items) if items.is_empty() => "[]".into(),
        Value::Array(items) => {
            let inner: Vec<String> =
                items.iter().map(|x| format!("{pad}{},\n", py_literal(x, indent + 1))).collect();
            format!("[\n{}{close}]", inner.concat())
        }
        Value::Object(map) if map.is_empty() => "{}".into(),
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, x)| format!("{pad}{}: {},\n", py_str(k), py_literal(x, indent + 1)))
                .collect();
            format!("{{\n{}{close}}}", inner.concat())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_literals() {
        let v = json!({"a": [1, 2.5, true, null], "b": "x\"y\n", "c": {}});
        assert_eq!(
            py_literal(&v, 0),
            "{\n    \"a\": [\n        1,\n        2.5,\n        True,\n        None,\n    ],\n    \"b\": \"x\\\"y\\n\",\n    \"c\": {},\n}"
        );
        assert_eq!(py_source_literal("def f():\n    return '\\d'\n"), "r'''def f():\n    return '\\d'\n'''");
        assert_eq!(py_source_literal("s = '''x'''"), "\"s = '''x'''\"");
    }
}
