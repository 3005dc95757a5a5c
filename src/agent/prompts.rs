//! The texts of the assistant / math-proxy conversation (MathChat-style, after AG2's
//! `MathUserProxyAgent`, paraphrased).

/// The assistant's system message.
pub const ASSISTANT_SYSTEM: &str = "You are a helpful AI assistant who solves math problems. \
You can write Python code in ```python blocks for the user to run, and you can call the functions \
you are offered. When you know the final answer, put it in \\boxed{} and write no more code.";

/// The proxy's opening: how to work, then the problem text verbatim.
const OPENING: &str = "Let's use Python to solve a math problem.

Query requirements:
Always use the 'print' function to show results, and use fractions or radicals rather than decimals.
You may use packages such as sympy.
Write your code in this format:
```python
# your code
```

First state the key idea for solving the problem. You can solve it in one of three ways:
Case 1: If Python can solve the problem directly, write a program for it (enumerating cases if needed).
Case 2: If the problem is mostly reasoning, solve it yourself directly.
Case 3: Otherwise, work step by step:
1. Solve the problem step by step (without splitting it into too many steps).
2. Take out the queries Python can answer (calculations, equations) and ask them.
3. Wait for me to give you the results.
4. Continue if the results look right; if a result is invalid or unexpected, fix your query or reasoning.

When all queries have run and you have the answer, put the final answer in \\boxed{}.

Problem:
";

/// The first user message of a conversation.
pub fn opening(problem: &str) -> String {
    format!("{OPENING}{problem}")
}

/// The reply when the assistant neither ran code nor gave a boxed answer.
pub const CONTINUE: &str = "Continue. Please keep solving the problem until you need to query. (If you get to the answer, put it in \\boxed{}.)";

/// The reply when code ran but printed nothing.
pub const NO_OUTPUT: &str = "No output found. Make sure you print the results.";

/// Appended when a query's results repeat the previous ones.
pub const SAME_RESULT: &str = "Your query or result is the same as the last one; please try a new approach.";

/// Replaces the reply after repeated failing queries (AG2's invalid-query nudge).
pub const REVISIT: &str = "Please revisit the problem statement and your reasoning. If you think this step \
is correct, solve this step yourself and continue to the next step. Otherwise, correct this step.";

/// The tool reply for a function the registry does not hold.
pub fn unknown_function(name: &str) -> String {
    format!("Function {name} not found.")
}
