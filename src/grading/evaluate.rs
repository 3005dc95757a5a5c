//! A tiny evaluator for closed-form numeric LaTeX (`3\sqrt{2}`, `\frac{\pi}{4}`, `2^{10}-1`), so that
//! answers like `\sqrt{18}` vs `3\sqrt{2}` or `\sqrt{13}` vs `20` are settled without Python.
//! Anything it does not know (variables, `e`, `i`, functions, a mixed number) makes it give up.

/// The value of `s`, or `None` when `s` is not a closed-form real number this parser understands.
pub fn evaluate(s: &str) -> Option<f64> {
    let mut p = Parser { s: s.as_bytes(), at: 0 };
    let v = p.expr()?;
    (p.at == p.s.len() && v.is_finite()).then_some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, token: &str) -> bool {
        let t = token.as_bytes();
        let is_word = t.len() > 1 && t[0] == b'\\' && t[1].is_ascii_alphabetic();
        let next = self.s.get(self.at + t.len());
        // `\pi` must not match the start of `\pio`-like longer commands.
        if self.s[self.at..].starts_with(t) && !(is_word && next.is_some_and(u8::is_ascii_alphabetic)) {
            self.at += t.len();
            return true;
        }
        false
    }

    fn expr(&mut self) -> Option<f64> {
        let mut v = self.term()?;
        loop {
            if self.eat("+") {
                v += self.term()?;
            } else if self.eat("-") {
                v -= self.term()?;
            } else {
                return Some(v);
            }
        }
    }

    fn term(&mut self) -> Option<f64> {
        let mut v = self.unary()?;
        loop {
            if self.eat("\\cdot") || self.eat("\\times") || self.eat("*") {
                v *= self.unary()?;
            } else if self.eat("/") || self.eat("\\div") {
                v /= self.unary()?;
            } else if self.starts_atom() {
                v *= self.power()?; // implicit product: `3\sqrt{2}`, `2(1+\pi)`
            } else {
                return Some(v);
            }
        }
    }

    fn unary(&mut self) -> Option<f64> {
        if self.eat("-") {
            return Some(-self.unary()?);
        }
        if self.eat("+") {
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> Option<f64> {
        let base = self.atom()?;
        if !self.eat("^") {
            return Some(base);
        }
        let exponent = if self.peek() == Some(b'{') { self.group()? } else { self.digit()? };
        Some(base.powf(exponent))
    }

    fn starts_atom(&self) -> bool {
        match self.peek() {
            Some(c) if c.is_ascii_digit() || c == b'(' || c == b'{' || c == b'.' => true,
            Some(b'\\') => {
                ["\\frac", "\\sqrt", "\\pi"].iter().any(|t| self.s[self.at..].starts_with(t.as_bytes()))
            }
            _ => false,
        }
    }

    fn atom(&mut self) -> Option<f64> {
        match self.peek()? {
            b'{' => self.group(),
            b'(' => {
                self.at += 1;
                let v = self.expr()?;
                self.eat(")").then_some(v)
            }
            c if c.is_ascii_digit() || c == b'.' => {
                let start = self.at;
                while self.peek().is_some_and(|c| c.is_ascii_digit() || c == b'.') {
                    self.at += 1;
                }
                if self.s[self.at..].starts_with(b"\\frac") {
                    return None; // `2\frac{1}{2}` is a mixed number: left to the exact parser
                }
                std::str::from_utf8(&self.s[start..self.at]).ok()?.parse().ok()
            }
            _ if self.eat("\\frac") => {
                let num = self.group()?;
                Some(num / self.group()?)
            }
            _ if self.eat("\\sqrt") => {
                let index = if self.eat("[") {
                    let i = self.expr()?;
                    self.eat("]").then_some(i)?
                } else {
                    2.0
                };
                let radicand = self.group()?;
                (radicand >= 0.0).then(|| radicand.powf(1.0 / index))
            }
            _ if self.eat("\\pi") => Some(std::f64::consts::PI),
            _ => None,
        }
    }

    fn group(&mut self) -> Option<f64> {
        if !self.eat("{") {
            return None;
        }
        let v = self.expr()?;
        self.eat("}").then_some(v)
    }

    fn digit(&mut self) -> Option<f64> {
        let c = self.peek().filter(u8::is_ascii_digit)?;
        self.at += 1;
        Some(f64::from(c - b'0'))
    }
}

#[cfg(test)]
mod tests {
    use super::evaluate;

    #[test]
    fn closed_forms() {
        let close = |s: &str, want: f64| {
            let got = evaluate(s).unwrap_or_else(|| panic!("{s} did not evaluate"));
            assert!((got - want).abs() < 1e-12, "{s} = {got}, want {want}");
        };
        close("3\\sqrt{2}", 3.0 * 2f64.sqrt());
        close("\\sqrt{18}", 18f64.sqrt());
        close("\\frac{\\pi}{4}", std::f64::consts::FRAC_PI_4);
        close("2^{10}-1", 1023.0);
        close("-2(1+\\pi)", -2.0 - 2.0 * std::f64::consts::PI);
        close("\\sqrt[3]{27}", 3.0);
        close("\\frac{1+\\sqrt{5}}{2}", (1.0 + 5f64.sqrt()) / 2.0);
        close("2\\cdot3^2", 18.0);
    }

    #[test]
    fn gives_up_on_what_it_does_not_know() {
        for s in
            ["x+1", "e^2", "3+4i", "2\\frac{1}{2}", "\\sin(x)", "\\pix", "\\sqrt{-1}", "2^{2005}0", "(1,2)"]
        {
            assert_eq!(evaluate(s), None, "{s}");
        }
    }
}
