//! The few-shot transcript a base model (no chat template) is prompted with: a fixed preamble and worked
//! example, then the real messages as `User:` / `Assistant:` / `Output:` turns, and the stop sequences
//! that end the model's turn where the transcript would hand over to someone else.

use crate::llm::{ChatRequest, Message, Role, ToolChoice, ToolSpec};

/// What opens every prompt. A base model continues text; a worked exchange shows it the shape we want:
/// reason briefly, run Python in a fenced block, read the output, finish with `\boxed{}`.
const PREAMBLE: &str = "A transcript of a careful assistant solving math problems for a user. The \
assistant writes Python in ```python blocks, the user runs them and replies with the output, and the \
assistant puts the final answer in \\boxed{}.";

/// The worked example (one exchange). Kept short: every token here is paid on each uncached prompt.
const EXAMPLE: &str = "User: Solve the problem with Python. Print results and put the final answer in \
\\boxed{}.\nProblem: What is the sum of the squares of 3, 4 and 12?\n\
Assistant: I will compute the sum in Python.\n```python\nprint(3**2 + 4**2 + 12**2)\n```\n\
User: 169\n\
Assistant: The sum of the squares is \\boxed{169}.";

/// Marks a function call in the transcript: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.
pub const CALL_OPEN: &str = "<tool_call>";
pub const CALL_CLOSE: &str = "</tool_call>";

/// Where the model's turn ends: the start of anyone else's turn.
const TURN_STOPS: [&str; 3] = ["\nUser:", "\nOutput:", "\nAssistant:"];

/// How the model must answer this request.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Free text only.
    Text,
    /// Free text, or a call the model opens with [`CALL_OPEN`] (then sampled under a grammar).
    TextOrCall,
    /// A call to one of these functions, sampled under a grammar from the first token.
    Call(Vec<ToolSpec>),
}

/// The mode a request asks for: forced calls restrict the offered functions to the forced one.
pub fn mode(request: &ChatRequest) -> Mode {
    if request.tools.is_empty() {
        return Mode::Text;
    }
    match &request.tool_choice {
        None | Some(ToolChoice::Auto) => Mode::TextOrCall,
        Some(ToolChoice::None) => Mode::Text,
        Some(ToolChoice::Required) => Mode::Call(request.tools.clone()),
        Some(ToolChoice::Function(name)) => {
            let forced: Vec<ToolSpec> = request.tools.iter().filter(|t| &t.name == name).cloned().collect();
            // A forced name that is not offered: let the model pick among the offered ones rather than fail.
            Mode::Call(if forced.is_empty() { request.tools.clone() } else { forced })
        }
    }
}

/// The prompt text, ending where the assistant's next turn begins (with [`CALL_OPEN`] already written
/// when a call is forced, so the grammar starts at the JSON object).
pub fn render(request: &ChatRequest, mode: &Mode) -> String {
    let mut out = String::from(PREAMBLE);
    out.push_str("\n\n");
    out.push_str(EXAMPLE);
    out.push_str("\n\n");
    // System messages describe the task; in a transcript they read best before the real exchange.
    for m in request.messages.iter().filter(|m| m.role == Role::System) {
        out.push_str(m.text().trim());
        out.push_str("\n\n");
    }
    if mode != &Mode::Text {
        out.push_str(&describe_tools(&request.tools));
        out.push_str("\n\n");
    }
    for m in request.messages.iter().filter(|m| m.role != Role::System) {
        out.push_str(&turn(m));
        out.push('\n');
    }
    out.push_str("Assistant:");
    if matches!(mode, Mode::Call(_)) {
        out.push(' ');
        out.push_str(CALL_OPEN);
    }
    out
}

/// The stop sequences for free-text sampling: other turns, a call opening (when calls are allowed), and
/// whatever the request adds.
pub fn stops(request: &ChatRequest, mode: &Mode) -> Vec<String> {
    let mut stops: Vec<String> = TURN_STOPS.iter().map(|s| s.to_string()).collect();
    if mode == &Mode::TextOrCall {
        stops.push(CALL_OPEN.to_string());
    }
    stops.extend(request.stop.iter().filter(|s| !s.is_empty()).cloned());
    stops
}

