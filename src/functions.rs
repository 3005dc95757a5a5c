//! The function registry: the learnable "weights" — functions with a description, a JSON-Schema of
//! their parameters, the packages they import, and their Python source.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::llm::ToolSpec;

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
    #[error("Invalid registry `{path}`: function #{index} (`{name}`): {message}")]
    Invalid { path: PathBuf, index: usize, name: String, message: String },
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

    pub fn load(path: &Path) -> Result<Registry, Error> {
        let text =
            std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
        let registry: Registry = serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: path.into(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        for (index, f) in registry.functions.iter().enumerate() {
            let invalid = |message: &str| Error::Invalid {
                path: path.into(),
                index,
                name: f.name.clone(),
                message: message.into(),
            };
            if !is_identifier(&f.name) {
                return Err(invalid("field `name` must match [A-Za-z_][A-Za-z0-9_]{0,63}"));
            }
            if !f.parameters.is_object() {
                return Err(invalid("field `parameters` must be a JSON Schema object"));
            }
            if registry.functions[..index].iter().any(|g| g.name == f.name) {
                return Err(invalid("field `name` repeats an earlier function's name"));
            }
        }
        Ok(registry)
    }

    pub fn save(&self, path: &Path) -> Result<(), Error> {
        crate::fsio::write_json_atomic(path, self)
            .map_err(|source| Error::Write { path: path.into(), source })
    }
}

/// `[A-Za-z_][A-Za-z0-9_]{0,63}`: the names the optimizer may give a function.
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
}
