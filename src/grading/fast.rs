//! The fast, pure-Rust decision on two normalised answers: numbers (integers, decimals, fractions,
//! mixed numbers, repeating decimals; exact where they fit), closed forms by value (`3\sqrt{2}`), base
//! numerals, multiple-choice letters, and the shape of tuples, intervals, sets and lists.
//! It answers only when sure; everything else goes to math-verify.

use super::normalize::{has_free_letter, split_top_level};
use crate::record::GradedBy;

/// What the fast path concluded, and which rule decided (`Verdict::decided_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Equal(GradedBy),
    NotEqual(GradedBy),
    Unknown,
}

/// Relative tolerance when a decimal is involved (`0.3333333` vs `\frac{1}{3}`).
const REL_TOL: f64 = 1e-6;

/// Compares two normalised answers.
pub fn compare(given: &str, reference: &str) -> Decision {
    if given == reference {
        return Decision::Equal(GradedBy::Normalized);
    }
    match (shape(given), shape(reference)) {
        (Shape::Atom(g), Shape::Atom(r)) => compare_atoms(g, r),
        (Shape::Ordered(go, gc, gi), Shape::Ordered(ro, rc, ri)) => {
            if go != ro || gc != rc || gi.len() != ri.len() {
                return Decision::NotEqual(GradedBy::Structure);
            }
            let mut all_equal = true;
            for (g, r) in gi.iter().zip(&ri) {
                match compare(g, r) {
                    Decision::NotEqual(_) => return Decision::NotEqual(GradedBy::Structure),
                    Decision::Unknown => all_equal = false,
                    Decision::Equal(_) => {}
                }
            }
            if all_equal { Decision::Equal(GradedBy::Structure) } else { Decision::Unknown }
        }
        (Shape::Unordered(gi), Shape::Unordered(ri)) => compare_unordered(&gi, &ri),
        // A plain number is never a tuple, interval, set or list of two or more.
        (Shape::Atom(a), Shape::Ordered(..) | Shape::Unordered(_))
        | (Shape::Ordered(..) | Shape::Unordered(_), Shape::Atom(a))
            if Number::parse(a).is_some() =>
        {
            Decision::NotEqual(GradedBy::Structure)
        }
        _ => Decision::Unknown,
    }
}

fn compare_atoms(g: &str, r: &str) -> Decision {
    // Base numerals (`4210_{5}`): math-verify reads the subscript as an index and ignores it.
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    match (base_numeral(g), base_numeral(r)) {
        (Some(a), Some(b)) => return decide(a == b, GradedBy::Normalized),
        // The base is stated in the problem, so `1011` answers `1011_2`.
        (Some((digits, _)), None) if plain(r) => return decide(digits == r, GradedBy::Normalized),
        (None, Some((digits, _))) if plain(g) => return decide(digits == g, GradedBy::Normalized),
        _ => {}
    }
    if let (Some(a), Some(b)) = (Number::parse(g), Number::parse(r)) {
        return if a.equals(&b) {
            Decision::Equal(GradedBy::Numeric)
        } else {
            Decision::NotEqual(GradedBy::Numeric)
        };
    }
    if let (Some(a), Some(b)) = (super::evaluate::evaluate(g), super::evaluate::evaluate(r)) {
        // Floats: clearly equal or clearly different decide; a near miss goes to math-verify.
        let (diff, scale) = ((a - b).abs(), a.abs().max(b.abs()).max(1e-300));
        // Beyond 1e6 a float cannot tell `10^{15}+1` from `10^{15}`: only a clear difference decides.
        if diff <= 1e-12 * scale && scale < 1e6 {
            return Decision::Equal(GradedBy::Numeric);
        }
        if diff > REL_TOL * scale {
            return Decision::NotEqual(GradedBy::Numeric);
        }
        return Decision::Unknown;
    }
    // A number never equals an expression in a free variable, a word, or a matrix.
    let is_number = |s: &str| Number::parse(s).is_some() || super::evaluate::evaluate(s).is_some();
    if (is_number(g) && has_free_letter(r)) || (is_number(r) && has_free_letter(g)) {
        return Decision::NotEqual(GradedBy::Numeric);
    }
    if let (Some(a), Some(b)) = (choice_letter(g), choice_letter(r)) {
        return if a == b {
            Decision::Equal(GradedBy::Normalized)
        } else {
            Decision::NotEqual(GradedBy::Normalized)
        };
    }
    Decision::Unknown
}

