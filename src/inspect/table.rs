//! Plain-text tables and function signatures for terminal output.

use serde_json::Value;

use crate::functions::FunctionDef;

/// Left-aligned columns separated by two spaces, with a header row and a rule under it.
/// Cells holding numbers are right-aligned so decimals line up.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..columns)
        .map(|c| !rows.is_empty() && rows.iter().all(|r| r.get(c).is_none_or(|s| looks_numeric(s))))
        .collect();
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (c, cell) in cells.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            let last = c + 1 == columns;
            if numeric[c] {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if !last {
                    out.push_str(&" ".repeat(pad));
                }
            }
            if !last {
                out.push_str("  ");
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    out.push_str(&line(
        widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().iter().map(|s| s.as_str()).collect(),
    ));
    for row in rows {
        out.push_str(&line(row.iter().map(|s| s.as_str()).collect()));
    }
    out
}

fn looks_numeric(s: &str) -> bool {
    s == "-" || s.trim_start_matches('$').parse::<f64>().is_ok()
}

/// `name(a: number, b?: string)` from the parameters' JSON Schema; optional parameters get `?`.
pub fn signature(f: &FunctionDef) -> String {
    let required: Vec<&str> = f.parameters["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // JSON objects come back sorted by key, so the declared order is lost: required parameters follow
    // the `required` list (the order a caller must pass them), then the optional ones by name.
    let empty = serde_json::Map::new();
    let props = f.parameters["properties"].as_object().unwrap_or(&empty);
    let mut params: Vec<String> = required
        .iter()
        .filter_map(|name| props.get(*name).map(|schema| format!("{name}: {}", type_name(schema))))
        .collect();
    params.extend(
        props
            .iter()
            .filter(|(name, _)| !required.contains(&name.as_str()))
            .map(|(name, schema)| format!("{name}?: {}", type_name(schema))),
    );
    format!("{}({})", f.name, params.join(", "))
}

fn type_name(schema: &Value) -> String {
    match &schema["type"] {
        Value::String(t) if t == "array" => match &schema["items"] {
            Value::Null => "array".into(),
            items => format!("array[{}]", type_name(items)),
        },
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "),
        _ if schema["enum"].is_array() => "enum".into(),
        _ => "any".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signatures_from_schema() {
        let f = FunctionDef {
            name: "f".into(),
            description: String::new(),
            parameters: json!({"type": "object", "properties": {
                "a": {"type": "number"}, "xs": {"type": "array", "items": {"type": "integer"}}, "m": {}},
                "required": ["a", "xs"]}),
            packages: vec![],
            code: String::new(),
        };
        assert_eq!(signature(&f), "f(a: number, xs: array[integer], m?: any)");
    }

    #[test]
    fn aligned_columns() {
        let t = render(
            &["name", "score"],
            &[vec!["a".into(), "0.5".into()], vec!["long".into(), "10.25".into()]],
        );
        assert_eq!(t, "name  score\n----  -----\na       0.5\nlong  10.25\n");
    }
}
