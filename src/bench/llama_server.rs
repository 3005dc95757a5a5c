//! A real OpenAI-compatible server no one here wrote — llama-cpp-python's — started on a free local port
//! on a GGUF file. Used by the benchmark and the integration tests (scripts/setup-test-server.sh installs
//! it into .venv).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server process; killed and reaped when dropped.
pub struct LlamaServer {
    child: Child,
    /// `http://127.0.0.1:PORT/v1`, the OpenAI-compatible base URL.
    pub base_url: String,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `python` can run the server.
pub fn installed(python: &Path) -> bool {
    let probe = Command::new(python).args(["-c", "import llama_cpp.server"]).stderr(Stdio::null()).status();
    probe.is_ok_and(|s| s.success())
}

/// The server's chat format for a base model such as the default gemma-3-270m: its GGUF carries Gemma's
/// chat template, after which the untuned model ends its turn at once (empty replies); the plain
/// "### Instruction: / ### Response:" transcript makes it answer.
pub const BASE_MODEL_CHAT_FORMAT: &str = "alpaca";

/// Starts the server on `gguf` with a context of `n_ctx` tokens (and `chat_format`, else the GGUF's own
/// template) and waits (at most `startup`) until it answers `GET /v1/models`.
pub async fn start(
    python: &Path,
    gguf: &Path,
    n_ctx: u32,
    chat_format: Option<&str>,
    startup: Duration,
) -> Result<LlamaServer, String> {
    if !installed(python) {
        return Err(format!(
            "llama-cpp-python's server is not installed for `{}`: run scripts/setup-test-server.sh",
            python.display()
        ));
    }
    // Ask the OS for a free port; the tiny window before the server binds it is acceptable in tests.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free local port: {e}"))?
        .port();
    let mut command = Command::new(python);
    command.args(["-m", "llama_cpp.server", "--model"]).arg(gguf).args([
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--n_ctx",
        &n_ctx.to_string(),
    ]);
    // Its default is half the cores; use them all, like the in-process backend, for a fair comparison.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).to_string();
    command.args(["--n_threads", &threads, "--n_threads_batch", &threads]);
    if let Some(format) = chat_format {
        command.args(["--chat_format", format]);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("failed to start llama_cpp.server with `{}`: {e}", python.display()))?;
    let mut server = LlamaServer { child, base_url: format!("http://127.0.0.1:{port}/v1") };
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("llama_cpp.server exited during startup: {status}"));
        }
        let probe = client.get(format!("{}/models", server.base_url)).timeout(Duration::from_secs(2));
        if probe.send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(server);
        }
        if started.elapsed() > startup {
            return Err(format!("llama_cpp.server did not answer within {startup:?}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
