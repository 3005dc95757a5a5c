//! HTML building blocks: escaping (every piece of run text is LLM- or user-written, so nothing is
//! inserted unescaped), template filling, and code and diff blocks.

use crate::inspect::diff::{LineKind, line_diff};
use crate::inspect::highlight::{Kind, tokenize};

/// Escapes text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces `{{name}}` markers in one pass, so inserted text is never scanned for markers again.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after
            .find("}}")
            .and_then(|end| values.iter().find(|(k, _)| *k == &after[..end]).map(|(_, v)| (end, v)))
        {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Python source as a highlighted, escaped `<pre>` block.
pub fn code_block(code: &str) -> String {
    let mut out = String::from("<pre class=\"code\">");
    for (kind, text) in tokenize(code) {
        let class = match kind {
            Kind::Plain => "",
            Kind::Keyword => "kw",
            Kind::Builtin => "bi",
            Kind::String => "str",
            Kind::Comment => "com",
            Kind::Number => "num",
            Kind::Definition => "def",
            Kind::Decorator => "kw",
        };
        if class.is_empty() {
            out.push_str(&escape(text));
        } else {
            out.push_str(&format!("<span class=\"{class}\">{}</span>", escape(text)));
        }
    }
    out.push_str("</pre>");
    out
}

/// A line diff of two texts as an escaped `<pre>` block, changed lines marked.
pub fn diff_block(old: &str, new: &str) -> String {
    let mut out = String::from("<pre class=\"diff\">");
    for line in line_diff(old, new) {
        let (class, sign) = match line.kind {
            LineKind::Equal => ("", ' '),
            LineKind::Delete => ("del", '-'),
            LineKind::Insert => ("ins", '+'),
        };
        let text = escape(&format!("{sign}{}", line.text));
        if class.is_empty() {
            out.push_str(&text);
            out.push('\n');
        } else {
            // Block-level spans: the newline would add an empty line after each.
            out.push_str(&format!("<span class=\"{class}\">{text}</span>"));
        }
    }
    out.push_str("</pre>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything() {
        assert_eq!(
            escape("<script>alert('x&y')</script>\""),
            "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;&quot;"
        );
        let block = code_block("s = '</pre><script>'");
        assert!(!block.contains("<script>") && block.contains("&lt;/pre&gt;"));
    }

    #[test]
    fn fills_once() {
        let out = fill("<t>{{title}}</t>{{body}}{{unknown}}", &[("title", "{{body}}"), ("body", "B")]);
        assert_eq!(out, "<t>{{body}}</t>B{{unknown}}");
    }
}
