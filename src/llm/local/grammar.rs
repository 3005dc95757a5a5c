//! The JSON schemas a function call is sampled under (llama.cpp turns them into GBNF grammars), and the
//! reading of a sampled call back into a `ToolCall`.

use serde_json::Value;

use crate::llm::{ToolCall, ToolSpec};

/// The schema of one call: `{"name": <one of the tools>, "arguments": <that tool's parameters>}`.
/// Written by hand rather than through `serde_json::Map` so that `name` comes first (maps sort keys):
/// the model then commits to a function before writing its arguments.
pub fn call_schema(tools: &[ToolSpec]) -> String {
    let one = |t: &ToolSpec| {
        format!(
            "{{\"type\":\"object\",\"properties\":{{\"name\":{{\"const\":{}}},\"arguments\":{}}},\
             \"required\":[\"name\",\"arguments\"],\"additionalProperties\":false}}",
            Value::String(t.name.clone()),
            parameters(&t.parameters)
        )
    };
    match tools {
        [only] => one(only),
        _ => format!("{{\"anyOf\":[{}]}}", tools.iter().map(one).collect::<Vec<_>>().join(",")),
    }
}

/// A looser schema for when a tool's own parameter schema cannot be compiled into a grammar: the name
/// is still one of the offered ones and the arguments are still a JSON object.
pub fn fallback_schema(tools: &[ToolSpec]) -> String {
    let names: Vec<Value> = tools.iter().map(|t| Value::String(t.name.clone())).collect();
    format!(
        "{{\"type\":\"object\",\"properties\":{{\"name\":{{\"enum\":{}}},\"arguments\":{{\"type\":\"object\"}}}},\
         \"required\":[\"name\",\"arguments\"],\"additionalProperties\":false}}",
        Value::Array(names)
    )
}

/// A parameter schema as the grammar should see it: an object with no `type` is treated as an object
/// (OpenAI accepts `{"properties": ...}` alone) and a non-object schema becomes "any object".
fn parameters(schema: &Value) -> String {
    match schema {
        Value::Object(map) if !map.is_empty() => {
            let mut map = map.clone();
            map.entry("type").or_insert_with(|| Value::String("object".into()));
            Value::Object(map).to_string()
        }
        _ => "{\"type\":\"object\"}".to_string(),
    }
}

/// Reads a sampled call. `text` is what followed `<tool_call>`; on a cut-off (token limit) the raw text
/// is kept as the arguments so the validator sees what the model wrote.
pub fn parse_call(text: &str, tools: &[ToolSpec], id: String) -> ToolCall {
    let fallback_name = tools.first().map(|t| t.name.clone()).unwrap_or_default();
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(Value::Object(mut obj)) => {
            let name = match obj.remove("name") {
                Some(Value::String(name)) => name,
                _ => fallback_name,
            };
            let arguments = obj.remove("arguments").unwrap_or_else(|| Value::Object(Default::default()));
            ToolCall { id, name, arguments: arguments.to_string() }
        }
        _ => ToolCall { id, name: fallback_name, arguments: text.trim().to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str, parameters: Value) -> ToolSpec {
        ToolSpec { name: name.into(), description: String::new(), parameters }
    }

    #[test]
    fn one_tool_schema_pins_the_name_first() {
        let schema = call_schema(&[tool("f", json!({"properties": {"x": {"type": "integer"}}}))]);
        assert!(schema.find("\"name\"").unwrap() < schema.find("\"arguments\"").unwrap());
        let v: Value = serde_json::from_str(&schema).unwrap();
        assert_eq!(v["properties"]["name"]["const"], "f");
        assert_eq!(v["properties"]["arguments"]["type"], "object");
    }

    #[test]
    fn several_tools_are_alternatives_and_fallback_lists_names() {
        let tools = [tool("a", json!({})), tool("b", json!("nonsense"))];
        let v: Value = serde_json::from_str(&call_schema(&tools)).unwrap();
        assert_eq!(v["anyOf"].as_array().unwrap().len(), 2);
        assert_eq!(v["anyOf"][1]["properties"]["arguments"], json!({"type": "object"}));
        let f: Value = serde_json::from_str(&fallback_schema(&tools)).unwrap();
        assert_eq!(f["properties"]["name"]["enum"], json!(["a", "b"]));
    }

    #[test]
    fn parses_calls_and_keeps_cut_off_text() {
        let tools = [tool("f", json!({}))];
        let call = parse_call(r#" {"name": "f", "arguments": {"x": 2}} "#, &tools, "c".into());
        assert_eq!((call.name.as_str(), call.arguments.as_str()), ("f", r#"{"x":2}"#));
        let cut = parse_call(r#"{"name": "f", "arguments": {"x""#, &tools, "c".into());
        assert_eq!(cut.name, "f");
        assert_eq!(cut.arguments, r#"{"name": "f", "arguments": {"x""#);
    }
}
