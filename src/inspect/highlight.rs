//! A small Python tokenizer for colouring learned functions: keywords, strings, comments, numbers,
//! builtins and the names being defined. It only has to look right, not parse: unknown text passes
//! through untouched, so the output always contains the source verbatim.

/// What a span of source is, for colouring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Keyword,
    Builtin,
    String,
    Comment,
    Number,
    /// The name after `def` or `class`.
    Definition,
    Decorator,
}

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def",
    "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
    "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

const BUILTINS: &[&str] = &[
    "abs",
    "all",
    "any",
    "bool",
    "dict",
    "enumerate",
    "float",
    "int",
    "isinstance",
    "len",
    "list",
    "map",
    "max",
    "min",
    "print",
    "range",
    "round",
    "set",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
    "self",
    "ValueError",
    "TypeError",
    "Exception",
    "ZeroDivisionError",
];

/// Splits Python source into coloured spans; concatenating the spans gives back the source.
pub fn tokenize(code: &str) -> Vec<(Kind, &str)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut plain_start = 0;
    let mut after_def = false;
    while i < bytes.len() {
        let c = bytes[i];
        let (kind, end) = if c == b'#' {
            (Kind::Comment, code[i..].find('\n').map_or(code.len(), |n| i + n))
        } else if let Some(end) = string_end(code, i) {
            (Kind::String, end)
        } else if c == b'@' && line_start(bytes, i) {
            (Kind::Decorator, i + 1 + word_len(&bytes[i + 1..]))
        } else if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            if i > 0 && is_word(bytes[i - 1]) {
                i += 1;
                continue;
            }
            (Kind::Number, i + number_len(&bytes[i..]))
        } else if is_word(c) && (i == 0 || !is_word(bytes[i - 1])) {
            let end = i + word_len(&bytes[i..]);
            let word = &code[i..end];
            let kind = if after_def {
                Kind::Definition
            } else if KEYWORDS.contains(&word) {
                Kind::Keyword
            } else if BUILTINS.contains(&word) {
                Kind::Builtin
            } else {
                Kind::Plain
            };
            after_def = word == "def" || word == "class";
            if kind == Kind::Plain {
                i = end;
                continue;
            }
            (kind, end)
        } else {
            if !c.is_ascii_whitespace() {
                after_def = false;
            }
            i += 1;
            continue;
        };
        if plain_start < i {
            out.push((Kind::Plain, &code[plain_start..i]));
        }
        out.push((kind, &code[i..end]));
        i = end;
        plain_start = end;
    }
    if plain_start < code.len() {
        out.push((Kind::Plain, &code[plain_start..]));
    }
    out
}

/// The source with ANSI colours (or unchanged when `color` is false).
pub fn highlight_ansi(code: &str, color: bool) -> String {
    if !color {
        return code.to_string();
    }
    let mut out = String::with_capacity(code.len() * 2);
    for (kind, text) in tokenize(code) {
        let sgr = match kind {
            Kind::Plain => {
                out.push_str(text);
                continue;
            }
            Kind::Keyword => "1;35",
            Kind::Builtin => "36",
            Kind::String => "32",
            Kind::Comment => "2;37",
            Kind::Number => "33",
            Kind::Definition => "1;34",
            Kind::Decorator => "35",
        };
        // Colour line by line so a multi-line string does not bleed into a pager's next line.
        for (n, line) in text.split('\n').enumerate() {
            if n > 0 {
                out.push('\n');
            }
            if !line.is_empty() {
                out.push_str(&format!("\x1b[{sgr}m{line}\x1b[0m"));
            }
        }
    }
    out
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn word_len(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&c| is_word(c)).count()
}

fn number_len(bytes: &[u8]) -> usize {
    let mut n = 0;
    while n < bytes.len() {
        let c = bytes[n];
        let exponent_sign = (c == b'+' || c == b'-') && n > 0 && matches!(bytes[n - 1], b'e' | b'E');
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
            n += 1;
        } else {
            break;
        }
    }
    n
}

fn line_start(bytes: &[u8], i: usize) -> bool {
    bytes[..i].iter().rev().take_while(|&&c| c != b'\n').all(|c| c.is_ascii_whitespace())
}

/// If a string literal (with optional r/b/f/u prefix) starts at `i`, where it ends.
fn string_end(code: &str, i: usize) -> Option<usize> {
    let bytes = code.as_bytes();
    if i > 0 && is_word(bytes[i - 1]) {
        return None;
    }
    let prefix = bytes[i..].iter().take_while(|c| b"rRbBfFuU".contains(c)).count();
    if prefix > 2 {
        return None;
    }
    let q = *bytes.get(i + prefix)?;
    if q != b'"' && q != b'\'' {
        return None;
    }
    let start = i + prefix;
    let triple = bytes.len() >= start + 3 && bytes[start + 1] == q && bytes[start + 2] == q;
    let delim_len = if triple { 3 } else { 1 };
    let mut j = start + delim_len;
    while j < bytes.len() {
        let c = bytes[j];
        // Even in raw strings a backslash keeps the next quote from closing the literal.
        if c == b'\\' {
            j += 2;
            continue;
        }
        if !triple && c == b'\n' {
            return Some(j);
        }
        if c == q && (!triple || (bytes.get(j + 1) == Some(&q) && bytes.get(j + 2) == Some(&q))) {
            return Some(j + delim_len);
        }
        j += 1;
    }
    Some(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "import math\n\n@cache\ndef roots(a, b=2.5e-3):\n    \"\"\"Doc 'q'.\"\"\"\n    s = f'{a}#x'  # note\n    return max(a, 10), r'\\d', x1\n";

    #[test]
    fn round_trips_and_classifies() {
        let tokens = tokenize(CODE);
        assert_eq!(tokens.iter().map(|(_, t)| *t).collect::<String>(), CODE);
        let find =
            |kind: Kind| tokens.iter().filter(|(k, _)| *k == kind).map(|(_, t)| *t).collect::<Vec<_>>();
        assert_eq!(find(Kind::Keyword), ["import", "def", "return"]);
        assert_eq!(find(Kind::Definition), ["roots"]);
        assert_eq!(find(Kind::Decorator), ["@cache"]);
        assert_eq!(find(Kind::Number), ["2.5e-3", "10"]);
        assert_eq!(find(Kind::Comment), ["# note"]);
        assert_eq!(find(Kind::String), ["\"\"\"Doc 'q'.\"\"\"", "f'{a}#x'", "r'\\d'"]);
        assert_eq!(find(Kind::Builtin), ["max"]);
    }

    #[test]
    fn plain_when_colour_is_off() {
        assert_eq!(highlight_ansi(CODE, false), CODE);
        let coloured = highlight_ansi(CODE, true);
        assert!(coloured.contains("\x1b[1;34mroots\x1b[0m"));
    }
}
