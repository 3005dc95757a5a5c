//! Prints what the embedded model says to a math problem and to a forced call (manual check).
use agentopt::llm::{ChatModel, ChatRequest, Message, ToolChoice, ToolSpec, local};
#[tokio::main]
async fn main() {
    let m = local::open("gemma", None).unwrap();
    let mut r = ChatRequest {
        messages: vec![Message::user(
            "Solve the problem with Python. Print results and put the final answer in \\boxed{}.\nProblem: What is 15% of 240?",
        )],
        temperature: Some(0.0),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let a = m.chat(&r).await.unwrap();
    println!("{:?}\n{:?} {:?}\n---", a.message.content, a.usage, t.elapsed());
    r.tools = vec![ToolSpec {
        name: "percent".into(),
        description: "Computes p percent of x.".into(),
        parameters: serde_json::json!({"type":"object","properties":{"p":{"type":"number"},"x":{"type":"number"}},"required":["p","x"]}),
    }];
    let t = std::time::Instant::now();
    let a = m.chat(&r).await.unwrap();
    println!("{:?} {:?}\n{:?} {:?}\n---", a.message.content, a.message.tool_calls, a.usage, t.elapsed());
    r.tool_choice = Some(ToolChoice::Required);
    let a = m.chat(&r).await.unwrap();
    println!("{:?} {:?}\n{:?}", a.message.content, a.message.tool_calls, a.usage);
}
