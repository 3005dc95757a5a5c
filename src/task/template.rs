//! `--opening FILE` templates: `{problem}` and any field of the dataset line by name (`{table}`)
//! are substituted; `{{` and `}}` write literal braces. The reference answer is never a field: the
//! assistant must not be told it.

use serde_json::Value;

use crate::dataset::Problem;

/// Fields a template may not use: they hold the reference answer.
const HIDDEN: [&str; 2] = ["answer", "solution"];

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    text: String,
}

/// A placeholder a problem cannot fill.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("field `{{{field}}}` is not in problem `{id}` (its fields: {known})")]
    Unknown { field: String, id: String, known: String },
    #[error("field `{{{field}}}` is the reference answer, which the assistant is never shown")]
    Hidden { field: String },
}

impl Template {
    pub fn new(text: impl Into<String>) -> Template {
        Template { text: text.into() }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The names of the `{field}` placeholders, in order of appearance.
    pub fn fields(&self) -> Vec<String> {
        pieces(&self.text)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Field(f) => Some(f.to_string()),
                Piece::Text(_) => None,
            })
            .collect()
    }

    /// Whether `problem` fills every placeholder.
    pub fn check(&self, problem: &Problem) -> Result<(), Error> {
        for field in self.fields() {
            if HIDDEN.contains(&field.as_str()) {
                return Err(Error::Hidden { field });
            }
            if value(problem, &field).is_none() {
                let mut known = vec!["problem".to_string(), "id".to_string()];
                known.extend(problem.subject.as_ref().map(|_| "subject".to_string()));
                known.extend(problem.level.map(|_| "level".to_string()));
                known.extend(problem.fields.keys().filter(|k| !HIDDEN.contains(&k.as_str())).cloned());
                return Err(Error::Unknown { field, id: problem.id.clone(), known: known.join(", ") });
            }
        }
        Ok(())
    }

    /// The template filled from `problem` (checked with `check` first; an unfillable placeholder is
    /// left as written).
    pub fn render(&self, problem: &Problem) -> String {
        let mut out = String::with_capacity(self.text.len() + problem.problem.len());
        for piece in pieces(&self.text) {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => match value(problem, f).filter(|_| !HIDDEN.contains(&f)) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(f);
                        out.push('}');
                    }
                },
            }
        }
        out
    }
}

fn value(problem: &Problem, field: &str) -> Option<String> {
    match field {
        "problem" | "question" => Some(problem.problem.clone()),
        "id" => Some(problem.id.clone()),
        "subject" => problem.subject.clone(),
        "level" => problem.level.map(|l| l.to_string()),
        other => problem.fields.get(other).map(|v| match v {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        }),
    }
}

enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

/// Splits a template into literal text and `{identifier}` placeholders; `{{`/`}}` are one brace, and
/// a brace not around an identifier is literal text.
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let doubled = i + 1 < bytes.len() && bytes[i + 1] == bytes[i];
        match bytes[i] {
            b'{' | b'}' if doubled => {
                out.push(Piece::Text(&text[start..i + 1]));
                i += 2;
                start = i;
            }
            b'{' => {
                let close = text[i + 1..].find('}').map(|n| i + 1 + n);
                match close.map(|c| &text[i + 1..c]) {
                    Some(name) if crate::functions::is_identifier(name) => {
                        out.push(Piece::Text(&text[start..i]));
                        out.push(Piece::Field(name));
                        i += name.len() + 2;
                        start = i;
                    }
                    _ => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    out.push(Piece::Text(&text[start..]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem() -> Problem {
        let mut p = Problem::new("q1", "Which city is largest?", "Tokyo");
        p.fields.insert("table".into(), Value::String("| city | pop |".into()));
        p.fields.insert("rows".into(), serde_json::json!(3));
        p
    }

    #[test]
    fn fills_fields_and_keeps_literal_braces() {
        let t = Template::new("Table:\n{table} ({rows} rows)\n{{not a field}} \\frac{1}{2}\nQ: {problem}");
        assert_eq!(t.fields(), vec!["table", "rows", "problem"]);
        assert_eq!(t.check(&problem()), Ok(()));
        assert_eq!(
            t.render(&problem()),
            "Table:\n| city | pop | (3 rows)\n{not a field} \\frac{1}{2}\nQ: Which city is largest?"
        );
    }

    #[test]
    fn unknown_and_hidden_fields_are_refused() {
        let err = Template::new("{tabel}").check(&problem()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `{tabel}` is not in problem `q1` (its fields: problem, id, rows, table)"
        );
        let err = Template::new("{answer}").check(&problem()).unwrap_err();
        assert!(matches!(err, Error::Hidden { .. }));
        assert_eq!(Template::new("{answer}").render(&problem()), "{answer}");
    }
}
