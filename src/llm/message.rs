//! The neutral, OpenAI-shaped message model every backend translates to and from.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// A function call requested by the assistant. `arguments` stays the raw string the model produced so
/// that invalid JSON reaches the validator (and the optimizer) as it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the id of the call this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For `Role::Tool`: the function's name (some servers want it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    fn with(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::with(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::with(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::with(Role::Assistant, content)
    }
    pub fn tool(call: &ToolCall, content: impl Into<String>) -> Self {
        Message {
            role: Role::Tool,
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: Some(call.id.clone()),
            name: Some(call.name.clone()),
        }
    }
    /// The text content, or "" when there is none.
    pub fn text(&self) -> &str {
        self.content.as_deref().unwrap_or("")
    }
}

/// A function offered to the model (OpenAI `tools[].function`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema object of the parameters.
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    /// Force this function.
    Function(String),
}

/// One request to a chat model. `None` fields are omitted on the wire (local servers reject nulls).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The reply must be one JSON object of this schema: OpenAI-compatible servers get JSON mode
    /// (`response_format` json_object), the embedded model samples under the schema's grammar, and
    /// Anthropic (no such mode) relies on the prompt asking for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<Value>,
    /// Escape hatch: extra body parameters passed through verbatim (e.g. `repeat_penalty`).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, Value>,
}

/// Tokens and cost. Used per call and summed by callers per conversation, epoch and run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub usd: f64,
}

impl Usage {
    /// Dollars are summed as whole nanodollars, so a total does not depend on the order its parts
    /// arrived in: concurrent conversations finish in any order, and the run files must not show it.
    pub fn add(&mut self, other: &Usage) {
        self.calls += other.calls;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.usd = from_nanodollars(nanodollars(self.usd) + nanodollars(other.usd));
    }

    /// Reads `{calls, input_tokens|prompt_tokens, output_tokens|completion_tokens, usd|cost}` leniently
    /// (missing or mistyped fields count as zero): how run files written by any version are read back.
    pub fn from_json(v: &Value) -> Usage {
        let int = |keys: &[&str]| keys.iter().find_map(|k| v[*k].as_u64()).unwrap_or(0);
        Usage {
            calls: int(&["calls"]),
            input_tokens: int(&["input_tokens", "prompt_tokens"]),
            output_tokens: int(&["output_tokens", "completion_tokens"]),
            usd: ["usd", "cost"].iter().find_map(|k| v[*k].as_f64()).unwrap_or(0.0),
        }
    }
}

const NANODOLLARS_PER_USD: f64 = 1e9;

/// Whole nanodollars: exact as f64 round trips below ~2 million dollars.
fn nanodollars(usd: f64) -> i64 {
    (usd * NANODOLLARS_PER_USD).round() as i64
}

fn from_nanodollars(nanos: i64) -> f64 {
    nanos as f64 / NANODOLLARS_PER_USD
}

/// A price rounded to the nanodollar, the unit `Usage::add` sums in.
pub fn round_usd(usd: f64) -> f64 {
    from_nanodollars(nanodollars(usd))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The assistant message (content and/or tool calls).
    pub message: Message,
    /// What this call cost; zero when answered from the cache.
    pub usage: Usage,
    /// The model name that answered (the config entry's `model`).
    pub model: String,
    #[serde(default)]
    pub cached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dollars(usd: f64) -> Usage {
        Usage { calls: 1, usd, ..Usage::default() }
    }

    #[test]
    fn dollar_totals_do_not_depend_on_the_order_of_the_parts() {
        // 0.1 + 0.2 + 0.3 and 0.3 + 0.2 + 0.1 differ in plain f64 arithmetic.
        let parts = [0.1, 0.2, 0.3, 1e-7, 0.000_123_4];
        let total = |order: &mut dyn Iterator<Item = &f64>| {
            let mut sum = Usage::default();
            order.for_each(|&usd| sum.add(&dollars(usd)));
            sum
        };
        let forward = total(&mut parts.iter());
        let backward = total(&mut parts.iter().rev());
        assert_eq!(forward.usd.to_bits(), backward.usd.to_bits());
        assert_eq!(forward.usd, 0.600_123_5);
        assert_eq!(forward.calls, 5);
    }

    #[test]
    fn usage_is_read_back_under_either_spelling() {
        let openai =
            serde_json::json!({"calls": 2, "prompt_tokens": 10, "completion_tokens": 3, "cost": 0.5});
        let ours = serde_json::json!({"calls": 2, "input_tokens": 10, "output_tokens": 3, "usd": 0.5});
        assert_eq!(Usage::from_json(&openai), Usage::from_json(&ours));
        assert_eq!(Usage::from_json(&serde_json::json!({"calls": "x"})), Usage::default());
    }
}
