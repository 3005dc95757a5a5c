//! The built-in text metrics (`--metric exact|normalized|contains|numeric[:TOL]|choice`) as pure
//! functions of the answer and the reference. A reference that is a JSON list is a list of accepted
//! answers: the answer scores 1 when it matches any of them.

/// `exact`: identical after trimming surrounding whitespace.
pub fn exact(answer: &str, reference: &str) -> bool {
    answer.trim() == reference.trim()
}

/// `normalized`: identical after folding case, whitespace, surrounding quotes and trailing
/// punctuation (`"Paris."` equals `paris`).
pub fn normalized(answer: &str, reference: &str) -> bool {
    let (a, r) = (fold(answer), fold(reference));
    !r.is_empty() && a == r
}

/// `contains`: the folded reference occurs in the folded answer, on word boundaries (`4` is not
/// found in `42`, `cat` not in `concatenate`).
pub fn contains(answer: &str, reference: &str) -> bool {
    let (a, r) = (fold(answer), fold(reference));
    if r.is_empty() {
        return false;
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    a.match_indices(&r).any(|(at, _)| {
        let before = a[..at].chars().next_back();
        let after = a[at + r.len()..].chars().next();
        // A boundary is needed only where the reference itself starts or ends with a word character.
        (!word(r.chars().next()) || !word(before)) && (!word(r.chars().next_back()) || !word(after))
    })
}

/// Case, whitespace runs, surrounding quotes or markdown emphasis, and trailing punctuation folded.
pub fn fold(text: &str) -> String {
    let lowered = text.to_lowercase();
    let squeezed = lowered.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s = squeezed.as_str();
    loop {
        let before = s;
        s = s.trim_end_matches(['.', ',', ';', ':', '!', '?']).trim();
        for (open, close) in [("\"", "\""), ("'", "'"), ("**", "**"), ("*", "*"), ("`", "`")] {
            if s.len() >= open.len() + close.len() && s.starts_with(open) && s.ends_with(close) {
                s = s[open.len()..s.len() - close.len()].trim();
            }
        }
        if s == before {
            return s.to_string();
        }
    }
}

/// The default relative tolerance of `numeric`.
pub const DEFAULT_TOLERANCE: f64 = 1e-6;

/// `numeric[:TOL]`: the answer's number is within `tol` of the reference's, relative to the
/// reference (absolute when the reference is 0). The answer's number is the whole answer when it
/// is one (`1,234`, `$12.50`, `-3/4`, `25%`), else the last number in it ("The total is $18.").
pub fn numeric(answer: &str, reference: &str, tol: f64) -> Option<bool> {
    let r = parse_number(reference).or_else(|| last_number(reference))?;
    let a = parse_number(answer).or_else(|| last_number(answer))?;
    let diff = (a - r).abs();
    Some(if r == 0.0 { diff <= tol } else { diff <= tol * r.abs() })
}

/// A number written as a whole text: sign, `$`, thousands commas, decimals, exponent, a fraction
/// `a/b`, a trailing `%` (kept as written: `25%` is 25) and trailing punctuation.
pub fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim().trim_end_matches(['.', '!']).trim();
    let t = t.strip_suffix('%').unwrap_or(t).trim();
    let (sign, t) = match t.strip_prefix('-').or_else(|| t.strip_prefix('−')) {
        Some(rest) => (-1.0, rest.trim_start()),
        None => (1.0, t.strip_prefix('+').unwrap_or(t)),
    };
    let t = t.strip_prefix('$').unwrap_or(t).trim_start();
    if let Some((n, d)) = t.split_once('/') {
        let (n, d) = (plain_number(n.trim())?, plain_number(d.trim())?);
        return (d != 0.0).then(|| sign * n / d);
    }
    plain_number(t).map(|v| sign * v)
}