/// One message as a transcript turn.
fn turn(m: &Message) -> String {
    match m.role {
        Role::User | Role::System => format!("User: {}", m.text().trim()),
        Role::Tool => format!("Output: {}", m.text().trim()),
        Role::Assistant => {
            let mut s = format!("Assistant: {}", m.text().trim());
            for call in &m.tool_calls {
                if !s.ends_with(' ') {
                    s.push(' ');
                }
                let args = if call.arguments.trim().is_empty() { "{}" } else { call.arguments.trim() };
                let name = serde_json::to_string(&call.name).unwrap_or_default();
                s.push_str(&format!("{CALL_OPEN}{{\"name\": {name}, \"arguments\": {args}}}{CALL_CLOSE}"));
            }
            s
        }
    }
}

/// The functions the assistant may call, and how a call is written.
fn describe_tools(tools: &[ToolSpec]) -> String {
    let mut s = format!(
        "The assistant may call these functions by writing {CALL_OPEN}{{\"name\": ..., \"arguments\": \
         {{...}}}}{CALL_CLOSE}; the user replies with the result.\n"
    );
    for t in tools {
        s.push_str(&format!("- {}: {} Parameters: {}\n", t.name, t.description.trim(), t.parameters));
    }
    s.truncate(s.trim_end().len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCall;
    use serde_json::json;

    fn tool(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: "Does things.".into(),
            parameters: json!({"type": "object", "properties": {"x": {"type": "integer"}}}),
        }
    }

    #[test]
    fn renders_turns_after_the_example_and_ends_at_the_assistant() {
        let mut reply = Message::assistant("Let me call it.");
        reply.tool_calls.push(ToolCall { id: "c1".into(), name: "f".into(), arguments: "{\"x\":1}".into() });
        let request = ChatRequest {
            messages: vec![
                Message::system("Be brief."),
                Message::user("What is 1+1?"),
                reply.clone(),
                Message::tool(&reply.tool_calls[0], "2"),
            ],
            ..Default::default()
        };
        let text = render(&request, &Mode::Text);
        assert!(text.starts_with(PREAMBLE));
        let real = text.split_once(EXAMPLE).unwrap().1;
        assert!(real.contains("Be brief.\n\nUser: What is 1+1?\n"));
        assert!(real.contains(
            "Assistant: Let me call it. <tool_call>{\"name\": \"f\", \"arguments\": {\"x\":1}}</tool_call>\n"
        ));
        assert!(real.ends_with("Output: 2\nAssistant:"));
    }

    #[test]
    fn modes_follow_tool_choice() {
        let mut request = ChatRequest { messages: vec![Message::user("hi")], ..Default::default() };
        assert_eq!(mode(&request), Mode::Text);
        request.tools = vec![tool("a"), tool("b")];
        assert_eq!(mode(&request), Mode::TextOrCall);
        request.tool_choice = Some(ToolChoice::None);
        assert_eq!(mode(&request), Mode::Text);
        request.tool_choice = Some(ToolChoice::Required);
        assert_eq!(mode(&request), Mode::Call(vec![tool("a"), tool("b")]));
        request.tool_choice = Some(ToolChoice::Function("b".into()));
        assert_eq!(mode(&request), Mode::Call(vec![tool("b")]));
    }

    #[test]
    fn forced_calls_open_the_call_and_auto_stops_at_it() {
        let request = ChatRequest {
            messages: vec![Message::user("hi")],
            tools: vec![tool("a")],
            stop: vec!["END".into()],
            ..Default::default()
        };
        let forced = Mode::Call(vec![tool("a")]);
        assert!(render(&request, &forced).ends_with("Assistant: <tool_call>"));
        assert!(render(&request, &Mode::TextOrCall).contains("- a: Does things."));
        let auto = stops(&request, &Mode::TextOrCall);
        assert!(auto.contains(&CALL_OPEN.to_string()) && auto.contains(&"END".to_string()));
        assert!(!stops(&request, &forced).contains(&CALL_OPEN.to_string()));
    }
}
