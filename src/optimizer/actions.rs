//! The optimizer's actions: parsing a tool call into an `Action` (syntax checks), checking it against
//! the current registry, and applying it. Every error is a message meant for the optimizer model.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::functions::{FunctionDef, Registry, is_identifier};
use crate::llm::ToolCall;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Add { function: FunctionDef },
    Revise { function: FunctionDef },
    Remove { name: String },
}

impl Action {
    pub fn name(&self) -> &str {
        match self {
            Action::Add { function } | Action::Revise { function } => &function.name,
            Action::Remove { name } => name,
        }
    }

    /// The function to check in the sandbox, if any.
    pub fn function(&self) -> Option<&FunctionDef> {
        match self {
            Action::Add { function } | Action::Revise { function } => Some(function),
            Action::Remove { .. } => None,
        }
    }

    /// A one-line description for tool replies and logs.
    pub fn describe(&self) -> String {
        match self {
            Action::Add { function } => format!("added function `{}`", function.name),
            Action::Revise { function } => format!("revised function `{}`", function.name),
            Action::Remove { name } => format!("removed function `{name}`"),
        }
    }
}

/// Parses a tool call: the arguments are a JSON object, the name an identifier, the schema an object.
pub fn parse(call: &ToolCall) -> Result<Action, String> {
    let args: Value = serde_json::from_str(&call.arguments)
        .map_err(|e| format!("the arguments of `{}` are not valid JSON: {e}", call.name))?;
    let args =
        args.as_object().ok_or_else(|| format!("the arguments of `{}` must be a JSON object", call.name))?;
    let name = string_field(args, "name")?;
    if !is_identifier(&name) {
        return Err(format!("`{name}` is not a valid function name: use [A-Za-z_][A-Za-z0-9_]{{0,63}}"));
    }
    match call.name.as_str() {
        "remove_function" => Ok(Action::Remove { name }),
        "add_function" | "revise_function" => {
            let function = FunctionDef {
                description: string_field(args, "description")?,
                parameters: parse_schema(args.get("arguments").ok_or("missing field `arguments`")?)?,
                packages: parse_packages(args.get("packages"))?,
                code: string_field(args, "code")?,
                name,
            };
            if function.code.trim().is_empty() {
                return Err("field `code` is empty".into());
            }
            Ok(if call.name == "add_function" {
                Action::Add { function }
            } else {
                Action::Revise { function }
            })
        }
        other => Err(format!("unknown tool `{other}`: use add_function, revise_function or remove_function")),
    }
}

fn string_field(args: &Map<String, Value>, key: &str) -> Result<String, String> {
    match args.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("field `{key}` must be a string")),
        None => Err(format!("missing field `{key}`")),
    }
}

/// The parameters schema from `arguments`: a JSON string or an object, holding either a whole object
/// schema (`"type": "object"` with `properties`) or — as AG2 sends it — just the properties map.
pub fn parse_schema(raw: &Value) -> Result<Value, String> {
    let value = match raw {
        Value::String(s) if s.trim().is_empty() => json!({}),
        Value::String(s) => {
            serde_json::from_str(s).map_err(|e| format!("field `arguments` is not valid JSON: {e}"))?
        }
        other => other.clone(),
    };
    let map = value.as_object().ok_or("field `arguments` must be a JSON schema object")?;
    let is_whole_schema = map.get("type").and_then(Value::as_str) == Some("object")
        && map.get("properties").is_none_or(Value::is_object);
    let schema = if is_whole_schema {
        value.clone()
    } else {
        let required: Vec<&String> = map.keys().collect();
        json!({"type": "object", "properties": value, "required": required})
    };
    let empty = Map::new();
    let props = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    for (key, prop) in props {
        if !prop.is_object() {
            return Err(format!("field `arguments`: the schema of parameter `{key}` must be an object"));
        }
    }
    Ok(schema)
}

