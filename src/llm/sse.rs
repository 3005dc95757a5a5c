//! Server-sent events: split a finished `text/event-stream` body into its `data` payloads, for servers
//! that stream even when not asked to.

/// The `data` payload of each event, in order, without the final `[DONE]` marker. Multi-line data is
/// joined with newlines, comments (`:`) and other fields are skipped, CRLF is accepted.
pub fn data_events(body: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut current: Option<String> = None;
    for line in body.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            events.extend(current.take());
            continue;
        }
        let Some(data) = line.strip_prefix("data:") else { continue };
        let data = data.strip_prefix(' ').unwrap_or(data);
        match &mut current {
            Some(buffer) => {
                buffer.push('\n');
                buffer.push_str(data);
            }
            None => current = Some(data.to_string()),
        }
    }
    events.extend(current);
    events.retain(|event| event.trim() != "[DONE]");
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_and_drops_done() {
        let body = ": keep-alive\n\ndata: {\"a\":1}\n\nevent: x\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\n\n";
        assert_eq!(data_events(body), vec!["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn joins_multiline_data_and_keeps_an_unterminated_last_event() {
        assert_eq!(data_events("data: one\ndata: two\n\ndata:three"), vec!["one\ntwo", "three"]);
    }
}