/// Digits with optional thousands commas (every group of three), one decimal point and an exponent.
fn plain_number(t: &str) -> Option<f64> {
    if t.is_empty() || !t.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(at) => (&t[..at], Some(&t[at + 1..])),
        None => (t, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let groups: Vec<&str> = int.split(',').collect();
    let grouped_ok = groups.len() == 1
        || (!groups[0].is_empty() && groups[0].len() <= 3 && groups[1..].iter().all(|g| g.len() == 3));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !grouped_ok
        || !groups.iter().all(|g| digits(g))
        || !digits(frac)
        || (int.is_empty() && frac.is_empty())
    {
        return None;
    }
    let mut text = groups.concat();
    if !frac.is_empty() {
        text.push('.');
        text.push_str(frac);
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix('+').unwrap_or(e);
        let ok = !e.is_empty() && e.strip_prefix('-').unwrap_or(e).chars().all(|c| c.is_ascii_digit());
        if !ok {
            return None;
        }
        text.push('e');
        text.push_str(e);
    }
    text.parse().ok()
}

/// The last number in running text (with its sign, `$` and thousands commas).
pub fn last_number(text: &str) -> Option<f64> {
    let chars: Vec<char> = text.chars().collect();
    let mut end = chars.len();
    while end > 0 {
        if !chars[end - 1].is_ascii_digit() {
            end -= 1;
            continue;
        }
        let mut start = end;
        while start > 0 {
            let c = chars[start - 1];
            let inner = c.is_ascii_digit()
                || ((c == ',' || c == '.') && start >= 2 && chars[start - 2].is_ascii_digit());
            if !inner {
                break;
            }
            start -= 1;
        }
        let negative = start > 0
            && matches!(chars[start - 1], '-' | '−')
            && (start < 2 || !chars[start - 2].is_alphanumeric());
        let token: String = chars[start..end].iter().collect();
        // A sentence's full stop or a list's comma after the number is not part of it.
        let token = token.trim_end_matches([',', '.']);
        if let Some(v) = plain_number(token) {
            return Some(if negative { -v } else { v });
        }
        end = start;
    }
    None
}

/// `choice`: the multiple-choice letter (A–E) of the answer equals the reference's.
pub fn choice(answer: &str, reference: &str) -> Option<bool> {
    Some(choice_letter(answer)? == choice_letter(reference)?)
}

/// The letter of `B`, `(B)`, `B.`, `B)`, `\text{(B)}`, `**B**`, or of a sentence ending on one
/// ("The answer is (C)."); `None` when none stands alone.
pub fn choice_letter(text: &str) -> Option<char> {
    let t = text.trim();
    let t = t.strip_prefix("\\text{").and_then(|s| s.strip_suffix('}')).unwrap_or(t);
    let bare = fold(t).to_uppercase();
    let bare = bare.trim_matches(|c: char| matches!(c, '(' | ')' | '[' | ']' | ' '));
    if let [c @ 'A'..='E'] = bare.chars().collect::<Vec<_>>()[..] {
        return Some(c);
    }
    // In a sentence: the last letter A–E standing alone, in parentheses or as a word.
    let chars: Vec<char> = t.chars().collect();
    (0..chars.len()).rev().find_map(|i| {
        let c = chars[i];
        if !matches!(c, 'A'..='E') {
            return None;
        }
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        let boundary = |x: Option<char>| x.is_none_or(|x| !x.is_alphanumeric());
        let parenthesized = before == Some('(') && after == Some(')');
        // A capital standing alone ("answer is C.") but not the article-like "A " mid-sentence.
        let alone = boundary(before) && boundary(after) && (c != 'A' || after != Some(' '));
        (parenthesized || alone).then_some(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_normalized() {
        assert!(exact(" Paris\n", "Paris"));
        assert!(!exact("paris", "Paris"));
        assert!(normalized("  \"Paris.\" ", "paris"));
        assert!(normalized("**New   York**", "new york"));
        assert!(!normalized("Paris, France", "paris"));
        assert!(!normalized("", ""));
    }

    #[test]
    fn contains_on_word_boundaries() {
        assert!(contains("The capital is Paris.", "paris"));
        assert!(!contains("It is 42", "4"));
        assert!(contains("It is 4.", "4"));
        assert!(!contains("concatenate", "cat"));
        assert!(contains("x = -3", "-3"));
        assert!(!contains("anything", ""));
    }

    #[test]
    fn numbers_parse_as_written() {
        assert_eq!(parse_number("1,234"), Some(1234.0));
        assert_eq!(parse_number("$12.50"), Some(12.5));
        assert_eq!(parse_number("-3/4"), Some(-0.75));
        assert_eq!(parse_number("25%"), Some(25.0));
        assert_eq!(parse_number("1e-3"), Some(0.001));
        assert_eq!(parse_number("12,34"), None);
        assert_eq!(parse_number("abc"), None);
        assert_eq!(last_number("The total is $1,250.75."), Some(1250.75));
        assert_eq!(last_number("from 3 to -7, done"), Some(-7.0));
        assert_eq!(last_number("x-7"), Some(7.0));
        assert_eq!(last_number("no digits"), None);
    }

    #[test]
    fn numeric_tolerance_is_relative() {
        assert_eq!(numeric("18", "18", DEFAULT_TOLERANCE), Some(true));
        assert_eq!(numeric("So she makes $18 every day.", "18", DEFAULT_TOLERANCE), Some(true));
        assert_eq!(numeric("18.0000001", "18", DEFAULT_TOLERANCE), Some(true));
        assert_eq!(numeric("18.1", "18", DEFAULT_TOLERANCE), Some(false));
        assert_eq!(numeric("18.1", "18", 0.01), Some(true));
        assert_eq!(numeric("0.0000001", "0", DEFAULT_TOLERANCE), Some(true));
        assert_eq!(numeric("1,000", "1000", DEFAULT_TOLERANCE), Some(true));
        assert_eq!(numeric("none", "1000", DEFAULT_TOLERANCE), None);
    }

    #[test]
    fn choice_letters() {
        for given in ["B", "(B)", "b", "B.", "\\text{(B)}", "**B**", "The answer is (B).", "Answer: B"] {
            assert_eq!(choice_letter(given), Some('B'), "{given}");
        }
        assert_eq!(choice_letter("A"), Some('A'));
        assert_eq!(choice_letter("F"), None);
        assert_eq!(choice_letter("A cat sat"), None);
        assert_eq!(choice(" (c) ", "C"), Some(true));
        assert_eq!(choice("D", "C"), Some(false));
        assert_eq!(choice("none of them", "C"), None);
    }
}
