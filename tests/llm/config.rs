//! Config-list handling: where the list is found, validation errors that name file, entry and field,
//! keys from the environment, selection by model name, and the secret-free description.

use std::path::PathBuf;

use agentopt::llm::Error;
use agentopt::llm::config::{
    self, ApiType, KeySource, Source, find_list, parse_list, parse_list_warning, select,
};
use serde_json::json;

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn config_error(text: &str) -> String {
    let source = Source::File(PathBuf::from("cfg.json"));
    match parse_list(text, &source, &no_env) {
        Err(Error::Config(message)) => message,
        other => panic!("expected a config error for {text}, got {other:?}"),
    }
}

#[test]
fn errors_name_the_file_the_entry_and_the_field() {
    let message = config_error(
        r#"[{"model": "a", "base_url": "http://x"}, {"model": "b", "base_url": "http://x", "price": [1]}]"#,
    );
    assert_eq!(message, "`cfg.json`: entry 2: field `price` must be [input_usd_per_1k, output_usd_per_1k]");
    let cases = [
        (r#"[{"base_url": "http://x"}]"#, "entry 1: field `model` is required"),
        (r#"[{"model": 3}]"#, "entry 1: field `model` must be a string"),
        (r#"[{"model": "a", "api_type": "bedrock"}]"#, "entry 1: field `api_type` must be one of"),
        (r#"[{"model": "a", "base_url": "http://x", "timeout": -1}]"#, "entry 1: field `timeout` must be"),
        (r#"[{"model": "a", "max_tokens": 0}]"#, "entry 1: field `max_tokens` must be a positive integer"),
        (r#"[{"model": "a", "max_tokens": "64"}]"#, "entry 1: field `max_tokens` must be a positive integer"),
        (r#"[{"model": "a", "api_type": "azure", "api_key": "k"}]"#, "entry 1: field `base_url` is required"),
        (r#"["a"]"#, "entry 1: must be a JSON object"),
        (r#"{"model": "a"}"#, "must be a JSON array"),
        (r#"[]"#, "empty"),
        (r#"[{"model": "a""#, "not valid JSON"),
    ];
    for (text, expected) in cases {
        let message = config_error(text);
        assert!(message.starts_with("`cfg.json`: "), "{message}");
        assert!(message.contains(expected), "{message:?} should contain {expected:?}");
    }
}

#[test]
fn unknown_fields_are_warnings_naming_the_entry_the_field_and_the_nearest_known_one() {
    let source = Source::File(PathBuf::from("cfg.json"));
    let text = r#"[{"model": "a", "base-url": "http://x", "tags": ["t"]},
                   {"model": "b", "base_url": "http://x", "Timeout": 5, "temprature": 0, "flavour": 1}]"#;
    let (entries, warnings) = parse_list_warning(text, &source, &no_env).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0].base_url.as_deref(),
        Some(config::DEFAULT_OPENAI_BASE),
        "the misspelt field is ignored"
    );
    assert_eq!(
        warnings,
        [
            "`cfg.json`: entry 1 (`a`): unknown field `base-url` (ignored): did you mean `base_url`?",
            "`cfg.json`: entry 2 (`b`): unknown field `Timeout` (ignored): did you mean `timeout`?",
            "`cfg.json`: entry 2 (`b`): unknown field `flavour` (ignored); known fields: model, api_type, \
             base_url, api_key, api_version, price, timeout, model_path, max_tokens",
            "`cfg.json`: entry 2 (`b`): unknown field `temprature` (ignored); known fields: model, api_type, \
             base_url, api_key, api_version, price, timeout, model_path, max_tokens",
        ],
        "AutoGen's `tags` is no warning"
    );
}

#[test]
fn a_missing_key_only_matters_for_selected_entries() {
    let source = Source::File(PathBuf::from("cfg.json"));
    let text = r#"[{"model": "local", "base_url": "http://localhost:8000/v1"}, {"model": "claude", "api_type": "anthropic"},
                   {"model": "gpt"}]"#;
    let entries = parse_list(text, &source, &no_env).unwrap();
    assert!(select(entries.clone(), Some("local"), &source).is_ok());
    let Err(Error::Config(message)) = select(entries.clone(), Some("claude"), &source) else { panic!() };
    assert_eq!(message, "`cfg.json`: entry 2: field `api_key` is missing and ANTHROPIC_API_KEY is not set");
    let Err(Error::Config(message)) = select(entries, Some("gpt"), &source) else { panic!() };
    assert!(message.contains("entry 3: field `api_key` is missing and OPENAI_API_KEY"), "{message}");
}

#[test]
fn defaults_and_keys_from_the_environment() {
    let lookup = |var: &str| (var == "OPENAI_API_KEY").then(|| KEY.to_string());
    let text = r#"[{"model": "gpt", "tags": ["ignored"]},
                   {"model": "local-llama", "base_url": "http://localhost:8080/v1/"},
                   {"model": "gemma", "api_type": "local", "model_path": "/m/gemma.gguf", "max_tokens": 256}]"#;
    let entries = parse_list(text, &Source::Env, &lookup).unwrap();
    assert_eq!((entries[0].max_tokens, entries[2].max_tokens), (None, Some(256)));
    assert_eq!(config::describe_entry(&entries[2])["max_tokens"], 256);
    assert_eq!(entries[0].base_url.as_deref(), Some("https://api.openai.com/v1"));
    assert_eq!(entries[0].key_source, KeySource::Env("OPENAI_API_KEY"));
    assert_eq!(entries[0].api_key.as_ref().unwrap().expose(), KEY);
    assert_eq!(entries[0].timeout.as_secs(), 120);
    assert_eq!(entries[1].base_url.as_deref(), Some("http://localhost:8080/v1"), "trailing slash trimmed");
    assert_eq!(entries[2].api_type, ApiType::Local);
    assert_eq!(entries[2].model_path.as_deref(), Some(std::path::Path::new("/m/gemma.gguf")));
    assert!(!format!("{entries:?}").contains(KEY), "Debug never shows a key");
    let described = config::describe_entry(&entries[0]);
    assert_eq!(described["api_key"], "from env OPENAI_API_KEY");
    assert!(!described.to_string().contains(KEY));
}

#[test]
fn a_key_in_the_list_wins_over_the_environment() {
    let lookup = |_: &str| Some("from-env".to_string());
    let entries = parse_list(r#"[{"model": "a", "api_key": "from-list"}]"#, &Source::Env, &lookup).unwrap();
    assert_eq!(entries[0].api_key.as_ref().unwrap().expose(), "from-list");
    assert_eq!(entries[0].key_source, KeySource::Config);
    assert_eq!(format!("{}", entries[0].api_key.as_ref().unwrap()), "***");
}

#[test]
fn the_list_is_found_in_order_flag_env_json_env_path_cwd() {
    let dir = tempdir();
    let file = dir.path().join("list.json");
    std::fs::write(&file, r#"[{"model": "from-file"}]"#).unwrap();
    std::fs::write(dir.path().join("OAI_CONFIG_LIST"), r#"[{"model": "from-cwd"}]"#).unwrap();
    let json_env = r#" [{"model": "from-env"}] "#;

    let (source, text) = find_list(Some(&file), Some(json_env), dir.path()).unwrap().unwrap();
    assert_eq!((source, text.contains("from-file")), (Source::File(file.clone()), true));

    let (source, text) = find_list(None, Some(json_env), dir.path()).unwrap().unwrap();
    assert_eq!(source, Source::Env);
    assert!(text.contains("from-env"));
    assert_eq!(source.to_string(), "env OAI_CONFIG_LIST");

    let (source, text) = find_list(None, Some(file.to_str().unwrap()), dir.path()).unwrap().unwrap();
    assert_eq!(source, Source::EnvPath(file.clone()));
    assert!(text.contains("from-file"));

    let (source, text) = find_list(None, None, dir.path()).unwrap().unwrap();
    assert_eq!(source, Source::File(PathBuf::from("OAI_CONFIG_LIST")));
    assert!(text.contains("from-cwd"));

    let empty = tempdir();
    assert!(find_list(None, None, empty.path()).unwrap().is_none(), "nothing anywhere: embedded default");
    assert!(find_list(None, Some(""), empty.path()).unwrap().is_none(), "an empty env var is unset");
}

#[test]
fn unreadable_sources_are_config_errors_naming_them() {
    let dir = tempdir();
    let missing = dir.path().join("nope.json");
    let Err(Error::Config(message)) = find_list(Some(&missing), None, dir.path()) else { panic!() };
    assert!(message.contains("nope.json"), "{message}");
    let Err(Error::Config(message)) = find_list(None, Some("/no/such/list"), dir.path()) else { panic!() };
    assert!(message.contains("/no/such/list") && message.contains("OAI_CONFIG_LIST"), "{message}");
}

#[test]
fn env_json_errors_name_the_env_var() {
    match parse_list(r#"[{"model": "a", "base_url": "http://x", "timeout": "slow"}]"#, &Source::Env, &no_env)
    {
        Err(Error::Config(message)) => {
            assert!(message.starts_with("env OAI_CONFIG_LIST: entry 1: field `timeout`"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn selection_by_model_name() {
    let text = r#"[{"model": "a", "base_url": "http://1"}, {"model": "b", "base_url": "http://2"},
                   {"model": "a", "base_url": "http://3"}]"#;
    let source = Source::File(PathBuf::from("cfg.json"));
    let entries = parse_list(text, &source, &no_env).unwrap();
    let urls =
        |chosen: Vec<config::Entry>| chosen.into_iter().map(|e| e.base_url.unwrap()).collect::<Vec<_>>();
    assert_eq!(urls(select(entries.clone(), None, &source).unwrap()), ["http://1", "http://3"]);
    assert_eq!(urls(select(entries.clone(), Some("b"), &source).unwrap()), ["http://2"]);
    let Err(Error::Config(message)) = select(entries, Some("c"), &source) else { panic!() };
    assert!(message.contains("`c`") && message.contains("available: a, b, a"), "{message}");
}

#[test]
fn describe_is_secret_free() {
    let dir = tempdir();
    let mut opts = options(
        dir.path(),
        json!([{"model": "m", "api_key": KEY, "base_url": "http://127.0.0.1:1/v1", "price": [0.5, 1.5]}]),
    );
    opts.cache = agentopt::llm::CacheMode::Seed(9);
    let described = agentopt::llm::describe(&opts).unwrap();
    assert!(!described.to_string().contains(KEY));
    assert_eq!(described["model"], "m");
    assert_eq!(described["entries"][0]["api_key"], "from config");
    assert_eq!(described["entries"][0]["price"], json!([0.5, 1.5]));
    assert_eq!(described["cache"]["seed"], 9);
    assert!(described["source"].as_str().unwrap().contains("cfg.json"));
}

#[test]
fn local_entries_use_the_local_backend() {
    let dir = tempdir();
    let opts = options(dir.path(), json!([{"model": "gemma-3-270m-local", "api_type": "local"}]));
    // Opening is cheap (the weights load on the first request); a build without the backend says how
    // to get it.
    let result = agentopt::llm::connect(&opts);
    #[cfg(feature = "local")]
    if let Err(e) = result {
        panic!("the local backend is built in, yet: {e:?}");
    }
    #[cfg(not(feature = "local"))]
    match result {
        Err(Error::Local(message)) => {
            assert!(message.contains("built without the embedded model"), "{message}");
            assert!(message.contains("--features local"), "{message}");
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("connected to a local model without the local backend"),
    }
}

#[test]
fn keys_unfit_for_a_header_are_refused_without_being_shown() {
    let message = config_error(r#"[{"model": "a", "api_key": "sk-bad key\n"}]"#);
    assert!(message.contains("entry 1: field `api_key` holds characters"), "{message}");
    assert!(!message.contains("sk-bad"), "{message}");
}

#[test]
fn cache_mode_from_flags() {
    use agentopt::llm::CacheMode;
    assert_eq!(CacheMode::from_flags(false, None), CacheMode::Seed(41));
    assert_eq!(CacheMode::from_flags(false, Some(7)), CacheMode::Seed(7));
    assert_eq!(CacheMode::from_flags(true, None), CacheMode::Off);
}
