//! The file shapes `Registry::load` reads besides agentopt's own `{"functions": [FunctionDef]}`: the
//! object `agentopt functions export --format autogen` writes, and AG2 AgentOptimizer's function list —
//! the records `{name, description, arguments, packages, code}` its optimizer keeps and a notebook
//! saves with `json.dump` (bare, or under `"functions"`). This module tells them apart and turns the
//! AG2 records into `FunctionDef`s; `functions.rs` checks the result the same way for every format.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::FunctionDef;
// An imported AG2 record must mean exactly what the same record proposed by agentopt's optimizer
// means (a bare properties map makes every parameter required, packages split on spaces and commas),
// so both read it with the optimizer's parsers.
use crate::optimizer::actions::{parse_packages, parse_schema};

/// Which of the accepted shapes a registry file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `{"functions": [{name, description, parameters, packages, code}]}` (SPEC §8).
    Agentopt,
    /// `{"register_for_llm", "tools", "functions"}`, as `functions export --format autogen` writes it.
    AutogenExport,
    /// `[{name, description, arguments, packages, code}]`, bare or under `"functions"`.
    Ag2FunctionList,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Agentopt => "agentopt registry",
            Format::AutogenExport => "agentopt `--format autogen` export",
            Format::Ag2FunctionList => "AG2 AgentOptimizer function list",
        })
    }
}

/// What every "not a registry" message lists, so the user sees what would have been read.
pub const ACCEPTED: &str = "agentopt reads its own registry {\"functions\": [...]}, the file \
    `agentopt functions export --format autogen` writes, and AG2 AgentOptimizer's function list \
    [{\"name\", \"description\", \"arguments\", \"packages\", \"code\"}, ...]";

/// Why one entry could not be read; the caller adds the file and the format.
#[derive(Debug, PartialEq)]
pub struct EntryError {
    pub index: usize,
    /// The entry's `name` when it has one, else `?`.
    pub name: String,
    pub message: String,
}

/// The format of a parsed document, or what it is instead (for the error message).
pub fn detect(doc: &Value) -> Result<Format, String> {
    let map = match doc {
        Value::Array(_) => return Ok(Format::Ag2FunctionList),
        Value::Object(map) => map,
        other => return Err(format!("the file holds {}", kind(other))),
    };
    let Some(functions) = map.get("functions") else {
        let mut keys: Vec<&str> = map.keys().map(String::as_str).take(6).collect();
        if map.len() > keys.len() {
            keys.push("…");
        }
        return Err(format!("the file holds a JSON object without `functions` (keys: {})", keys.join(", ")));
    };
    let Value::Array(entries) = functions else {
        return Err(format!("field `functions` is {}, not a list", kind(functions)));
    };
    if map.contains_key("register_for_llm") || map.contains_key("tools") {
        return Ok(Format::AutogenExport);
    }
    // An AG2 list someone wrapped in `{"functions": ...}` has `arguments` where agentopt has `parameters`.
    let is_ag2_record = |e: &Value| e.get("arguments").is_some() && e.get("parameters").is_none();
    Ok(if entries.iter().any(is_ag2_record) { Format::Ag2FunctionList } else { Format::Agentopt })
}

/// The functions of a document `detect` found to be `AutogenExport` or `Ag2FunctionList`.
pub fn read_records(doc: &Value) -> Result<Vec<FunctionDef>, EntryError> {
    let entries = match doc {
        Value::Array(entries) => entries.as_slice(),
        _ => doc["functions"].as_array().map(Vec::as_slice).unwrap_or_default(),
    };
    let whole_schemas = export_schemas(doc);
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            read_record(entry, &whole_schemas).map_err(|message| EntryError {
                index,
                name: entry.get("name").and_then(Value::as_str).unwrap_or("?").to_string(),
                message,
            })
        })
        .collect()
}

