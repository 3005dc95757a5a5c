//! Readings the one-sided normaliser cannot make: a bare answer found in a sentence (`Answer: 5`,
//! `\[ 5 \]`, `So $y \leq 2$ holds.`), and equalities that need both answers to be seen at once
//! (`25\%` is `0.25` only when the other side is that fraction; `3,5` is `3.5` only when the other
//! side is a decimal). Each returns only what it is sure of; everything else falls through.

use super::fast::{self, Decision};

/// The answer in a box-less response: the rest of an `Answer:` line, the one display-math block,
/// the one inline-math segment of an otherwise number-free sentence, or the text itself.
pub fn bare_answer(text: &str) -> &str {
    let t = text.trim();
    if let Some(rest) = answer_line(t) {
        return rest;
    }
    for (open, close) in [("\\[", "\\]"), ("$$", "$$")] {
        if let Some(inner) = only_segment(t, open, close) {
            return inner;
        }
    }
    if let Some(inner) = only_segment(t, "$", "$") {
        let outside = t.replacen(&format!("${inner}$"), "", 1);
        if !outside.contains(|c: char| c.is_ascii_digit() || c == '$' || c == '\\') {
            return inner;
        }
    }
    t
}

/// The rest of the last line starting `Answer:`, `Final answer:` or `The (final) answer is`.
fn answer_line(text: &str) -> Option<&str> {
    text.lines().rev().find_map(|line| {
        let l = line.trim().trim_start_matches(['*', '#', ' ']);
        let lower = l.to_ascii_lowercase();
        let prefix = ["final answer:", "answer:", "the final answer is", "the answer is"]
            .into_iter()
            .find(|p| lower.starts_with(p))?;
        let rest = l[prefix.len()..].trim_start_matches([':', '*', ' ']).trim();
        let rest = rest.strip_suffix('.').unwrap_or(rest).trim();
        (!rest.is_empty()).then_some(rest)
    })
}

/// The content of the only `open … close` segment of `text`, if there is exactly one.
fn only_segment<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    let after = start + len + close.len();
    let another = text[after..].contains(open);
    let inner = text[start..start + len].trim();
    (!another && !inner.is_empty()).then_some(inner)
}

/// Whether the raw answer is written as a percentage.
fn has_percent(raw: &str) -> bool {
    raw.contains('%')
}

/// `25\%` against `0.25` (either way round): equal when the percentage over 100 is the other
/// answer, which is no percentage itself. (`10\%` against `10` is the normaliser's: MATH drops
/// percent signs.)
pub fn percent_as_fraction(raw: (&str, &str), normalized: (&str, &str)) -> bool {
    let ((rg, rr), (ng, nr)) = (raw, normalized);
    let (percent, other) = match (has_percent(rg), has_percent(rr)) {
        (true, false) => (ng, nr),
        (false, true) => (nr, ng),
        _ => return false,
    };
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-');
    plain(percent)
        && matches!(fast::compare(&format!("\\frac{{{percent}}}{{100}}"), other), Decision::Equal(_))
}

/// `3,5` against `3.5` (either way round): a decimal comma, where the comma cannot be a thousands
/// separator (not three digits after it) and the other side is a decimal number.
pub fn decimal_comma(normalized: (&str, &str)) -> bool {
    let (g, r) = normalized;
    let comma_decimal = |s: &str| {
        let body = s.strip_prefix('-').unwrap_or(s);
        body.split_once(',').is_some_and(|(int, frac)| {
            let digits = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit());
            digits(int) && digits(frac) && frac.len() != 3
        })
    };
    let decimal = |s: &str| {
        let body = s.strip_prefix('-').unwrap_or(s);
        body.split_once('.').is_some_and(|(i, f)| {
            !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()) && i.chars().all(|c| c.is_ascii_digit())
        })
    };
    let (comma, other) = match (comma_decimal(g), comma_decimal(r)) {
        (true, false) if decimal(r) => (g, r),
        (false, true) if decimal(g) => (r, g),
        _ => return false,
    };
    matches!(fast::compare(&comma.replace(',', "."), other), Decision::Equal(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_answers_in_prose() {
        assert_eq!(bare_answer("Answer: 5"), "5");
        assert_eq!(bare_answer("Some work.\n**Final answer:** $\\frac{1}{2}$."), "$\\frac{1}{2}$");
        assert_eq!(bare_answer("The answer is 12."), "12");
        assert_eq!(bare_answer("Thus\n\\[ x = 4 \\]"), "x = 4");
        assert_eq!(bare_answer("So $y \\leq 2$ holds."), "y \\leq 2");
        // Two segments, or numbers outside the one: no single answer to take.
        assert_eq!(bare_answer("$x = 3$ or $x = 5$"), "$x = 3$ or $x = 5$");
        assert_eq!(bare_answer("With 3 steps, $x = 5$"), "With 3 steps, $x = 5$");
        assert_eq!(bare_answer("42"), "42");
    }

    #[test]
    fn percentages_and_decimal_commas_need_the_other_side() {
        assert!(percent_as_fraction(("25\\%", "0.25"), ("25", "0.25")));
        assert!(percent_as_fraction(("0.25", "25%"), ("0.25", "25")));
        assert!(!percent_as_fraction(("5\\%", "0.5"), ("5", "0.5")));
        assert!(!percent_as_fraction(("25\\%", "25\\%"), ("25", "25")));
        assert!(decimal_comma(("3,5", "3.5")));
        assert!(decimal_comma(("-0.25", "-0,25")));
        assert!(!decimal_comma(("12,345", "12.345")), "three digits: a thousands separator");
        assert!(!decimal_comma(("1,5", "15")), "the other side is no decimal");
        assert!(!decimal_comma(("3,5", "3.6")));
    }
}
