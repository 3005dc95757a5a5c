//! MATH-style answer normalisation: turns the many spellings of one answer into one string, so the
//! fast path can compare strings and numbers. Written for this project; each rule says which spelling
//! it folds.

use super::extract::balanced;

/// Words dropped when they trail a number (`18 square units`, `5 cm`). Kept short on purpose: a word
/// that is a real answer (a name, a day) must never be dropped.
const UNIT_WORDS: &[&str] = &[
    "unit", "units", "square", "sq", "cubic", "cm", "mm", "km", "m", "meter", "meters", "metre", "metres",
    "inch", "inches", "in", "foot", "feet", "ft", "yard", "yards", "mile", "miles", "degree", "degrees",
    "dollar", "dollars", "cent", "cents", "hour", "hours", "minute", "minutes", "second", "seconds", "day",
    "days", "week", "weeks", "year", "years", "mph", "pound", "pounds", "gram", "grams", "kg", "liter",
    "liters", "litre", "litres", "percent", "ways", "cm^2", "m^2", "cm^3", "in^2", "ft^2",
];

/// Words that scale a number: never a unit to drop (`3\text{ thousand}` is not 3).
const MULTIPLIERS: &[&str] = &[
    "hundred",
    "thousand",
    "million",
    "billion",
    "trillion",
    "dozen",
    "hundreds",
    "thousands",
    "millions",
    "billions",
];

/// Text-like wrappers: unwrapped, or dropped when they hold a trailing unit (`5\text{ cm}`).
const TEXT_COMMANDS: &[&str] = &[
    "\\text",
    "\\textnormal",
    "\\textsf",
    "\\textbf",
    "\\textrm",
    "\\textup",
    "\\textit",
    "\\mbox",
    "\\mathrm",
    "\\mathbf",
    "\\mathit",
    "\\boldsymbol",
];

/// Normalises one answer (already extracted from its box).
pub fn normalize(answer: &str) -> String {
    let mut s = drop_spacing_commands(strip_delimiters(answer.trim()));
    s = s.replace('\n', " ");
    // Commands whose spelling varies but whose meaning does not.
    for (from, to) in [
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\displaystyle", ""),
        ("{,}", ""), // `1{,}000`
        ("\\qquad", " "),
        ("\\quad", " "),
        ("~", " "),
        ("\\$", ""),
        ("$", ""),
        ("\\%", ""),
        ("%", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\circ", ""),
        ("\\degree", ""),
        ("°", ""),
        // Unicode spellings models sometimes emit.
        ("\u{2212}", "-"),
        ("π", "\\pi "),
        ("∞", "\\infty "),
        ("·", "\\cdot "),
        ("×", "\\times "),
        ("≤", "\\le "),
        ("≥", "\\ge "),
        ("<=", "\\le "),
        (">=", "\\ge "),
        ("\\leqslant", "\\le"),
        ("\\geqslant", "\\ge"),
        ("\\leq", "\\le"),
        ("\\geq", "\\ge"),
    ] {
        s = s.replace(from, to);
    }
    s = remove_left_right(&s);
    s = unwrap_text(&s);
    // "1 or 2", "1 and 2": lists of solutions.
    for sep in [" or ", " and ", ",or ", ",and "] {
        s = s.replace(sep, ",");
    }
    s = drop_trailing_units(&s);
    s = mixed_number(&s);
    s = squeeze_spaces(&s);
    s = brace_short_arguments(&s);
    s = s.trim_end_matches(['.', ',', ';']).to_string();
    // `\approx 3.14` commits to 3.14.
    if let Some(rest) = s.strip_prefix("\\approx").or_else(|| s.strip_prefix("\\sim")) {
        s = rest.trim_start().to_string();
    }
    s = fix_numbers(&s);
    if is_thousands_number(&s) {
        s = s.replace(',', "");
    }
    s = strip_variable_prefixes(&s);
    if is_thousands_number(&s) {
        s = s.replace(',', ""); // `x = 10,080`
    }
    s
}

/// `$..$`, `$$..$$`, `\(..\)`, `\[..\]` around the whole answer.
fn strip_delimiters(mut s: &str) -> &str {
    loop {
        let t = s.trim();
        let inner = [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")].iter().find_map(|(a, b)| {
            t.strip_prefix(a).and_then(|x| x.strip_suffix(b)).filter(|_| t.len() >= a.len() + b.len())
        });
        match inner {
            Some(i) => s = i,
            None => return t,
        }
    }
}

