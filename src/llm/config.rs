//! The model config list (AutoGen's `OAI_CONFIG_LIST` format): where it is read from, how each entry is
//! validated, and the `Secret` type that keeps API keys out of logs and files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::Error;
use super::usage::Price;
use crate::env;

/// Reply-cache behaviour (AutoGen's `cache_seed`): `Seed(n)` reads and writes namespace `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    Off,
    Seed(u64),
}

impl CacheMode {
    /// From the shared flags: `--no-cache` wins; `--cache-seed N` picks the namespace (default 41).
    pub fn from_flags(no_cache: bool, cache_seed: Option<u64>) -> Self {
        match (no_cache, cache_seed) {
            (true, _) => CacheMode::Off,
            (false, Some(seed)) => CacheMode::Seed(seed),
            (false, None) => CacheMode::default(),
        }
    }
}

impl Default for CacheMode {
    fn default() -> Self {
        CacheMode::Seed(41)
    }
}

/// What `connect` needs to pick and build a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    /// `--config FILE`; `None` falls back to env `OAI_CONFIG_LIST`, `./OAI_CONFIG_LIST`, the embedded model.
    pub config: Option<PathBuf>,
    /// Entries with this exact `model` name; `None` takes the first entry's name.
    pub model: Option<String>,
    pub cache: CacheMode,
    pub cache_dir: PathBuf,
    /// The list itself, given in memory (the Python package's `config=[...]`): it wins over `config`
    /// and never touches disk, so its keys reach no file.
    pub inline: Option<InlineList>,
}

/// A config list's JSON text held in memory. It may hold keys: `Debug` prints none of it.
#[derive(Clone, PartialEq, Eq)]
pub struct InlineList(pub String);

impl fmt::Debug for InlineList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InlineList(***)")
    }
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            inline: None,
            config: None,
            model: None,
            cache: CacheMode::default(),
            cache_dir: PathBuf::from(".cache/agentopt"),
        }
    }
}

/// An API key. Its `Debug` and `Display` print `***`, and it is deliberately not `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The key itself: only for building a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiType {
    OpenAi,
    Azure,
    Anthropic,
    Local,
}

impl ApiType {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiType::OpenAi => "openai",
            ApiType::Azure => "azure",
            ApiType::Anthropic => "anthropic",
            ApiType::Local => "local",
        }
    }
}

/// Where an API key came from; recorded in run.json instead of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Config,
    Env(&'static str),
    None,
}

/// One validated config entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position in the list, from 1 (as error messages count).
    pub index: usize,
    pub model: String,
    pub api_type: ApiType,
    pub api_key: Option<Secret>,
    pub key_source: KeySource,
    /// Without a trailing slash; `None` only for local entries.
    pub base_url: Option<String>,
    pub api_version: Option<String>,
    pub price: Price,
    pub timeout: Duration,
    pub model_path: Option<PathBuf>,
    /// Output-token cap for requests that leave `max_tokens` open (AutoGen lists carry it too).
    pub max_tokens: Option<u32>,
}

pub const DEFAULT_OPENAI_BASE: &str = "https://api.openai.com/v1";
pub const DEFAULT_ANTHROPIC_BASE: &str = "https://api.anthropic.com";
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-06-01";
pub const DEFAULT_TIMEOUT_SECS: f64 = 120.0;
/// The offline default when no config list exists anywhere.
pub const EMBEDDED_MODEL: &str = "gemma-3-270m-local";

/// Where the config list came from; its `Display` is what error messages name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    /// The env var held the JSON itself.
    Env,
    /// The env var held a path.
    EnvPath(PathBuf),
    Embedded,
    /// Given in memory by the caller (the Python package).
    InMemory,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "`{}`", path.display()),
            Source::Env => write!(f, "env {}", env::OAI_CONFIG_LIST),
            Source::EnvPath(path) => write!(f, "`{}` (from env {})", path.display(), env::OAI_CONFIG_LIST),
            Source::Embedded => f.write_str("the embedded default model list"),
            Source::InMemory => f.write_str("the config list given in memory"),
        }
    }
}

/// Finds the config list text: `--config FILE`, else the env value (JSON or a path), else
/// `cwd/OAI_CONFIG_LIST`; `None` when there is none anywhere. Pure apart from reading files, so the
/// env value is a parameter (env vars are process-global and racy in tests).
pub fn find_list(
    config: Option<&Path>,
    env_value: Option<&str>,
    cwd: &Path,
) -> Result<Option<(Source, String)>, Error> {
    match locate(config, env_value, cwd) {
        Located::File(source, path) => std::fs::read_to_string(&path)
            .map(|text| Some((source.clone(), text)))
            .map_err(|e| Error::Config(format!("failed to read the model list {source}: {e}"))),
        Located::Inline(text) => Ok(Some((Source::Env, text))),
        Located::Nowhere => Ok(None),
    }
}