/// Packages as a list: a string split on whitespace and commas (AG2 sends a string), or a list.
pub fn parse_packages(raw: Option<&Value>) -> Result<Vec<String>, String> {
    let list: Vec<String> = match raw {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => {
            s.split(|c: char| c.is_whitespace() || c == ',').map(str::to_string).collect()
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or("field `packages` must hold strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("field `packages` must be a string".into()),
    };
    Ok(list.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
}

/// Checks an action against the registry it would change.
pub fn check(registry: &Registry, action: &Action) -> Result<(), String> {
    let exists = registry.get(action.name()).is_some();
    match action {
        Action::Add { .. } if exists => Err(format!(
            "a function named `{}` already exists: use revise_function to change it",
            action.name()
        )),
        Action::Revise { .. } | Action::Remove { .. } if !exists => Err(format!(
            "there is no function named `{}`; the current functions are: {}",
            action.name(),
            names_or_none(registry)
        )),
        _ => Ok(()),
    }
}

fn names_or_none(registry: &Registry) -> String {
    if registry.functions.is_empty() { "(none)".into() } else { registry.names().join(", ") }
}

/// Applies a checked action: adds append, revisions replace in place, removals drop the function.
pub fn apply(registry: &mut Registry, action: Action) {
    match action {
        Action::Add { function } => registry.functions.push(function),
        Action::Revise { function } => {
            if let Some(slot) = registry.functions.iter_mut().find(|f| f.name == function.name) {
                *slot = function;
            }
        }
        Action::Remove { name } => registry.functions.retain(|f| f.name != name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(tool: &str, args: Value) -> ToolCall {
        ToolCall { id: "c".into(), name: tool.into(), arguments: args.to_string() }
    }

    fn add(name: &str) -> Value {
        json!({"name": name, "description": "d", "arguments": "{\"n\": {\"type\": \"integer\"}}",
               "packages": "sympy, numpy", "code": format!("def {name}(n):\n    return n")})
    }

    #[test]
    fn parses_ag2_style_add() {
        let Action::Add { function } = parse(&call("add_function", add("f"))).unwrap() else { panic!() };
        assert_eq!(function.packages, vec!["sympy", "numpy"]);
        assert_eq!(function.parameters["type"], "object");
        assert_eq!(function.parameters["properties"]["n"]["type"], "integer");
        assert_eq!(function.parameters["required"], json!(["n"]));
    }

    #[test]
    fn accepts_schema_as_object_or_whole_schema() {
        let whole = json!({"type": "object", "properties": {"x": {"type": "number"}}, "required": []});
        assert_eq!(parse_schema(&whole).unwrap(), whole);
        assert_eq!(parse_schema(&Value::String(whole.to_string())).unwrap(), whole);
        assert_eq!(parse_schema(&json!("")).unwrap()["properties"], json!({}));
        assert!(parse_schema(&json!("[1]")).is_err());
        assert!(parse_schema(&json!("{not json")).unwrap_err().contains("not valid JSON"));
        assert!(parse_schema(&json!({"x": 3})).unwrap_err().contains("parameter `x`"));
    }

    #[test]
    fn rejects_bad_calls_with_messages() {
        let bad = ToolCall { id: "c".into(), name: "add_function".into(), arguments: "{oops".into() };
        assert!(parse(&bad).unwrap_err().contains("not valid JSON"));
        assert!(parse(&call("add_function", add("1f"))).unwrap_err().contains("not a valid function name"));
        let mut missing = add("f");
        missing.as_object_mut().unwrap().remove("code");
        assert!(parse(&call("add_function", missing)).unwrap_err().contains("missing field `code`"));
        assert!(parse(&call("drop_function", json!({"name": "f"}))).unwrap_err().contains("unknown tool"));
        assert_eq!(
            parse(&call("remove_function", json!({"name": "f"}))).unwrap(),
            Action::Remove { name: "f".into() }
        );
    }

    #[test]
    fn checks_targets_and_applies() {
        let mut r = Registry::default();
        let a = parse(&call("add_function", add("f"))).unwrap();
        check(&r, &a).unwrap();
        apply(&mut r, a.clone());
        assert!(check(&r, &a).unwrap_err().contains("already exists"));
        let rev = parse(&call("revise_function", add("g"))).unwrap();
        assert!(check(&r, &rev).unwrap_err().contains("no function named `g`"));
        let mut revised = add("f");
        revised["description"] = json!("better");
        let rev = parse(&call("revise_function", revised)).unwrap();
        check(&r, &rev).unwrap();
        apply(&mut r, rev);
        assert_eq!(r.functions[0].description, "better");
        apply(&mut r, Action::Remove { name: "f".into() });
        assert!(r.functions.is_empty());
    }
}