/// `\!`, `\,`, `\;`, `\:` vanish and `\ ` is a space; `\\` (a matrix row break) is kept whole.
fn drop_spacing_commands(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('!' | ',' | ';' | ':') => {}
            Some(' ') => out.push(' '),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `\left(` → `(`, `\right.` → nothing; `\leftarrow` and friends are left alone.
fn remove_left_right(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let cmd = ["\\left", "\\right"].into_iter().find(|c| {
            tail.starts_with(c) && !tail[c.len()..].starts_with(|ch: char| ch.is_ascii_alphabetic())
        });
        match cmd {
            Some(c) => {
                rest = &tail[c.len()..];
                if rest.starts_with('.') {
                    rest = &rest[1..]; // `\right.` is an invisible delimiter
                }
            }
            None => {
                out.push('\\');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `\text{(B)}` → `(B)`; `5\text{ cm}^2` → `5` (a trailing, purely alphabetic text after something is a unit).
fn unwrap_text(s: &str) -> String {
    let mut s = s.to_string();
    loop {
        let found = TEXT_COMMANDS
            .iter()
            .filter_map(|c| {
                let at = s.find(&format!("{c}{{"))?;
                Some((at, c.len()))
            })
            .min();
        let Some((at, len)) = found else { return s };
        let open = at + len + 1;
        let Some(content) = balanced(&s[open..]).map(str::to_string) else { return s };
        let mut end = open + content.len() + 1;
        let after = &s[end..];
        let power = ["^2", "^3", "^{2}", "^{3}"].into_iter().find(|p| after.starts_with(p));
        // Further unit groups may follow (`12\text{ kg}\text{ m}`): the run of them is the unit.
        let trailing = only_text_groups(after[power.map_or(0, str::len)..].trim().trim_end_matches('.'));
        let alphabetic = content.trim().chars().all(|c| c.is_alphabetic() || c == ' ' || c == '.');
        // Only after a quantity (`5`, `\frac{1}{2}`, `(3)`): `x = \text{east}` names an answer, not a unit.
        let after_quantity =
            s[..at].trim_end().ends_with(|c: char| c.is_ascii_digit() || matches!(c, '}' | ')' | ']'));
        let is_unit =
            trailing && alphabetic && after_quantity && !content.trim().is_empty() && !scales(&content);
        if is_unit {
            end += power.map_or(0, str::len);
            s = format!("{}{}", &s[..at], &s[end..]);
        } else {
            s = format!("{}{}{}", &s[..at], content, &s[end..]);
        }
    }
}

/// Whether `s` is nothing, or only alphabetic text groups (`\text{ m}\text{/s}` is not: `/`).
fn only_text_groups(mut s: &str) -> bool {
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return true;
        }
        let Some(c) = TEXT_COMMANDS.iter().find(|c| s.starts_with(&format!("{c}{{"))) else { return false };
        let Some(content) = balanced(&s[c.len() + 1..]) else { return false };
        if !content.chars().all(|c| c.is_alphabetic() || c == ' ' || c == '.') || scales(content) {
            return false;
        }
        s = &s[c.len() + 1 + content.len() + 1..];
    }
}

/// Whether a text holds a word that scales a number (`thousand`).
fn scales(text: &str) -> bool {
    text.split(|c: char| !c.is_alphabetic()).any(|w| MULTIPLIERS.contains(&w.to_lowercase().as_str()))
}

/// `2 1/3` → `2\frac{1}{3}` (a mixed number, which the exact parser reads as 7/3), before spaces are
/// squeezed into `21/3`.
fn mixed_number(s: &str) -> String {
    let t = s.trim();
    let (sign, body) = t.strip_prefix('-').map_or(("", t), |rest| ("-", rest.trim_start()));
    let digits = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit());
    if let Some((whole, frac)) = body.split_once(' ')
        && let Some((num, den)) = frac.trim().split_once('/')
        && digits(whole)
        && digits(num.trim())
        && digits(den.trim())
    {
        return format!("{sign}{whole}\\frac{{{}}}{{{}}}", num.trim(), den.trim());
    }
    s.to_string()
}

/// `18 square units` → `18` when what precedes the words holds a digit; after a lone number any
/// lowercase words go (`5 apples`, GSM8K style).
fn drop_trailing_units(s: &str) -> String {
    let mut words: Vec<&str> = s.trim().split(' ').filter(|w| !w.is_empty()).collect();
    let lone_number = words.first().is_some_and(|w| {
        w.contains(|c: char| c.is_ascii_digit())
            && w.chars().all(|c| c.is_ascii_digit() || ".,-/".contains(c))
    });
    let lowercase_words = words.len() > 1
        // Whole words only: a lone letter after a number is a variable or `i` (`2 i`), not a unit.
        && words[1..].iter().all(|w| {
            let w = w.trim_end_matches('.');
            w.len() >= 2 && w.chars().all(|c| c.is_ascii_lowercase())
        });
    if lone_number && lowercase_words && !words[1..].iter().any(|w| scales(w)) {
        words.truncate(1);
    }
    while words.len() > 1 {
        let last = words[words.len() - 1].trim_end_matches('.').to_lowercase();
        let rest_has_digit =
            words[..words.len() - 1].iter().any(|w| w.contains(|c: char| c.is_ascii_digit()));
        if UNIT_WORDS.contains(&last.as_str()) && rest_has_digit {
            words.pop();
        } else {
            break;
        }
    }
    words.join(" ")
}

/// Removes spaces, except one between a control word and a letter (`\pi r` must not become `\pir`).
fn squeeze_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_whitespace() {
            out.push(c);
            continue;
        }
        let next_is_letter =
            chars[i + 1..].iter().find(|c| !c.is_whitespace()).is_some_and(|c| c.is_ascii_alphabetic());
        if next_is_letter && ends_with_control_word(&out) && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out
}