/// The whole parameter schemas an autogen export keeps in `tools` and `register_for_llm`, by name.
/// Its AG2 records hold only the properties map, which loses `required`; these restore it.
fn export_schemas(doc: &Value) -> HashMap<&str, &Value> {
    let signatures = |key: &str, pick: fn(&Value) -> &Value| -> Vec<&Value> {
        doc.get(key)
            .and_then(Value::as_array)
            .map(|items| items.iter().map(pick).collect())
            .unwrap_or_default()
    };
    let mut out = HashMap::new();
    // `tools` first: the first one seen for a name is kept.
    for sig in signatures("tools", |t| &t["function"])
        .into_iter()
        .chain(signatures("register_for_llm", |r| &r["func_sig"]))
    {
        if let (Some(name), Some(schema @ Value::Object(_))) = (sig["name"].as_str(), sig.get("parameters")) {
            out.entry(name).or_insert(schema);
        }
    }
    out
}

/// One AG2 record (or an agentopt-shaped entry with `parameters`) as a `FunctionDef`.
fn read_record(entry: &Value, whole_schemas: &HashMap<&str, &Value>) -> Result<FunctionDef, String> {
    let Some(map) = entry.as_object() else {
        return Err(format!(
            "must be a JSON object with `name`, `arguments` and `code`, not {}",
            kind(entry)
        ));
    };
    let code = match map.get("code") {
        Some(Value::String(s)) if s.trim().is_empty() => return Err("field `code` is empty".into()),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("field `code` must be a string (the Python source)".into()),
        // Users often hold AG2's signatures (`register_for_llm`, `llm_config["functions"]`): say why
        // those cannot be imported rather than only that a field is missing.
        None => {
            return Err("missing field `code`: a function record needs its Python source \
                        (signatures alone, such as `register_for_llm` items or `llm_config[\"functions\"]`, \
                        cannot run; save AgentOptimizer's function records instead)"
                .into());
        }
    };
    let name = match map.get("name") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("field `name` must be a string".into()),
        None => return Err("missing field `name`".into()),
    };
    // AG2 reads the description with `.get`, so a record may lack one.
    let description = match map.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("field `description` must be a string".into()),
    };
    let parameters = match (map.get("parameters"), map.get("arguments")) {
        (Some(whole), _) => whole.clone(),
        (None, Some(arguments)) => {
            let schema = parse_schema(arguments)?;
            match whole_schemas.get(name.as_str()) {
                // The export's whole schema, unless the record's arguments were edited since.
                Some(whole) if whole.get("properties") == schema.get("properties") => (*whole).clone(),
                _ => schema,
            }
        }
        (None, None) => {
            return Err("missing field `arguments` (the parameters' JSON schema; {} for none)".into());
        }
    };
    Ok(FunctionDef { name, description, parameters, packages: parse_packages(map.get("packages"))?, code })
}

