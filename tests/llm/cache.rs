//! The reply cache through `connect`: hits make no request, seeds separate namespaces, the key never
//! reaches the file, and concurrent writers (tasks and independent connections) are safe.

use agentopt::llm::{CacheMode, Message};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

async fn server_answering(expected_calls: u64) -> MockServer {
    server_answering_after(expected_calls, std::time::Duration::ZERO).await
}

/// A server answering each request `delay` after it arrives.
async fn server_answering_after(expected_calls: u64, delay: std::time::Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_text_reply("2")).set_delay(delay))
        .expect(expected_calls)
        .mount(&server)
        .await;
    server
}

fn cached_options(dir: &Path, server: &MockServer, seed: u64) -> ModelOptions {
    let mut opts = options(
        dir,
        json!([{"model": "gpt-test", "api_key": KEY, "base_url": server.uri() + "/v1", "price": [1.0, 1.0]}]),
    );
    opts.cache = CacheMode::Seed(seed);
    opts
}

#[tokio::test]
async fn identical_request_is_answered_from_the_cache() {
    let server = server_answering(1).await;
    let dir = tempdir();
    let opts = cached_options(dir.path(), &server, 41);
    let first = connect(&opts).chat(&question()).await.unwrap();
    assert!(!first.cached);
    assert_eq!(first.usage.calls, 1);
    // A fresh connection (as in a re-run) reads the same file.
    let second = connect(&opts).chat(&question()).await.unwrap();
    assert!(second.cached);
    assert_eq!(second.usage, agentopt::llm::Usage::default());
    assert_eq!(second.message, first.message);
    assert_eq!(second.model, "gpt-test");
}

/// Identical requests in flight together make one call: the second waits and is answered from the
/// cache; a different request in flight at the same time is not held up by them.
#[tokio::test]
async fn identical_requests_in_flight_together_make_one_call() {
    let server = server_answering_after(2, std::time::Duration::from_millis(300)).await;
    let dir = tempdir();
    let model = connect(&cached_options(dir.path(), &server, 41));
    let mut other = question();
    other.messages.push(Message::user("and 2+2?"));
    let started = std::time::Instant::now();
    let same = question();
    let (a, b, c, d) =
        tokio::join!(model.chat(&same), model.chat(&same), model.chat(&other), model.chat(&same));
    let replies = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    assert_eq!(replies.iter().filter(|r| !r.cached).count(), 2, "one call per distinct request");
    assert_eq!(replies.iter().map(|r| r.usage.calls).sum::<u64>(), 2);
    assert!(replies.iter().all(|r| r.message == replies[0].message));
    assert!(started.elapsed() < std::time::Duration::from_millis(900), "{:?}", started.elapsed());
}

#[tokio::test]
async fn different_requests_and_seeds_miss() {
    let server = server_answering(3).await;
    let dir = tempdir();
    connect(&cached_options(dir.path(), &server, 1)).chat(&question()).await.unwrap();
    connect(&cached_options(dir.path(), &server, 2)).chat(&question()).await.unwrap();
    let mut other = question();
    other.messages.push(Message::user("and 2+2?"));
    connect(&cached_options(dir.path(), &server, 1)).chat(&other).await.unwrap();
    // Both seeds are now warm.
    for seed in [1, 2] {
        assert!(connect(&cached_options(dir.path(), &server, seed)).chat(&question()).await.unwrap().cached);
    }
}

#[tokio::test]
async fn no_cache_always_calls_the_model() {
    let server = server_answering(2).await;
    let dir = tempdir();
    let mut opts = cached_options(dir.path(), &server, 1);
    opts.cache = CacheMode::Off;
    for _ in 0..2 {
        assert!(!connect(&opts).chat(&question()).await.unwrap().cached);
    }
    assert!(!dir.path().join("cache").exists(), "--no-cache creates no cache file");
}

#[tokio::test]
async fn failures_are_not_cached() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(400)).expect(2).mount(&server).await;
    let dir = tempdir();
    let opts = cached_options(dir.path(), &server, 1);
    for _ in 0..2 {
        assert!(connect(&opts).chat(&question()).await.is_err());
    }
}

#[tokio::test]
async fn the_cache_file_never_holds_the_key() {
    let server = server_answering(1).await;
    let dir = tempdir();
    let opts = cached_options(dir.path(), &server, 41);
    let model = connect(&opts);
    model.chat(&question()).await.unwrap();
    drop(model);
    let files = read_all_bytes(&dir.path().join("cache"));
    assert!(files.iter().any(|(p, _)| p.ends_with("cache.sqlite")));
    for (path, bytes) in files {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(KEY), "{} holds the key", path.display());
    }
}

#[tokio::test]
async fn concurrent_writers_through_separate_connections() {
    let server = server_answering(40).await;
    let dir = tempdir();
    let opts = cached_options(dir.path(), &server, 5);
    // Two independent connections stand in for two processes sharing the file.
    let models = [connect(&opts), connect(&opts)];
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let model = models[i % 2].clone();
        tasks.spawn(async move {
            let mut request = question();
            request.messages.push(Message::user(format!("variant {i}")));
            model.chat(&request).await.map(|r| r.cached)
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert!(!done.unwrap().unwrap());
    }
    for i in 0..40 {
        let mut request = question();
        request.messages.push(Message::user(format!("variant {i}")));
        assert!(models[(i + 1) % 2].chat(&request).await.unwrap().cached, "variant {i} was stored");
    }
}

/// Set in child processes of `several_processes_share_the_cache_file` only.
const CHILD_DIR: &str = "AGENTOPT_TEST_CACHE_CHILD_DIR";

/// In a child process: writes 100 rows and reads each back. Otherwise: does nothing.
#[test]
fn cache_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else { return };
    let id = std::process::id();
    let store = agentopt::llm::cache::Store::open(Path::new(&dir)).unwrap();
    for i in 0..100 {
        let key = format!("{id}-{i}");
        store.put(&key, 1, "m", "{}").unwrap();
        assert!(store.get(&key).unwrap().is_some());
    }
}

#[test]
fn several_processes_share_the_cache_file() {
    let dir = tempdir();
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "cache::cache_child_writer", "--test-threads=1"])
                .env(CHILD_DIR, dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a writer process failed");
    }
    let store = agentopt::llm::cache::Store::open(dir.path()).unwrap();
    assert_eq!(store.count().unwrap(), 400);
}