fn ends_with_control_word(s: &str) -> bool {
    let letters = s.len() - s.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len();
    letters > 0 && s[..s.len() - letters].ends_with('\\')
}

/// `\frac12` → `\frac{1}{2}`, `\frac1{2}` → `\frac{1}{2}`, `\sqrt2` → `\sqrt{2}`.
fn brace_short_arguments(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    loop {
        let next = ["\\frac", "\\sqrt"].iter().filter_map(|c| rest.find(c).map(|at| (at, *c))).min();
        let Some((at, cmd)) = next else { break };
        out.push_str(&rest[..at + cmd.len()]);
        rest = &rest[at + cmd.len()..];
        if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue; // `\fracx`-like: some other command
        }
        let args = if cmd == "\\frac" { 2 } else { 1 };
        for _ in 0..args {
            rest = rest.trim_start_matches(' ');
            if rest.starts_with('{') {
                let Some(inner) = balanced(&rest[1..]) else { break };
                // Arguments may hold short forms themselves: `\frac{\sqrt2}{2}`.
                out.push('{');
                out.push_str(&brace_short_arguments(inner));
                out.push('}');
                rest = &rest[inner.len() + 2..];
            } else if rest.starts_with('[') {
                break; // `\sqrt[3]{x}`: leave as written
            } else if let Some(c) = rest.chars().next() {
                out.push('{');
                out.push(c);
                out.push('}');
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Number spellings: `.5` → `0.5`, `2.50` → `2.5`, `3.0` → `3`.
fn fix_numbers(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 2);
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit()
            || (chars[i] == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        let after_word = i > 0 && (chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '.');
        if !starts_number || after_word {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect();
        out.push_str(&tidy_decimal(&token));
    }
    out
}

fn tidy_decimal(token: &str) -> String {
    if token.matches('.').count() != 1 {
        return token.to_string();
    }
    let (int, frac) = token.split_once('.').unwrap_or((token, ""));
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") }
}

/// `1,000` or `12,345.5` as a whole answer (a list like `1,2` is not one).
fn is_thousands_number(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let int = body
        .split_once('.')
        .map_or(body, |(i, f)| if f.chars().all(|c| c.is_ascii_digit()) { i } else { "" });
    let groups: Vec<&str> = int.split(',').collect();
    groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3)
}

/// `x=3` → `3`, `k = 1, k = 2` → `1,2`, `x\in[1,2]` → `[1,2]`: a lone variable naming the answer.
fn strip_variable_prefixes(s: &str) -> String {
    let parts = split_top_level(s, ',');
    let stripped: Vec<String> = parts.iter().map(|p| strip_one_prefix(p).to_string()).collect();
    stripped.join(",")
}

fn strip_one_prefix(s: &str) -> &str {
    for op in ["=", "\\in"] {
        let Some((lhs, rhs)) = s.split_once(op) else { continue };
        if rhs.is_empty() || rhs.contains(['=', '<', '>']) || rhs.contains("\\le") || rhs.contains("\\ge") {
            continue;
        }
        // `y = 2x + 1` stays an equation (a line is not the expression `2x + 1`); `x = 3` and
        // `x = east` name their answer.
        let is_word = rhs.len() >= 2 && rhs.chars().all(|c| c.is_alphabetic());
        let names_value = !has_free_letter(rhs) || (is_word && op == "=");
        if is_lone_variable(lhs) && names_value {
            return rhs;
        }
    }
    s
}

/// A letter outside any `\command`, other than `e` and `i` (which may be constants).
pub(crate) fn has_free_letter(s: &str) -> bool {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            while chars.peek().is_some_and(char::is_ascii_alphabetic) {
                chars.next();
            }
        } else if c.is_alphabetic() && c != 'e' && c != 'i' {
            return true;
        }
    }
    false
}

