//! Streaming a reply's text as it is generated (`chat --stream`). The caller scopes a `Sink` around
//! one model call; a backend that can stream finds it here and feeds it, and every wrapper between
//! (cache, fallback, retry, pricing, budget) passes through untouched. A reply served whole (a cache
//! hit, a backend that cannot stream) feeds nothing: the caller then shows the complete reply.

use std::future::Future;
use std::sync::Arc;

/// What a streaming backend reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// An attempt starts: text from an earlier, failed attempt is void.
    Start,
    /// The next piece of the reply's text.
    Text(&'a str),
}

pub type Sink = Arc<dyn Fn(Piece<'_>) + Send + Sync>;

tokio::task_local! {
    static SINK: Sink;
}

/// Runs `call` with `sink` receiving the text of the reply it streams.
pub async fn scope<F: Future>(sink: Sink, call: F) -> F::Output {
    SINK.scope(sink, call).await
}

/// The sink of the call being made, if its caller wants the text streamed.
pub fn current() -> Option<Sink> {
    SINK.try_with(Sink::clone).ok()
}

/// Splits a growing `text/event-stream` body into complete events as bytes arrive: `push` returns
/// the `data` payloads of the events completed by the new bytes.
#[derive(Debug, Default)]
pub struct EventSplitter {
    pending: String,
}

impl EventSplitter {
    pub fn push(&mut self, bytes: &str) -> Vec<String> {
        self.pending.push_str(&bytes.replace("\r\n", "\n"));
        let mut events = Vec::new();
        while let Some(end) = self.pending.find("\n\n") {
            let event: String = self.pending.drain(..end + 2).collect();
            events.extend(super::sse::data_events(&event));
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_come_out_whole() {
        let mut s = EventSplitter::default();
        assert!(s.push("data: {\"a\"").is_empty());
        assert_eq!(s.push(":1}\r\n\r\ndata: x\n"), vec!["{\"a\":1}"]);
        assert_eq!(s.push("\ndata: [DONE]\n\n"), vec!["x"]);
    }

    #[tokio::test]
    async fn the_sink_is_seen_only_inside_its_scope() {
        let seen = Arc::new(std::sync::Mutex::new(String::new()));
        let into = seen.clone();
        let sink: Sink = Arc::new(move |p| {
            if let Piece::Text(t) = p {
                into.lock().unwrap().push_str(t)
            }
        });
        assert!(current().is_none());
        scope(sink, async { current().unwrap()(Piece::Text("hi")) }).await;
        assert!(current().is_none());
        assert_eq!(*seen.lock().unwrap(), "hi");
    }
}