/// "a JSON string" and the like, for messages about a value of the wrong kind.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a JSON boolean",
        Value::Number(_) => "a JSON number",
        Value::String(_) => "a JSON string",
        Value::Array(_) => "a JSON list",
        Value::Object(_) => "a JSON object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::functions::Registry;

    fn sample() -> Registry {
        Registry {
            functions: vec![FunctionDef {
                name: "count_divisors".into(),
                description: "Number of positive divisors of n.".into(),
                parameters: json!({"type": "object", "properties": {
                    "n": {"type": "integer", "description": "a positive integer"},
                    "proper": {"type": "boolean"}}, "required": ["n"]}),
                packages: vec!["sympy".into()],
                code: "import sympy\n\ndef count_divisors(n, proper=False):\n    return sympy.divisor_count(n)\n"
                    .into(),
            }],
        }
    }

    /// A record as AG2's `_update_function_call` stores it.
    fn ag2_record() -> Value {
        json!({"name": "evaluate_expression", "description": "Evaluate an expression.",
               "arguments": {"expression": {"type": "string", "description": "The expression."}},
               "packages": "sympy", "code": "from sympy import sympify\n\ndef evaluate_expression(expression):\n    return sympify(expression)\n"})
    }

    #[test]
    fn tells_the_formats_apart() {
        let native = serde_json::to_value(sample()).unwrap();
        assert_eq!(detect(&native), Ok(Format::Agentopt));
        assert_eq!(detect(&json!({"functions": []})), Ok(Format::Agentopt));
        let export = crate::inspect::export::to_autogen(&sample());
        assert_eq!(detect(&export), Ok(Format::AutogenExport));
        assert_eq!(detect(&json!([ag2_record()])), Ok(Format::Ag2FunctionList));
        assert_eq!(detect(&json!({"functions": [ag2_record()]})), Ok(Format::Ag2FunctionList));
        assert!(detect(&json!("x")).unwrap_err().contains("a JSON string"));
        assert!(detect(&json!({"a": 1, "b": 2})).unwrap_err().contains("without `functions` (keys: a, b)"));
        assert!(detect(&json!({"functions": 3})).unwrap_err().contains("a JSON number, not a list"));
    }

    #[test]
    fn an_autogen_export_reads_back_unchanged() {
        // `required` lives only in the export's `tools`; the records' `arguments` would make `proper` required.
        let export = crate::inspect::export::to_autogen(&sample());
        assert_eq!(read_records(&export).unwrap(), sample().functions);
    }

    #[test]
    fn an_edited_export_record_keeps_its_own_arguments() {
        let mut export = crate::inspect::export::to_autogen(&sample());
        export["functions"][0]["arguments"] = json!({"m": {"type": "integer"}});
        let read = read_records(&export).unwrap();
        assert_eq!(read[0].parameters["properties"], json!({"m": {"type": "integer"}}));
        assert_eq!(read[0].parameters["required"], json!(["m"]));
    }

    #[test]
    fn reads_ag2_records_in_every_spelling() {
        let f = &read_records(&json!([ag2_record()])).unwrap()[0];
        assert_eq!(f.name, "evaluate_expression");
        assert_eq!(f.packages, vec!["sympy"]);
        assert_eq!(f.parameters["type"], "object");
        assert_eq!(f.parameters["properties"]["expression"]["type"], "string");
        assert_eq!(f.parameters["required"], json!(["expression"]));

        // Arguments as the JSON string the optimizer model sent, packages as a list, no description.
        let mut record = ag2_record();
        record["arguments"] = json!(record["arguments"].to_string());
        record["packages"] = json!(["sympy", "numpy"]);
        record.as_object_mut().unwrap().remove("description");
        let g = &read_records(&json!([record])).unwrap()[0];
        assert_eq!(g.parameters, f.parameters);
        assert_eq!(g.packages, vec!["sympy", "numpy"]);
        assert_eq!(g.description, "");

        let mut spaced = ag2_record();
        spaced["packages"] = json!("sympy numpy");
        assert_eq!(read_records(&json!([spaced])).unwrap()[0].packages, vec!["sympy", "numpy"]);
        let mut none = ag2_record();
        none["packages"] = json!("");
        assert!(read_records(&json!([none])).unwrap()[0].packages.is_empty());
    }

    #[test]
    fn names_the_entry_and_field_at_fault() {
        let mut no_code = ag2_record();
        no_code.as_object_mut().unwrap().remove("code");
        let e = read_records(&json!([ag2_record(), no_code])).unwrap_err();
        assert_eq!((e.index, e.name.as_str()), (1, "evaluate_expression"));
        assert!(e.message.starts_with("missing field `code`"), "{}", e.message);

        let signature = json!({"func_sig": {"name": "f", "parameters": {}}, "is_remove": false});
        let e = read_records(&json!([signature])).unwrap_err();
        assert_eq!(e.name, "?");
        assert!(e.message.contains("register_for_llm"), "{}", e.message);

        let mut bad_args = ag2_record();
        bad_args["arguments"] = json!("{not json");
        let e = read_records(&json!([bad_args])).unwrap_err();
        assert!(e.message.contains("field `arguments` is not valid JSON"), "{}", e.message);

        let mut bad_packages = ag2_record();
        bad_packages["packages"] = json!(3);
        assert!(read_records(&json!([bad_packages])).unwrap_err().message.contains("field `packages`"));

        let e = read_records(&json!([42])).unwrap_err();
        assert!(e.message.contains("must be a JSON object") && e.message.contains("a JSON number"));
    }
}
