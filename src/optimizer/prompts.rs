//! The optimizer's instructions and its three AG2-compatible tool schemas (`add_function`,
//! `revise_function`, `remove_function`). Wording follows AG2's AgentOptimizer, paraphrased.

use serde_json::{Value, json};

use crate::llm::ToolSpec;
use crate::task::TaskKind;

/// The optimizer's system message: its job and the principles for each action.
pub const SYSTEM: &str = "You are a function optimizer. You maintain the list of Python functions \
offered to a math assistant, using the function lists tried so far and the real conversations between \
the assistant and a user who runs its code.

You can take one of four actions, using the tools you are given:
1. Revise one existing function (revise_function).
2. Remove one existing function (remove_function).
3. Add one new function (add_function).
4. Reply \"TERMINATE\" when the current function list needs no more changes.

Principles:
(1) Revising a function:
- Focus on the problems the assistant failed and the errors it met; fix the functions used there.
- A failed call can come from wrong arguments or from a wrong implementation: prefer making the
  implementation robust and easy to call correctly.
- Do not revise a function that works well and matters for solving the problems.
(2) Removing a function: only remove one that will not help with future problems.
(3) Adding a function:
- It must be general enough to be reused on future problems, or on one step of them.
- Prefer a function that answers a higher-level question than one specific query.
- Replace specific values and names by parameters; everything the function uses comes in as arguments.
- The code must define a Python function with exactly the given name; import what it needs inside it,
  and declare those packages.
Rejected function lists scored no better than the best one: do not propose them again.
One action per tool call; each call is checked, and an error message tells you what to fix.";

/// What the optimizer is told about the assistant its functions serve (`--task`).
#[derive(Debug, Clone, Default)]
pub struct Brief {
    pub kind: TaskKind,
    /// The assistant's system message, shown so the functions fit its task (`None`: not shown).
    pub system: Option<String>,
}

impl Brief {
    /// The optimizer's system message for this task: no MathChat wording outside the math task.
    pub fn system_message(&self) -> String {
        match self.kind {
            TaskKind::Math => SYSTEM.to_string(),
            TaskKind::General => SYSTEM.replace("offered to a math assistant", "offered to an assistant"),
        }
    }

    /// The section of the state message that quotes the assistant's instructions.
    pub fn section(&self) -> String {
        match &self.system {
            Some(system) => format!(
                "## The assistant's instructions (its system message; the functions serve this task)
```text
{}
```

",
                system.trim()
            ),
            None => String::new(),
        }
    }
}

/// The request that follows the state in the first user message.
pub const ASK: &str =
    "Propose your next action with one of the tools, or reply TERMINATE if no more changes are needed.";

/// Shown after an applied action, before asking again.
pub const ASK_AGAIN: &str = "Propose the next action, or reply TERMINATE if no more changes are needed.";

/// Tool reply when the step's action budget is used up.
pub fn limit_reached(limit: usize) -> String {
    format!("Not applied: this step already took its limit of {limit} actions.")
}

/// Tool reply for an invalid action that may be retried.
pub fn retry(error: &str, attempt: usize, attempts: usize) -> String {
    format!(
        "Error: {error}\nThe action was not applied (attempt {attempt} of {attempts}). Fix it and call the tool again."
    )
}

/// Tool reply for an invalid action given up on.
pub fn skipped(error: &str, attempts: usize) -> String {
    format!("Error: {error}\nThe action was not applied and is skipped after {attempts} attempts.")
}

fn function_properties() -> Value {
    json!({
        "name": {"type": "string", "description": "The function's name; the code must define a function with exactly this name."},
        "description": {"type": "string", "description": "A short description of what the function does, shown to the assistant."},
        "arguments": {"type": "string", "description": "JSON schema of the function's arguments, encoded as a JSON string: either the properties map, e.g. {\"n\": {\"type\": \"integer\", \"description\": \"how many\"}}, or a whole object schema with \"type\": \"object\" and \"properties\". Use only the types string, integer, number, boolean, array (with items) and object."},
        "packages": {"type": "string", "description": "The Python packages the function imports, separated by spaces (may be empty). A string, not a list."},
        "code": {"type": "string", "description": "Python source that defines the function (def name(...): ...), including the imports it needs."}
    })
}

fn function_tool(name: &str, description: &str) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters: json!({
            "type": "object",
            "properties": function_properties(),
            "required": ["name", "description", "arguments", "packages", "code"]
        }),
    }
}

/// The three tools offered to the optimizer model.
pub fn tools() -> Vec<ToolSpec> {
    vec![
        function_tool("add_function", "Add a new function to the assistant's function list."),
        function_tool("revise_function", "Replace an existing function (same name) with a revised version."),
        ToolSpec {
            name: "remove_function".into(),
            description: "Remove an existing function from the assistant's function list.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"name": {"type": "string", "description": "The name of the function to remove."}},
                "required": ["name"]
            }),
        },
    ]
}
