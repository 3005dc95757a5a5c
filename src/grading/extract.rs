//! Answer extraction: the content of the last `\boxed{...}` / `\fbox{...}` of a response.

/// The content of the last non-empty `\boxed{...}` or `\fbox{...}` in `text`, with balanced braces
/// (escaped `\{` `\}` do not count), or of the brace-less `\boxed 5` form. `None` when there is none.
pub fn extract_boxed(text: &str) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for command in ["\\boxed", "\\fbox"] {
        for (at, _) in text.match_indices(command) {
            let rest = &text[at + command.len()..];
            if let Some(content) = box_argument(rest)
                && !content.trim().is_empty()
                && best.as_ref().is_none_or(|(b, _)| at > *b)
            {
                best = Some((at, content.trim().to_string()));
            }
        }
    }
    best.map(|(_, content)| content)
}

/// The argument after a box command: `{balanced}`, or a bare token after whitespace (`\boxed 5$`).
fn box_argument(rest: &str) -> Option<&str> {
    if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None; // a longer command such as `\boxedsymbol`, not a box
    }
    let trimmed = rest.trim_start();
    if let Some(inner) = trimmed.strip_prefix('{') {
        return balanced(inner);
    }
    if trimmed.len() == rest.len() {
        return None; // `\boxed5`-style text with no separator is not the brace-less form
    }
    let end = trimmed.find(|c: char| c.is_whitespace() || c == '$').unwrap_or(trimmed.len());
    Some(&trimmed[..end])
}

/// The text up to the `}` that closes an already-opened brace; `None` when it never closes.
pub(crate) fn balanced(inner: &str) -> Option<&str> {
    let mut depth = 1usize;
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next(); // an escaped character never opens or closes a group
            }
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&inner[..i]);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::extract_boxed;

    fn ex(s: &str) -> Option<String> {
        extract_boxed(s)
    }

    #[test]
    fn simple_and_nested() {
        assert_eq!(ex("so \\boxed{5}."), Some("5".into()));
        assert_eq!(ex("$\\boxed{\\frac{1}{2}}$"), Some("\\frac{1}{2}".into()));
        assert_eq!(ex("\\boxed{\\sqrt{\\frac{a}{b^{2}}}} done"), Some("\\sqrt{\\frac{a}{b^{2}}}".into()));
        assert_eq!(ex("\\boxed{\\{1,2\\}}"), Some("\\{1,2\\}".into()));
        assert_eq!(ex("\\boxed{\\left\\{ 3 \\right\\}}"), Some("\\left\\{ 3 \\right\\}".into()));
    }

    #[test]
    fn last_box_wins() {
        assert_eq!(ex("first \\boxed{1} then \\boxed{2} finally \\fbox{3} text"), Some("3".into()));
        assert_eq!(ex("\\fbox{3} and later \\boxed{4}"), Some("4".into()));
        assert_eq!(ex("\\boxed{7} and an empty \\boxed{} template"), Some("7".into()));
    }

    #[test]
    fn braceless_and_missing() {
        assert_eq!(ex("$\\boxed 5$"), Some("5".into()));
        assert_eq!(ex("answer: \\boxed 12 apples"), Some("12".into()));
        assert_eq!(ex("the answer is 5"), None);
        assert_eq!(ex("\\boxed{unclosed"), None);
        assert_eq!(ex("\\boxedsymbol{4}"), None);
        assert_eq!(ex(""), None);
    }
}