/// `x`, `k`, `x_1`, `x_{2}`, `\theta`, and the names of a quantity: `ab`, `AB`, `f(3)`, `P(A)`.
fn is_lone_variable(s: &str) -> bool {
    let letters = |x: &str| (1..=3).contains(&x.len()) && x.chars().all(|c| c.is_ascii_alphabetic());
    if letters(s) {
        return true;
    }
    // A function at a point: `f(3)`, `g(-1)`, `P(A)` (an argument without `=` or a free variable
    // other than a single capital, so `f(x) = 2x` stays an equation).
    if let Some((name, args)) = s.strip_suffix(')').and_then(|x| x.split_once('('))
        && letters(name)
        && !args.is_empty()
        && !args.contains(['=', '(', ')'])
        && (!has_free_letter(args) || (args.len() == 1 && args.chars().all(|c| c.is_ascii_uppercase())))
    {
        return true;
    }
    is_single_variable(s)
}

fn is_single_variable(s: &str) -> bool {
    let base = s.split_once('_').map_or(s, |(b, _)| b);
    let sub_ok = s.split_once('_').is_none_or(|(_, sub)| {
        let sub = sub.trim_start_matches('{').trim_end_matches('}');
        !sub.is_empty() && sub.len() <= 3 && sub.chars().all(|c| c.is_ascii_alphanumeric())
    });
    let base_ok = (base.len() == 1 && base.chars().all(|c| c.is_ascii_alphabetic()))
        || matches!(base, "\\theta" | "\\alpha" | "\\beta" | "\\phi" | "\\lambda" | "\\mu");
    base_ok && sub_ok
}

/// Splits at `sep` outside any bracket or brace.
pub(crate) fn split_top_level(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            // `\{` opens a set; `\}` closes it.
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            continue;
        }
        match c {
            '\\' => escaped = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[track_caller]
    fn n(input: &str, want: &str) {
        assert_eq!(normalize(input), want, "normalize({input:?})");
    }

    #[test]
    fn fractions_and_commands() {
        n("\\dfrac{1}{2}", "\\frac{1}{2}");
        n("\\tfrac12", "\\frac{1}{2}");
        n("\\frac 1 2", "\\frac{1}{2}");
        n("\\frac1{10}", "\\frac{1}{10}");
        n("\\sqrt2", "\\sqrt{2}");
        n("\\sqrt[3]{2}", "\\sqrt[3]{2}");
        n("\\frac{\\sqrt2}2", "\\frac{\\sqrt{2}}{2}");
        n("\\approx 3.14", "3.14");
        n("\u{2212}5", "-5");
        n("2π", "2\\pi");
        n("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})");
        n("\\left\\{1,2\\right\\}", "\\{1,2\\}");
        n("\\pi r^2", "\\pi r^2");
        n("\\begin{pmatrix} -1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}-1\\\\2\\end{pmatrix}");
        n("10,\\!080", "10080");
        n("x = 10,\\!080", "10080");
        n("x = \\text{east}", "east");
    }

    #[test]
    fn units_money_percent_degrees() {
        n("30^\\circ", "30");
        n("30^{\\circ}", "30");
        n("30 degrees", "30");
        n("\\$5.00", "5");
        n("10\\%", "10");
        n("5\\text{ cm}^2", "5");
        n("18 square units", "18");
        n("5 apples", "5");
        n("2 i", "2i");
        n("2 or 3", "2,3");
        n("x apples", "xapples");
        n("\\text{(B)}", "(B)");
        n("\\text{Sunday}", "Sunday");
        n("\\mbox{ inches}", "inches");
    }

    #[test]
    fn numbers_and_prefixes() {
        n("1,000", "1000");
        n("1{,}000", "1000");
        n("1\\,000", "1000");
        n("-12,345.50", "-12345.5");
        n("1,2", "1,2");
        n(".5", "0.5");
        n("3.0", "3");
        n("x = 3", "3");
        n("k=1, k=2", "1,2");
        n("x_1 = 4", "4");
        n("x \\in [1,2]", "[1,2]");
        n("y = 2x + 1", "y=2x+1");
        n("x = \\frac{\\pi}{2}", "\\frac{\\pi}{2}");
        n("x+y=3", "x+y=3");
        n("x<3", "x<3");
        n("2 \\text{ or } 3", "2,3");
        n("5.", "5");
        n("$\\frac{3}{4}$", "\\frac{3}{4}");
    }
}
