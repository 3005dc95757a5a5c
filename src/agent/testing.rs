//! Test helpers over `llm::scripted::Scripted`: replies decided from the request alone, queues of
//! messages, a per-call price, and assistant messages holding several tool calls; and `Buf`, a
//! shared buffer standing in for the transcript's writer.

use crate::llm::scripted::{Scripted, reply};
use crate::llm::{ChatRequest, Error, Message, ToolCall, Usage};

/// A scripted model replying `respond(request)`, each call costing `usd`.
pub fn scripted(
    usd: f64,
    respond: impl Fn(&ChatRequest) -> Result<Message, Error> + Send + Sync + 'static,
) -> Scripted {
    Scripted::new(move |request, _| {
        let mut response = reply(respond(request)?);
        response.usage = Usage { calls: 1, input_tokens: 10, output_tokens: 5, usd };
        Ok(response)
    })
}

/// Replies in this order, then fails.
pub fn queue(messages: Vec<Message>) -> Scripted {
    Scripted::replies(messages)
}

/// An assistant message holding tool calls (ids `call_0`, `call_1`, …).
pub fn tool_calls(calls: &[(&str, &str)]) -> Message {
    let mut m = Message::assistant("");
    m.content = None;
    m.tool_calls = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| ToolCall {
            id: format!("call_{i}"),
            name: name.to_string(),
            arguments: args.to_string(),
        })
        .collect();
    m
}

/// A shared buffer standing in for stdout (the console's and the live stream's writer).
#[derive(Clone, Default)]
pub struct Buf(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Buf {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