/// Where the list is: a file (named as the user gave it, and the path to read), JSON in the env, or
/// nowhere.
enum Located {
    File(Source, PathBuf),
    Inline(String),
    Nowhere,
}

fn locate(config: Option<&Path>, env_value: Option<&str>, cwd: &Path) -> Located {
    if let Some(path) = config {
        return Located::File(Source::File(path.to_path_buf()), path.to_path_buf());
    }
    if let Some(value) = env_value.map(str::trim).filter(|v| !v.is_empty()) {
        // AutoGen accepts either; a JSON list always starts with `[`, a path never sensibly does.
        if value.starts_with('[') || value.starts_with('{') {
            return Located::Inline(value.to_string());
        }
        let path = PathBuf::from(value);
        return Located::File(Source::EnvPath(path.clone()), path);
    }
    let default = cwd.join("OAI_CONFIG_LIST");
    if default.is_file() {
        return Located::File(Source::File(PathBuf::from("OAI_CONFIG_LIST")), default);
    }
    Located::Nowhere
}

/// The file the list is read from, as `load` would find it (`None`: inline JSON in the env, or the
/// embedded default). Code the model writes must never see it: it may hold keys.
/// With a list given in memory, this is still the file the lookup would find: it is where such a list
/// is usually read from, so code must not see it either.
pub fn list_file(opts: &ModelOptions) -> Option<PathBuf> {
    let env_value = env::var(env::OAI_CONFIG_LIST);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    match locate(opts.config.as_deref(), env_value.as_deref(), &cwd) {
        Located::File(_, path) => Some(path),
        Located::Inline(_) | Located::Nowhere => None,
    }
}

/// Loads the list the way `connect` does, reading the real environment.
pub fn load(opts: &ModelOptions) -> Result<(Source, Vec<Entry>), Error> {
    if let Some(InlineList(text)) = &opts.inline {
        return Ok((Source::InMemory, parse_list(text, &Source::InMemory, &env::var)?));
    }
    let env_value = env::var(env::OAI_CONFIG_LIST);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    match find_list(opts.config.as_deref(), env_value.as_deref(), &cwd)? {
        Some((source, text)) => {
            let entries = parse_list(&text, &source, &env::var)?;
            Ok((source, entries))
        }
        None => Ok((Source::Embedded, vec![embedded_entry()])),
    }
}

pub fn embedded_entry() -> Entry {
    Entry {
        index: 1,
        model: EMBEDDED_MODEL.to_string(),
        api_type: ApiType::Local,
        api_key: None,
        key_source: KeySource::None,
        base_url: None,
        api_version: None,
        price: Price::FREE,
        timeout: Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS),
        model_path: None,
        max_tokens: None,
    }
}

/// Keeps the entries named `model`, or — with no name — those sharing the first entry's name. A
/// missing key is only an error for a selected entry: lists often hold models the run does not use.
pub fn select(entries: Vec<Entry>, model: Option<&str>, source: &Source) -> Result<Vec<Entry>, Error> {
    let Some(name) = model.map(str::to_string).or_else(|| entries.first().map(|e| e.model.clone())) else {
        return Err(Error::Config(format!("{source}: the model list is empty")));
    };
    let available: Vec<String> = entries.iter().map(|e| e.model.clone()).collect();
    let chosen: Vec<Entry> = entries.into_iter().filter(|e| e.model == name).collect();
    if chosen.is_empty() {
        return Err(Error::Config(format!(
            "{source}: no entry has model `{name}` (available: {})",
            available.join(", ")
        )));
    }
    for entry in &chosen {
        check_key(entry).map_err(|msg| Error::Config(format!("{source}: entry {}: {msg}", entry.index)))?;
    }
    Ok(chosen)
}

fn check_key(entry: &Entry) -> Result<(), String> {
    if entry.api_key.is_some() {
        return Ok(());
    }
    let missing = |var: &str| Err(format!("field `api_key` is missing and {var} is not set"));
    match entry.api_type {
        ApiType::Azure => missing(env::AZURE_OPENAI_API_KEY),
        ApiType::Anthropic => missing(env::ANTHROPIC_API_KEY),
        // Local servers (vLLM, Ollama, llama.cpp) need no key; OpenAI itself does.
        ApiType::OpenAi if entry.base_url.as_deref() == Some(DEFAULT_OPENAI_BASE) => {
            missing(env::OPENAI_API_KEY)
        }
        _ => Ok(()),
    }
}

