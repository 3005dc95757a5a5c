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
//!   `python` export and pass its functions to `register_function` (they carry annotations).
//! - `python`: an importable module. Each function's source is kept verbatim in a raw string and
//!   executed in its own namespace, so every function keeps its own imports and helpers (two functions
//!   may both define `_helper`) and runs *its own* code. The module exposes each function by name,
//!   `SCHEMAS` (name → JSON Schema of the parameters), `DESCRIPTIONS`, `PACKAGES`, `FUNCTIONS`,
//!   `UNAVAILABLE` and `__all__`. Parameters without annotations get them from the schema (AG2's
//!   `register_function` refuses functions without); a function whose imports fail is defined as
//!   one raising ImportError with what to install, so the rest still import; a name that would
//!   shadow the module's own or is a Python keyword is only in `FUNCTIONS`.

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
         stay its own. SCHEMAS maps each name to the JSON Schema of its parameters, DESCRIPTIONS to its\n\
         description, PACKAGES to what it needs installed, FUNCTIONS to the function itself.\n\n\
         A function whose imports fail here is still defined: calling it raises ImportError naming what\n\
         to install (UNAVAILABLE lists them); the others work. Parameters the source leaves\n\
         unannotated get annotations from the schema, so AG2 takes each function as it is:\n\n    \
             autogen.register_function(f, caller=assistant, executor=proxy, description=DESCRIPTIONS[name])\n\n\
         A name that would shadow this module's own (SCHEMAS, a Python keyword, ...) is only in FUNCTIONS.\n\
         \"\"\"\n\n",
        docstring_text(source)
    ));
    out.push_str("import inspect as _agentopt_inspect\nimport linecache as _agentopt_linecache\nimport typing as _agentopt_typing\n\n");
    let obj = |pick: &dyn Fn(&crate::functions::FunctionDef) -> Value| {
        let map: serde_json::Map<String, Value> =
            registry.functions.iter().map(|f| (f.name.clone(), pick(f))).collect();
        py_literal(&Value::Object(map), 0)
    };
    // Before the functions: what to install must be readable even where one of them fails.
    out.push_str(&format!("SCHEMAS = {}\n\n", obj(&|f| f.parameters.clone())));
    out.push_str(&format!("DESCRIPTIONS = {}\n\n", obj(&|f| Value::String(f.description.clone()))));
    out.push_str(&format!("PACKAGES = {}\n\n", obj(&|f| json!(f.packages))));
    out.push_str("UNAVAILABLE = {}\n\n_AGENTOPT_SOURCES = {}\n\n");
    for f in &registry.functions {
        out.push_str(&format!("_AGENTOPT_SOURCES[{}] = {}\n\n", py_str(&f.name), py_source_literal(&f.code)));
    }
    out.push_str(PYTHON_DEFINE);
    out.push_str("\nFUNCTIONS = {name: _agentopt_define(name) for name in _AGENTOPT_SOURCES}\n\n");
    let (bound, shadowing): (Vec<_>, Vec<_>) = registry.functions.iter().partition(|f| !shadows(&f.name));
    for f in &bound {
        out.push_str(&format!("{0} = FUNCTIONS[{1}]\n", f.name, py_str(&f.name)));
    }
    for f in &shadowing {
        out.push_str(&format!(
            "# {}: only FUNCTIONS[{0}] (the name is this module's own or Python's)\n",
            py_str(&f.name)
        ));
    }
    let names: Vec<String> = bound.iter().map(|f| py_str(&f.name)).collect();
    out.push_str(&format!("\n__all__ = [{}]\n", names.join(", ")));
    out
}

/// The module's own names a function must not take (the registry's identifier rule allows them).
const PYTHON_EXPORT_NAMES: &[&str] = &["SCHEMAS", "DESCRIPTIONS", "PACKAGES", "UNAVAILABLE", "FUNCTIONS"];

/// Python's hard keywords: identifiers by agentopt's rule, but never a name to bind.
const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def",
    "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
    "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

/// Whether binding `name` at module level would break the module or shadow one of its names.
fn shadows(name: &str) -> bool {
    PYTHON_EXPORT_NAMES.contains(&name)
        || PYTHON_KEYWORDS.contains(&name)
        || name.to_lowercase().starts_with("_agentopt")
        || (name.starts_with("__") && name.ends_with("__"))
}

/// Defines each function from its source, annotates it from its schema, or stands in for one whose
/// imports fail. Every helper name starts with `_agentopt`, which `shadows` keeps functions from.
const PYTHON_DEFINE: &str = r#"
_AGENTOPT_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool, "array": list, "object": dict}


def _agentopt_type(schema):
    kinds = schema.get("type") if isinstance(schema, dict) else None
    kinds = [kinds] if isinstance(kinds, str) else kinds or []
    types = [_AGENTOPT_TYPES.get(k, type(None) if k == "null" else _agentopt_typing.Any) for k in kinds]
    if not types or _agentopt_typing.Any in types:
        return _agentopt_typing.Any
    return types[0] if len(types) == 1 else _agentopt_typing.Union[tuple(types)]


def _agentopt_annotation(schema):
    described = isinstance(schema, dict) and isinstance(schema.get("description"), str)
    kind = _agentopt_type(schema)
    return _agentopt_typing.Annotated[kind, schema["description"]] if described else kind


def _agentopt_annotate(function, schema):
    # AG2's register_function refuses parameters without annotations, which optimizers rarely write.
    properties = schema.get("properties") or {}
    annotations = dict(getattr(function, "__annotations__", None) or {})
    try:
        parameters = _agentopt_inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return function
    for p in parameters:
        if p.name not in annotations and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            annotations[p.name] = _agentopt_annotation(properties.get(p.name, {}))
    annotations.setdefault("return", _agentopt_typing.Any)
    function.__annotations__ = annotations
    return function


def _agentopt_unavailable(name, error):
    needs = " ".join(PACKAGES[name])
    message = "function %r cannot run here (%s)" % (name, error)
    if needs:
        message += "; it needs: pip install " + needs
    UNAVAILABLE[name] = message

    def unavailable(*args, **kwargs):
        raise ImportError(message)

    schema = SCHEMAS[name]
    required = set(schema.get("required") or [])
    parameters = [
        _agentopt_inspect.Parameter(
            p, _agentopt_inspect.Parameter.KEYWORD_ONLY,
            default=_agentopt_inspect.Parameter.empty if p in required else None,
            annotation=_agentopt_annotation(s),
        )
        for p, s in (schema.get("properties") or {}).items()
    ]
    unavailable.__signature__ = _agentopt_inspect.Signature(parameters, return_annotation=_agentopt_typing.Any)
    unavailable.__name__ = unavailable.__qualname__ = name
    unavailable.__doc__ = DESCRIPTIONS[name]
    return unavailable


def _agentopt_define(name):
    # Register the source with linecache so tracebacks show the function's real lines.
    filename = "<agentopt:%s>" % name
    source = _AGENTOPT_SOURCES[name]
    _agentopt_linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": __name__, "__builtins__": __builtins__}
    try:
        exec(compile(source, filename, "exec"), namespace)
    except ImportError as error:
        return _agentopt_unavailable(name, error)
    return _agentopt_annotate(namespace[name], SCHEMAS[name])
"#;

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
