//! `chat --stream`: the assistant's reply printed as the model generates it, laid out exactly as the
//! transcript would print the whole reply (header, text trimmed, indented by delegation depth), so
//! that the console only adds what follows the text once the reply is complete.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::llm::Message;
use crate::llm::stream::{Piece, Sink};

/// The transcript's writer, shared by the console and the stream.
pub type Out = Arc<Mutex<Box<dyn Write + Send>>>;

pub struct Live {
    out: Out,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// The reply's text so far, as streamed by the current attempt.
    text: String,
    /// Whether the reply's header (and some text) is on screen.
    started: bool,
    /// Trailing whitespace held back: printed only once more text follows.
    pending: String,
    depth: usize,
    /// Whether the next character starts a line (and takes the depth's indent).
    line_start: bool,
}

impl State {
    fn write(&mut self, out: &mut dyn Write, text: &str) {
        let bar = "│   ".repeat(self.depth);
        for c in text.chars() {
            if self.line_start && self.depth > 0 {
                // As the whole-reply transcript does: a blank line keeps the bars, not their spaces.
                let _ = write!(out, "{}", if c == '\n' { bar.trim_end() } else { bar.as_str() });
            }
            let _ = write!(out, "{c}");
            self.line_start = c == '\n';
        }
        let _ = out.flush();
    }

    fn piece(&mut self, out: &mut dyn Write, piece: Piece<'_>) {
        match piece {
            Piece::Start => {
                if self.started {
                    // A failed attempt's text stays on screen; say that what follows replaces it.
                    self.write(out, "\n(the reply broke off; trying again)");
                }
                self.text.clear();
                self.pending.clear();
                self.started = false;
            }
            Piece::Text(text) => {
                self.text.push_str(text);
                if self.started {
                    self.pending.push_str(text);
                } else {
                    let trimmed = self.text.trim_start();
                    if trimmed.is_empty() {
                        return;
                    }
                    self.pending = trimmed.to_string();
                    self.line_start = true;
                    self.write(out, "\n── assistant ──\n");
                    self.started = true;
                }
                let shown = self.pending.trim_end().len();
                let now: String = self.pending.drain(..shown).collect();
                self.write(out, &now);
            }
        }
    }
}

impl Live {
    pub fn new(out: Out) -> Live {
        Live { out, state: Arc::default() }
    }

    /// The sink to scope around the assistant's model call.
    pub fn sink(&self) -> Sink {
        let (out, state) = (self.out.clone(), self.state.clone());
        Arc::new(move |piece| {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
            state.piece(&mut **out, piece);
        })
    }

    pub fn set_depth(&self, depth: usize) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).depth = depth;
    }

    /// Whether `reply`'s text is on screen already (streamed as it is); either way the stream is
    /// ready for the next reply.
    pub fn showed(&self, reply: &Message) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let showed = state.started && state.text.trim() == reply.text().trim();
        if state.started && !showed {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            state.write(&mut **out, "\n(the reply as received:)");
        }
        *state = State { depth: state.depth, ..State::default() };
        showed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::testing::Buf;

    fn live() -> (Live, Buf) {
        let buf = Buf::default();
        (Live::new(Arc::new(Mutex::new(Box::new(buf.clone())))), buf)
    }

    #[test]
    fn pieces_print_as_the_whole_reply_would_trimmed_and_indented() {
        let (live, buf) = live();
        let sink = live.sink();
        for p in [
            Piece::Start,
            Piece::Text("\n  "),
            Piece::Text("Hello"),
            Piece::Text(" there\n\n"),
            Piece::Text("x  \n"),
        ] {
            sink(p);
        }
        assert_eq!(buf.text(), "\n── assistant ──\nHello there\n\nx");
        assert!(live.showed(&Message::assistant("Hello there\n\nx")));
        live.set_depth(1);
        sink(Piece::Start);
        sink(Piece::Text("a\n\nb"));
        assert!(buf.text().ends_with("\n│   ── assistant ──\n│   a\n│\n│   b"), "{:?}", buf.text());
        assert!(!live.showed(&Message::assistant("other")), "a reply that differs is shown whole");
        assert!(buf.text().ends_with("(the reply as received:)"));
    }
}