/// The fields an entry may have: agentopt's, and AutoGen's that it reads past (`tags` label entries
/// for AutoGen's filters; the rest tune AutoGen's own client).
const KNOWN_FIELDS: &[&str] = &[
    "model",
    "api_type",
    "base_url",
    "api_key",
    "api_version",
    "price",
    "timeout",
    "model_path",
    "max_tokens",
];
const AUTOGEN_FIELDS: &[&str] =
    &["tags", "api_rate_limit", "default_headers", "organization", "cache_seed", "temperature", "stream"];

/// Parses and validates a config list, logging a warning for each field it does not know (see
/// `unknown_fields`) once per process. Entries are numbered from 1 in messages. `lookup` reads an
/// env var (a parameter so tests stay pure).
pub fn parse_list(
    text: &str,
    source: &Source,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Entry>, Error> {
    let (entries, warnings) = parse_list_warning(text, source, lookup)?;
    for warning in warnings {
        warn_once(warning);
    }
    Ok(entries)
}

/// `parse_list`, with the warnings returned instead of logged.
pub fn parse_list_warning(
    text: &str,
    source: &Source,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<Entry>, Vec<String>), Error> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| Error::Config(format!("{source}: not valid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(Error::Config(format!("{source}: must be a JSON array of model entries")));
    };
    if items.is_empty() {
        return Err(Error::Config(format!("{source}: the model list is empty")));
    }
    let mut warnings = Vec::new();
    let entries = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let entry = parse_entry(i + 1, item, lookup)
                .map_err(|msg| Error::Config(format!("{source}: entry {}: {msg}", i + 1)))?;
            if let Value::Object(obj) = item {
                let name = |msg: String| format!("{source}: entry {} (`{}`): {msg}", i + 1, entry.model);
                warnings.extend(unknown_fields(obj).into_iter().map(name));
            }
            Ok(entry)
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok((entries, warnings))
}

/// One message per field of `obj` that is neither agentopt's nor AutoGen's, with the nearest known
/// field when one is close (`base-url`: did you mean `base_url`?): a misspelt field would otherwise
/// be ignored in silence and its default used.
pub fn unknown_fields(obj: &Map<String, Value>) -> Vec<String> {
    obj.keys()
        .filter(|field| !KNOWN_FIELDS.contains(&field.as_str()) && !AUTOGEN_FIELDS.contains(&field.as_str()))
        .map(|field| match nearest_field(field) {
            Some(known) => format!("unknown field `{field}` (ignored): did you mean `{known}`?"),
            None => format!("unknown field `{field}` (ignored); known fields: {}", KNOWN_FIELDS.join(", ")),
        })
        .collect()
}

/// The known field `field` most likely meant: the same but for case and `-`/`_`, or within two edits.
fn nearest_field(field: &str) -> Option<&'static str> {
    let field = field.to_lowercase().replace('-', "_");
    KNOWN_FIELDS
        .iter()
        .map(|known| (strsim::levenshtein(&field, known), *known))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, known)| known)
}

/// Logs `warning` unless this process already did: a command loads its list more than once.
fn warn_once(warning: String) {
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !seen.contains(&warning) {
        tracing::warn!("{warning}");
        seen.push(warning);
    }
}

