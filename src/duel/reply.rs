//! What a side answers: the JSON reply format (the prompt text asking for it and its schema), parsing
//! a model's reply into it, and the public part the other side is shown (no private thoughts).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One parsed reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// For the side itself only: never shown to the other side.
    pub thoughts: String,
    pub message: String,
    pub offer: Option<f64>,
    pub accepted: bool,
}

/// Appended to each side's system prompt: the format, and that only the message reaches the other.
pub fn format_instructions(other: &str) -> String {
    format!(
        "Answer with one JSON object and nothing else, with these keys in this order:\n\
         {{\n    \"private thoughts\": <string>,\n    \"message\": <string>,\n    \
         \"offer\": <number> or null,\n    \"offer accepted\": <true or false>\n}}\n\n\
         Your private thoughts are for yourself: use them to think about the best strategy. Only the \
         message, the offer and whether you accept reach {other}.\n\
         You can make an offer at any moment by setting \"offer\" to the price you propose; it stands \
         until you make another.\n\
         You can accept {other}'s standing offer by setting \"offer accepted\" to true: the deal is \
         then made at that price."
    )
}

/// The JSON schema of a reply (for JSON mode and the embedded model's grammar).
pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "private thoughts": {"type": "string"},
            "message": {"type": "string"},
            "offer": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "offer accepted": {"type": "boolean"}
        },
        "required": ["private thoughts", "message", "offer", "offer accepted"],
        "additionalProperties": false
    })
}

/// Parses a model's reply. The object may sit in a ```json fence or among other text (the first `{`
/// to the last `}`); `message` is required, the other keys default (no thoughts, no offer, not
/// accepted). The error says what is wrong, for the retry prompt.
pub fn parse(text: &str) -> Result<Reply, String> {
    let object = json_object(text).ok_or("the reply holds no JSON object")?;
    let value: Value =
        serde_json::from_str(object).map_err(|e| format!("the reply is not valid JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("the reply is not a JSON object".into());
    };
    let string = |key: &str, required: bool| match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) if !required => Ok(String::new()),
        None => Err(format!("the key \"{key}\" is missing")),
        Some(other) => Err(format!("\"{key}\" must be a string, not {other}")),
    };
    let thoughts = string("private thoughts", false)?;
    let message = string("message", true)?;
    let offer = match map.get("offer") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64().filter(|x| x.is_finite() && *x >= 0.0),
        Some(other) => return Err(format!("\"offer\" must be a number or null, not {other}")),
    };
    if matches!(map.get("offer"), Some(Value::Number(_))) && offer.is_none() {
        return Err("\"offer\" must be a price of at least 0".into());
    }
    let accepted = match map.get("offer accepted") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("\"offer accepted\" must be true or false, not {other}")),
    };
    Ok(Reply { thoughts, message, offer, accepted })
}

fn json_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    (end > start).then(|| &text[start..=end])
}

impl Reply {
    /// What the other side sees: the reply without the private thoughts, as JSON.
    pub fn public(&self) -> String {
        public_message(&self.message, self.offer, self.accepted)
    }
}

/// A public message as JSON, in the reply format's key order.
pub fn public_message(message: &str, offer: Option<f64>, accepted: bool) -> String {
    // Built by hand so the keys keep the order the prompt shows (serde_json's map sorts them).
    let offer = offer.map_or("null".to_string(), |o| json!(o).to_string());
    format!(
        "{{\n  \"message\": {},\n  \"offer\": {offer},\n  \"offer accepted\": {accepted}\n}}",
        json!(message)
    )
}

/// The prompt for the one retry after an unusable reply.
pub fn retry_prompt(error: &str) -> String {
    format!(
        "Your last reply could not be used: {error}. Answer again with only the JSON object, with the keys \
         \"private thoughts\", \"message\", \"offer\" and \"offer accepted\"."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_reply_parses_and_its_public_part_drops_the_thoughts() {
        let text = "Sure:\n```json\n{\"private thoughts\": \"go low\", \"message\": \"100?\", \"offer\": 100, \
                    \"offer accepted\": false}\n```";
        let r = parse(text).unwrap();
        assert_eq!(
            r,
            Reply { thoughts: "go low".into(), message: "100?".into(), offer: Some(100.0), accepted: false }
        );
        let public: Value = serde_json::from_str(&r.public()).unwrap();
        assert_eq!(public, json!({"message": "100?", "offer": 100.0, "offer accepted": false}));
        assert!(!r.public().contains("go low"));
    }

    #[test]
    fn missing_optional_keys_default_and_bad_ones_are_named() {
        let r = parse(r#"{"message": "hi"}"#).unwrap();
        assert_eq!((r.offer, r.accepted, r.thoughts.as_str()), (None, false, ""));
        assert_eq!(parse("no json here").unwrap_err(), "the reply holds no JSON object");
        assert!(
            parse(r#"{"message": "hi", "offer": "100"}"#).unwrap_err().contains("\"offer\" must be a number")
        );
        assert!(parse(r#"{"offer": 3}"#).unwrap_err().contains("\"message\" is missing"));
        assert!(parse(r#"{"message": "x", "offer accepted": "yes"}"#).unwrap_err().contains("true or false"));
        assert!(parse(r#"{"message": "x", "offer": -5}"#).unwrap_err().contains("at least 0"));
        assert!(parse("{\"message\": \"x\",}").unwrap_err().starts_with("the reply is not valid JSON"));
    }
}