/// Sets and "all solutions" lists: every element matched once, in any order.
fn compare_unordered(given: &[&str], reference: &[&str]) -> Decision {
    if given.len() != reference.len() {
        return Decision::NotEqual(GradedBy::Structure);
    }
    let mut used = vec![false; reference.len()];
    let mut unsure = false;
    for g in given {
        let mut matched = false;
        for (j, r) in reference.iter().enumerate() {
            if used[j] {
                continue;
            }
            match compare(g, r) {
                Decision::Equal(_) => {
                    used[j] = true;
                    matched = true;
                    break;
                }
                Decision::Unknown => unsure = true,
                Decision::NotEqual(_) => {}
            }
        }
        if !matched && !unsure {
            return Decision::NotEqual(GradedBy::Structure);
        }
    }
    if used.iter().all(|u| *u) { Decision::Equal(GradedBy::Structure) } else { Decision::Unknown }
}

fn decide(equal: bool, by: GradedBy) -> Decision {
    if equal { Decision::Equal(by) } else { Decision::NotEqual(by) }
}

/// `4210_{5}`, `1011_2`, `A3_{16}` → (digits, base).
fn base_numeral(s: &str) -> Option<(&str, u32)> {
    let (digits, base) = s.split_once('_')?;
    let base = base.strip_prefix('{').and_then(|b| b.strip_suffix('}')).unwrap_or(base);
    let valid = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
    valid.then_some(())?;
    Some((digits, base.parse().ok().filter(|b| (2..=36).contains(b))?))
}

/// `(A)`, `A` → `A`: a lone capital letter, as multiple-choice answers are written.
fn choice_letter(s: &str) -> Option<char> {
    let inner = s.strip_prefix('(').and_then(|x| x.strip_suffix(')')).unwrap_or(s);
    let mut chars = inner.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_uppercase() => Some(c),
        _ => None,
    }
}

