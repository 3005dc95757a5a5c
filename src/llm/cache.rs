//! The on-disk reply cache: a SQLite file (WAL, busy timeout) shared safely by concurrent tasks and
//! processes, keyed on a hash of the canonical request plus the cache seed — never the API key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ChatModel, ChatRequest, ChatResponse, Error, Usage};

/// Bump when the key recipe or the stored format changes, so old rows are simply never hit.
const KEY_VERSION: u32 = 1;

/// How long a cache operation waits for other connections' locks before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `op` again, a few milliseconds apart, while SQLite reports the file busy or locked, for up
/// to `BUSY_TIMEOUT`.
fn while_locked<T>(mut op: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match op() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

/// One open cache file. Cheap to share: SQLite calls run on the blocking pool, one at a time per
/// process; other processes are serialized by SQLite's own locking.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) `dir/cache.sqlite`.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        let path = dir.join("cache.sqlite");
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::Cache(format!("failed to {what} `{}`: {e}", path.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| fail("create the cache directory for", &e))?;
        let conn = Connection::open(&path).map_err(|e| fail("open", &e))?;
        // Other processes may hold the write lock briefly; wait for them instead of failing.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| fail("configure", &e))?;
        // WAL lets readers proceed during a write and survives crashes without corrupting the file.
        // Switching to it (once, on a new file) can report "locked" at once, without the busy
        // handler, when other connections are opening the same new file: wait that out too.
        let _mode: String = while_locked(|| conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0)))
            .map_err(|e| fail("configure", &e))?;
        while_locked(|| {
            conn.execute_batch(
                "PRAGMA synchronous=NORMAL;
                 CREATE TABLE IF NOT EXISTS replies (
                     key TEXT PRIMARY KEY,
                     seed INTEGER NOT NULL,
                     model TEXT NOT NULL,
                     response TEXT NOT NULL,
                     created_at INTEGER NOT NULL
                 );",
            )
        })
        .map_err(|e| fail("initialise", &e))?;
        Ok(Store { conn: Mutex::new(conn), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, key: &str) -> Result<Option<String>, Error> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.query_row("SELECT response FROM replies WHERE key = ?1", [key], |row| row.get(0))
            .optional()
            .map_err(|e| Error::Cache(format!("failed to read `{}`: {e}", self.path.display())))
    }

    /// How many replies are stored (all seeds).
    pub fn count(&self) -> Result<u64, Error> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.query_row("SELECT COUNT(*) FROM replies", [], |row| row.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| Error::Cache(format!("failed to read `{}`: {e}", self.path.display())))
    }

    pub fn put(&self, key: &str, seed: u64, model: &str, response: &str) -> Result<(), Error> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.execute(
            "INSERT OR REPLACE INTO replies (key, seed, model, response, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key, seed as i64, model, response, now],
        )
        .map(|_| ())
        .map_err(|e| Error::Cache(format!("failed to write `{}`: {e}", self.path.display())))
    }
}

/// The cache key: sha256 of the canonical JSON of what determines a reply. `identity` describes the
/// model (name and endpoints, never a key).
pub fn cache_key(identity: &Value, request: &ChatRequest, seed: u64) -> String {
    let request = serde_json::to_value(request).unwrap_or(Value::Null);
    let material = json!({"v": KEY_VERSION, "model": identity, "seed": seed, "request": request});
    let mut text = String::new();
    canonical(&material, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// JSON with object keys sorted at every level, so equal requests hash equally whatever order their
/// maps were built in.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Answers repeated requests from the store; only successful replies are stored. A cache that fails
/// at run time is logged and bypassed: it must never turn a good model call into an error.
/// Identical requests in flight together make one model call: the later ones wait for the first
/// and are answered from the store (or call the model themselves when the first failed).
pub struct Cache {
    inner: Arc<dyn ChatModel>,
    store: Arc<Store>,
    identity: Value,
    seed: u64,
    in_flight: InFlight,
}

impl Cache {
    pub fn new(inner: Arc<dyn ChatModel>, store: Arc<Store>, identity: Value, seed: u64) -> Self {
        Cache { inner, store, identity, seed, in_flight: InFlight::default() }
    }
}

/// A lock per cache key while a request with that key is under way.
#[derive(Default)]
struct InFlight(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// The right to look up, call and store one key; the key's lock is forgotten once nobody waits.
struct Turn<'a> {
    owner: &'a InFlight,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl InFlight {
    async fn turn(&self, key: &str) -> Turn<'_> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(key.to_string()).or_default().clone()
        };
        let guard = Some(lock.clone().lock_owned().await);
        Turn { owner: self, key: key.to_string(), lock, guard }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self.owner.0.lock().unwrap_or_else(|e| e.into_inner());
        // The map's reference and this one: no request waits for the key (new ones would take the
        // map's lock first, held here).
        if Arc::strong_count(&self.lock) == 2 {
            locks.remove(&self.key);
        }
    }
}

