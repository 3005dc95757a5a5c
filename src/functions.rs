//! The function registry: the learnable "weights" — functions with a description, a JSON-Schema of
//! their parameters, the packages they import, and their Python source. `load` is the one way a
//! registry file is read; it also takes the formats of `functions/formats.rs` (AG2's function list,
//! agentopt's autogen export) and checks every format the same way.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::llm::ToolSpec;

pub mod formats;

pub use formats::Format;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDef {
    pub name: String,
    pub description: String,
    /// JSON Schema object of the parameters.
    pub parameters: Value,
    #[serde(default)]
    pub packages: Vec<String>,
    /// Python source defining a function called `name`.
    pub code: String,
}

impl FunctionDef {
    pub fn tool_spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters: self.parameters.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    pub functions: Vec<FunctionDef>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Failed to read registry `{path}`")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("Invalid registry `{path}` at line {line}, column {column}: {message}")]
    Parse { path: PathBuf, line: usize, column: usize, message: String },
    #[error("Invalid registry `{path}`: {found}; {accepted}", accepted = formats::ACCEPTED)]
    Unrecognized { path: PathBuf, found: String },
    /// `index` counts from 0 within the file's list of functions.
    #[error("Invalid registry `{path}` (read as {format}): function #{index} (`{name}`): {message}")]
    Invalid { path: PathBuf, format: Format, index: usize, name: String, message: String },
    #[error("Failed to write registry `{path}`")]
    Write { path: PathBuf, source: std::io::Error },
}

impl Registry {
    pub fn get(&self, name: &str) -> Option<&FunctionDef> {
        self.functions.iter().find(|f| f.name == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.functions.iter().map(|f| f.name.clone()).collect()
    }

    /// The functions as offered to the assistant.
    pub fn tool_specs(&self) -> Vec<ToolSpec> {
        self.functions.iter().map(FunctionDef::tool_spec).collect()
    }

    /// Reads a registry file in any accepted format (see `formats`).
    pub fn load(path: &Path) -> Result<Registry, Error> {
        Registry::load_with_format(path).map(|(registry, _)| registry)
    }

    /// `load`, also saying which format the file was in.
    pub fn load_with_format(path: &Path) -> Result<(Registry, Format), Error> {
        let text =
            std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
        Registry::parse(&text, path)
    }

    /// A registry from its text in any accepted format, checked as `load` checks a file; `path`
    /// names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<(Registry, Format), Error> {
        let parse_error = |e: serde_json::Error| Error::Parse {
            path: path.into(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        };
        let doc: Value = serde_json::from_str(text).map_err(parse_error)?;
        let format =
            formats::detect(&doc).map_err(|found| Error::Unrecognized { path: path.into(), found })?;
        let registry = match format {
            // From the text again, so a mistake in agentopt's own format keeps its line and column.
            Format::Agentopt => serde_json::from_str(text).map_err(parse_error)?,
            Format::AutogenExport | Format::Ag2FunctionList => Registry {
                functions: formats::read_records(&doc).map_err(|e| Error::Invalid {
                    path: path.into(),
                    format,
                    index: e.index,
                    name: e.name,
                    message: e.message,
                })?,
            },
        };
        registry.check(path, format)?;
        Ok((registry, format))
    }

    /// What every registry must hold, whatever format it came in.
    fn check(&self, path: &Path, format: Format) -> Result<(), Error> {
        for (index, f) in self.functions.iter().enumerate() {
            let invalid = |message: &str| Error::Invalid {
                path: path.into(),
                format,
                index,
                name: f.name.clone(),
                message: message.into(),
            };
            if !is_identifier(&f.name) {
                return Err(invalid(&format!("field `name` must match {IDENTIFIER_RULE}")));
            }
            if !f.parameters.is_object() {
                return Err(invalid("field `parameters` must be a JSON Schema object"));
            }
            if self.functions[..index].iter().any(|g| g.name == f.name) {
                return Err(invalid("field `name` repeats an earlier function's name"));
            }
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<(), Error> {
        crate::fsio::write_json_atomic(path, self)
            .map_err(|source| Error::Write { path: path.into(), source })
    }
}

/// The names the optimizer may give a function (what `is_identifier` accepts), as error messages say it.
pub const IDENTIFIER_RULE: &str = "[A-Za-z_][A-Za-z0-9_]{0,63}";

/// `IDENTIFIER_RULE`: the names the optimizer may give a function.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("quadratic_roots"));
        assert!(is_identifier("_x1"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
        assert!(is_identifier(&"a".repeat(64)));
        assert!(!is_identifier(&"a".repeat(65)));
    }

    #[test]
    fn load_reads_every_format_and_names_the_file_at_fault() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ag2 = write(
            "ag2.json",
            r#"[{"name": "f", "description": "d", "arguments": {}, "packages": "", "code": "def f():\n    return 1\n"}]"#,
        );
        let (registry, format) = Registry::load_with_format(&ag2).unwrap();
        assert_eq!((registry.names(), format), (vec!["f".to_string()], Format::Ag2FunctionList));

        let garbage = write("garbage.json", r#""not a registry""#);
        let e = Registry::load(&garbage).unwrap_err().to_string();
        assert!(e.contains("garbage.json") && e.contains("a JSON string") && e.contains("AG2"), "{e}");

        let bad_name = write("bad.json", r#"[{"name": "1f", "arguments": {}, "code": "x = 1"}]"#);
        let e = Registry::load(&bad_name).unwrap_err().to_string();
        assert!(
            e.contains("bad.json` (read as AG2 AgentOptimizer function list): function #0 (`1f`)"),
            "{e}"
        );

        // agentopt's own format keeps its line and column.
        let native = write("native.json", "{\"functions\": [\n  {\"name\": 3}]}");
        let e = Registry::load(&native).unwrap_err().to_string();
        assert!(e.contains("native.json` at line 2"), "{e}");
    }
}