#[derive(Debug)]
enum Shape<'a> {
    Atom(&'a str),
    /// A tuple or interval: opening and closing bracket matter, and so does order.
    Ordered(char, char, Vec<&'a str>),
    /// `\{..\}` or a bare comma list.
    Unordered(Vec<&'a str>),
}

fn shape(s: &str) -> Shape<'_> {
    if let Some(inner) = s.strip_prefix("\\{").and_then(|x| x.strip_suffix("\\}"))
        && encloses(inner)
    {
        return Shape::Unordered(split_top_level(inner, ','));
    }
    let (first, last) = (s.chars().next(), s.chars().last());
    if let (Some(open @ ('(' | '[')), Some(close @ (')' | ']'))) = (first, last)
        && s.len() >= 2
        && encloses(&s[1..s.len() - 1])
    {
        let inner = &s[1..s.len() - 1];
        let items = split_top_level(inner, ',');
        if items.len() >= 2 {
            return Shape::Ordered(open, close, items);
        }
        if open == '(' && close == ')' {
            return shape(inner); // `(5)` is `5`, `(A)` is `A`
        }
        return Shape::Atom(s);
    }
    let items = split_top_level(s, ',');
    if items.len() >= 2 { Shape::Unordered(items) } else { Shape::Atom(s) }
}

/// True when `inner` never closes more brackets than it opened (so the outer pair really wraps it).
fn encloses(inner: &str) -> bool {
    let mut depth = 0i32;
    let mut escaped = false;
    for c in inner.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

/// A number written as an integer, decimal, `a/b`, `\frac{a}{b}` or mixed `2\frac{1}{2}`: kept exact
/// (as a fraction) when it fits, with a float for the tolerant comparison.
#[derive(Debug, Clone, Copy)]
struct Number {
    exact: Option<(i128, i128)>,
    value: f64,
    decimal: bool,
}

impl Number {
    fn parse(s: &str) -> Option<Number> {
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let n = Number::parse_unsigned(body)?;
        Some(if negative { n.negate() } else { n })
    }

    fn parse_unsigned(s: &str) -> Option<Number> {
        if let Some((head, repeat)) = s.strip_suffix('}').and_then(|x| x.split_once("\\overline{")) {
            return Number::repeating(head, repeat);
        }
        if let Some(at) = s.find("\\frac{") {
            let whole = if at == 0 { None } else { Some(Number::decimal(&s[..at])?) };
            let (num, den) = frac_args(&s[at + 5..])?;
            let frac = Number::parse(num)?.divide(&Number::parse(den)?)?;
            return match whole {
                None => Some(frac),
                // A mixed number: `2\frac{1}{2}` is 2½; both parts must be plain.
                Some(w) if w.exact.is_some_and(|(_, d)| d == 1) && frac.value >= 0.0 => Some(w.add(&frac)),
                Some(_) => None,
            };
        }
        if let Some((a, b)) = s.split_once('/').filter(|(_, b)| !b.contains('/')) {
            return Number::parse(a)?.divide(&Number::parse(b)?);
        }
        Number::decimal(s)
    }

    /// `0.1\overline{6}` = 0.1666… = 1/6: the fixed part plus the repeating digits over `9…9·10^k`.
    fn repeating(head: &str, repeat: &str) -> Option<Number> {
        // Normalisation turns `0.\overline{3}` into `0\overline{3}`: no point means no fixed digits.
        let (int, fixed) = head.split_once('.').unwrap_or((head, ""));
        if repeat.is_empty() || !repeat.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let base = Number::decimal(&format!("{}.{fixed}0", if int.is_empty() { "0" } else { int }))?;
        let nines = 10i128.checked_pow(repeat.len() as u32)? - 1;
        let den = nines.checked_mul(10i128.checked_pow(fixed.len() as u32)?)?;
        let tail = Number {
            exact: Some((repeat.parse().ok()?, den)),
            value: repeat.parse::<f64>().ok()? / den as f64,
            decimal: false,
        };
        let sum = base.add(&tail);
        Some(Number { decimal: false, ..sum })
    }

    fn decimal(s: &str) -> Option<Number> {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == '.') || s.matches('.').count() > 1 {
            return None;
        }
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let value: f64 = s.parse().ok()?;
        let digits = format!("{int}{frac}");
        let exact = digits.parse::<i128>().ok().zip(10i128.checked_pow(frac.len() as u32));
        Some(Number { exact, value, decimal: !frac.is_empty() })
    }

    fn negate(self) -> Number {
        Number { exact: self.exact.map(|(n, d)| (-n, d)), value: -self.value, ..self }
    }

    fn divide(&self, other: &Number) -> Option<Number> {
        if other.value == 0.0 {
            return None;
        }
        let exact = match (self.exact, other.exact) {
            (Some((a, b)), Some((c, d))) => a.checked_mul(d).zip(b.checked_mul(c)),
            _ => None,
        };
        Some(Number { exact, value: self.value / other.value, decimal: self.decimal || other.decimal })
    }

    fn add(&self, other: &Number) -> Number {
        let exact = match (self.exact, other.exact) {
            (Some((a, b)), Some((c, d))) => {
                (|| Some((a.checked_mul(d)?.checked_add(c.checked_mul(b)?)?, b.checked_mul(d)?)))()
            }
            _ => None,
        };
        Number { exact, value: self.value + other.value, decimal: self.decimal || other.decimal }
    }

    fn equals(&self, other: &Number) -> bool {
        if let (Some((a, b)), Some((c, d))) = (self.exact, other.exact)
            && let (Some(l), Some(r)) = (a.checked_mul(d), c.checked_mul(b))
        {
            // a/b = c/d  ⇔  a·d = c·b for non-zero b, d, whatever their signs.
            let same = l == r;
            if same || !(self.decimal || other.decimal) {
                return same;
            }
        }
        let scale = self.value.abs().max(other.value.abs());
        (self.value - other.value).abs() <= REL_TOL * scale
    }
}

/// `{a}{b}` after `\frac`, and nothing after it.
fn frac_args(s: &str) -> Option<(&str, &str)> {
    let a = super::extract::balanced(s.strip_prefix('{')?)?;
    let rest = &s[a.len() + 2..];
    let b = super::extract::balanced(rest.strip_prefix('{')?)?;
    if rest.len() != b.len() + 2 {
        return None;
    }
    Some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse() {
        let v = |s: &str| Number::parse(s).map(|n| n.value);
        assert_eq!(v("2\\frac{1}{2}"), Some(2.5));
        assert_eq!(v("-\\frac{3}{4}"), Some(-0.75));
        assert_eq!(v("\\frac{-3}{4}"), Some(-0.75));
        assert_eq!(v("6/4"), Some(1.5));
        assert_eq!(v("0.125"), Some(0.125));
        assert_eq!(v("\\frac{\\pi}{2}"), None);
        assert_eq!(v("x"), None);
        assert_eq!(v("1/0"), None);
        assert_eq!(v("\\frac{1}{2}x"), None);
        assert_eq!(compare("0.\\overline{3}", "\\frac{1}{3}"), Decision::Equal(GradedBy::Numeric));
        assert_eq!(compare("0.1\\overline{6}", "\\frac{1}{6}"), Decision::Equal(GradedBy::Numeric));
        assert_eq!(compare("1.\\overline{27}", "\\frac{14}{11}"), Decision::Equal(GradedBy::Numeric));
        assert_eq!(compare("0.\\overline{3}", "0.3"), Decision::NotEqual(GradedBy::Numeric));
    }

    #[test]
    fn big_integers_compare_exactly() {
        assert_eq!(
            compare("123456789012345678", "123456789012345679"),
            Decision::NotEqual(GradedBy::Numeric)
        );
    }

    #[test]
    fn closed_forms_compare_by_value() {
        assert_eq!(compare("\\sqrt{18}", "3\\sqrt{2}"), Decision::Equal(GradedBy::Numeric));
        assert_eq!(compare("\\sqrt{13}", "20"), Decision::NotEqual(GradedBy::Numeric));
        assert_eq!(compare("10^{15}+1", "10^{15}"), Decision::Unknown);
        assert_eq!(compare("9c+6", "24"), Decision::NotEqual(GradedBy::Numeric));
        assert_eq!(
            compare("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\sqrt{5}"),
            Decision::NotEqual(GradedBy::Numeric)
        );
        assert_eq!(compare("e^2", "7.389"), Decision::Unknown);
        assert_eq!(compare("\\infty", "5"), Decision::Unknown);
        assert_eq!(compare("2\\frac{1}{2}", "\\frac{5}{2}"), Decision::Equal(GradedBy::Numeric));
    }

    #[test]
    fn base_numerals() {
        assert_eq!(compare("4210_{5}", "4210_{7}"), Decision::NotEqual(GradedBy::Normalized));
        assert_eq!(compare("1011_{2}", "1011_2"), Decision::Equal(GradedBy::Normalized));
        assert_eq!(compare("1011", "1011_2"), Decision::Equal(GradedBy::Normalized));
        assert_eq!(compare("11", "1011_2"), Decision::NotEqual(GradedBy::Normalized));
    }

    #[test]
    fn shapes() {
        assert!(matches!(shape("(1,2)"), Shape::Ordered('(', ')', _)));
        assert!(matches!(shape("(1,2)\\cup(3,4)"), Shape::Atom(_)));
        assert!(matches!(shape("(x+1)(x-1)"), Shape::Atom(_)));
        assert!(matches!(shape("\\{1,2\\}"), Shape::Unordered(_)));
        assert!(matches!(shape("1,2,3"), Shape::Unordered(_)));
    }
}