#[async_trait::async_trait]
impl ChatModel for Cache {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        let key = cache_key(&self.identity, request, self.seed);
        let _turn = self.in_flight.turn(&key).await;
        let store = self.store.clone();
        let lookup = key.clone();
        let found = tokio::task::spawn_blocking(move || store.get(&lookup)).await;
        match found {
            Ok(Ok(Some(stored))) => match serde_json::from_str::<ChatResponse>(&stored) {
                Ok(mut response) => {
                    response.cached = true;
                    response.usage = Usage::default();
                    return Ok(response);
                }
                Err(e) => tracing::warn!("ignoring an unreadable cache entry: {e}"),
            },
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!("{e}"),
            Err(e) => tracing::warn!("cache lookup failed: {e}"),
        }
        let response = self.inner.chat(request).await?;
        let stored = serde_json::to_string(&response).map_err(|e| Error::Cache(e.to_string()))?;
        let (store, seed, model) = (self.store.clone(), self.seed, response.model.clone());
        match tokio::task::spawn_blocking(move || store.put(&key, seed, &model, &stored)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("{e}"),
            Err(e) => tracing::warn!("cache write failed: {e}"),
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Message;

    #[test]
    fn key_ignores_map_order_but_not_content_or_seed() {
        let identity = json!({"model": "m"});
        let mut a = ChatRequest { messages: vec![Message::user("x")], ..Default::default() };
        a.extra.insert("b".into(), json!({"y": 1, "x": 2}));
        a.extra.insert("a".into(), json!(1));
        let mut b = ChatRequest { messages: vec![Message::user("x")], ..Default::default() };
        b.extra.insert("a".into(), json!(1));
        b.extra.insert("b".into(), json!({"x": 2, "y": 1}));
        assert_eq!(cache_key(&identity, &a, 1), cache_key(&identity, &b, 1));
        assert_ne!(cache_key(&identity, &a, 1), cache_key(&identity, &a, 2));
        b.messages.push(Message::user("y"));
        assert_ne!(cache_key(&identity, &a, 1), cache_key(&identity, &b, 1));
        assert_ne!(cache_key(&identity, &a, 1), cache_key(&json!({"model": "n"}), &a, 1));
    }

    #[test]
    fn canonical_sorts_nested_keys() {
        let mut out = String::new();
        canonical(&json!({"b": [{"d": 1, "c": "é"}], "a": null}), &mut out);
        assert_eq!(out, r#"{"a":null,"b":[{"c":"é","d":1}]}"#);
    }

    #[test]
    fn concurrent_connections_all_write() {
        // Separate connections lock the file the way separate processes do.
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let dir = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let store = Store::open(&dir).unwrap();
                    for i in 0..50 {
                        store.put(&format!("{t}-{i}"), 1, "m", "{}").unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(Store::open(dir.path()).unwrap().count().unwrap(), 200);
    }

    #[test]
    fn store_round_trips_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get("k").unwrap(), None);
        store.put("k", 41, "m", "{}").unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get("k").unwrap().as_deref(), Some("{}"));
    }
}