fn parse_entry(index: usize, item: &Value, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Entry, String> {
    let Value::Object(obj) = item else {
        return Err("must be a JSON object".into());
    };
    let model = string_field(obj, "model")?.ok_or("field `model` is required")?;
    if model.is_empty() {
        return Err("field `model` must not be empty".into());
    }
    let api_type = match string_field(obj, "api_type")?.as_deref() {
        None | Some("openai") => ApiType::OpenAi,
        Some("azure") => ApiType::Azure,
        Some("anthropic") => ApiType::Anthropic,
        Some("local") => ApiType::Local,
        Some(other) => {
            return Err(format!(
                "field `api_type` must be one of openai, azure, anthropic, local (got `{other}`)"
            ));
        }
    };
    let base_url = string_field(obj, "base_url")?.map(|u| u.trim_end_matches('/').to_string());
    if let Some(url) = &base_url {
        check_base_url(url)?;
    }
    let base_url = match api_type {
        ApiType::OpenAi => Some(base_url.unwrap_or_else(|| DEFAULT_OPENAI_BASE.to_string())),
        ApiType::Anthropic => Some(base_url.unwrap_or_else(|| DEFAULT_ANTHROPIC_BASE.to_string())),
        ApiType::Azure => Some(base_url.ok_or("field `base_url` is required for api_type azure")?),
        ApiType::Local => base_url,
    };
    let api_version = string_field(obj, "api_version")?;
    let api_version = match api_type {
        ApiType::Azure => Some(api_version.unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_string())),
        _ => api_version,
    };
    let price = match obj.get("price") {
        None | Some(Value::Null) => Price::FREE,
        Some(v) => parse_price(v).ok_or("field `price` must be [input_usd_per_1k, output_usd_per_1k]")?,
    };
    let timeout = match obj.get("timeout") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT_SECS,
        Some(v) => v
            .as_f64()
            // Bounded so a typo cannot overflow a Duration.
            .filter(|t| *t > 0.0 && *t <= 1e7)
            .ok_or("field `timeout` must be a positive number of seconds")?,
    };
    let model_path = string_field(obj, "model_path")?.map(PathBuf::from);
    let max_tokens = match obj.get("max_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
                .ok_or("field `max_tokens` must be a positive integer")? as u32,
        ),
    };
    let (api_key, key_source) = resolve_key(string_field(obj, "api_key")?, api_type, lookup);
    if api_key.as_ref().is_some_and(|k| !k.expose().bytes().all(|b| (0x21..0x7f).contains(&b))) {
        // Never show the key itself, not even in this message.
        let from = match key_source {
            KeySource::Env(var) => format!(" (from {var})"),
            _ => String::new(),
        };
        return Err(format!("field `api_key`{from} holds characters an HTTP header cannot carry"));
    }
    Ok(Entry {
        index,
        model,
        api_type,
        api_key,
        key_source,
        base_url,
        api_version,
        price,
        timeout: Duration::from_secs_f64(timeout),
        model_path,
        max_tokens,
    })
}

fn resolve_key(
    given: Option<String>,
    api_type: ApiType,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> (Option<Secret>, KeySource) {
    if let Some(key) = given.filter(|k| !k.is_empty()) {
        return (Some(Secret::new(key)), KeySource::Config);
    }
    let var = match api_type {
        ApiType::OpenAi => env::OPENAI_API_KEY,
        ApiType::Azure => env::AZURE_OPENAI_API_KEY,
        ApiType::Anthropic => env::ANTHROPIC_API_KEY,
        ApiType::Local => return (None, KeySource::None),
    };
    match lookup(var).filter(|k| !k.is_empty()) {
        Some(key) => (Some(Secret::new(key)), KeySource::Env(var)),
        None => (None, KeySource::None),
    }
}

/// An endpoint agentopt can POST to: an http(s) URL with a host (not `file://`, not a bare name),
/// refused at load time rather than retried as a connection error.
fn check_base_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() => Ok(()),
        Ok(parsed) => Err(format!(
            "field `base_url` must be an http:// or https:// URL with a host, got `{url}` ({} URL)",
            parsed.scheme()
        )),
        Err(e) => Err(format!("field `base_url` is not a URL (`{url}`: {e})")),
    }
}

fn string_field(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("field `{name}` must be a string")),
    }
}

fn parse_price(value: &Value) -> Option<Price> {
    let items = value.as_array()?;
    match items.as_slice() {
        [input, output] => {
            let (input, output) = (input.as_f64()?, output.as_f64()?);
            (input >= 0.0 && output >= 0.0).then_some(Price { input_per_1k: input, output_per_1k: output })
        }
        _ => None,
    }
}

/// The secret-free description of an entry, for `runs/<run>/run.json`.
pub fn describe_entry(entry: &Entry) -> Value {
    let mut out = Map::new();
    out.insert("model".into(), entry.model.clone().into());
    out.insert("api_type".into(), entry.api_type.as_str().into());
    if let Some(url) = &entry.base_url {
        out.insert("base_url".into(), url.clone().into());
    }
    if let Some(version) = &entry.api_version {
        out.insert("api_version".into(), version.clone().into());
    }
    out.insert("price".into(), serde_json::json!([entry.price.input_per_1k, entry.price.output_per_1k]));
    out.insert("timeout".into(), entry.timeout.as_secs_f64().into());
    if let Some(path) = &entry.model_path {
        out.insert("model_path".into(), path.display().to_string().into());
    }
    if let Some(n) = entry.max_tokens {
        out.insert("max_tokens".into(), n.into());
    }
    let key = match &entry.key_source {
        KeySource::Config => "from config".to_string(),
        KeySource::Env(var) => format!("from env {var}"),
        KeySource::None => "none".to_string(),
    };
    out.insert("api_key".into(), key.into());
    Value::Object(out)
}
