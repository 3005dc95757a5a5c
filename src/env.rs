//! Every environment variable agentopt reads, in one place.

/// AutoGen-compatible model list: a JSON string or a path to a JSON file.
pub const OAI_CONFIG_LIST: &str = "OAI_CONFIG_LIST";
/// Fallback API keys for config entries that omit `api_key`.
pub const OPENAI_API_KEY: &str = "OPENAI_API_KEY";
pub const AZURE_OPENAI_API_KEY: &str = "AZURE_OPENAI_API_KEY";
pub const ANTHROPIC_API_KEY: &str = "ANTHROPIC_API_KEY";
/// Variables that may hold a key (the list may embed `api_key`s): never passed to executed code.
pub const SECRET_VARS: &[&str] = &[OAI_CONFIG_LIST, OPENAI_API_KEY, AZURE_OPENAI_API_KEY, ANTHROPIC_API_KEY];
/// The Python interpreter used for executed code and the grader (default: `.venv/bin/python`).
pub const AGENTOPT_PYTHON: &str = "AGENTOPT_PYTHON";
/// `0` gives every code session a sandbox of its own instead of a fork of the shared fork server.
pub const AGENTOPT_FORK_SERVER: &str = "AGENTOPT_FORK_SERVER";
/// How many conversations the embedded model keeps cached at once (default 4; `1`: a single cache,
/// what the benchmark compares against).
pub const AGENTOPT_LOCAL_SEQUENCES: &str = "AGENTOPT_LOCAL_SEQUENCES";
/// Any non-empty value turns off ANSI colours in terminal output (https://no-color.org).
pub const NO_COLOR: &str = "NO_COLOR";
/// Searched for `bwrap` (the sandbox); executed code gets a fixed PATH of its own, never this one.
pub const PATH: &str = "PATH";
/// Log filter for `tracing` (e.g. `agentopt=debug`).
pub const RUST_LOG: &str = "RUST_LOG";

/// Reads a variable, treating an empty value as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
