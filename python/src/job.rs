//! Running a long job from Python: the future runs on the shared Tokio runtime while the calling
//! thread waits with the GIL released, waking every 100 ms to copy progress to `sys.stderr` (so it
//! shows in a notebook cell as in a terminal) and to let Python see signals. The first
//! KeyboardInterrupt (Ctrl-C, a notebook's "interrupt kernel") cancels the job, which then stops at
//! its next safe point; a second one stops waiting.

use std::future::Future;
use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;

use agentopt::commands::Hooks;
use agentopt::progress::Progress;
use agentopt::trainer::meter::Cancel;

const POLL: Duration = Duration::from_millis(100);

/// The one runtime every call shares (its worker threads also own the sandbox's fork servers).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("agentopt")
            .build()
            .expect("failed to start the async runtime")
    })
}

/// Progress text waiting to be written to `sys.stderr`.
#[derive(Clone, Default)]
struct Pending(Arc<Mutex<Vec<u8>>>);

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("progress buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One job's cancel token and progress sink.
pub struct Job {
    cancel: Cancel,
    pending: Option<Pending>,
    live: bool,
}

/// A job's value, and whether a KeyboardInterrupt cancelled it on the way.
pub struct Ran<T> {
    pub value: T,
    pub interrupted: bool,
}

impl Job {
    /// `progress`: show it at all; `live`: redraw one line (a terminal, a notebook) rather than log lines.
    pub fn new(progress: bool, live: bool) -> Job {
        Job { cancel: Cancel::default(), pending: progress.then(Pending::default), live }
    }

    /// The hooks commands take: this job's cancel token and progress, no signal handlers of their own.
    pub fn hooks(&self) -> Hooks {
        let (pending, live) = (self.pending.clone(), self.live);
        Hooks {
            cancel: self.cancel.clone(),
            ctrl_c: false,
            progress: Arc::new(move |total, label| match &pending {
                Some(out) => Progress::with_writer(out.clone(), total, label, live),
                None => Progress::hidden(),
            }),
        }
    }

    /// Runs `future` to its end (see the module documentation).
    pub fn run<T: Send + 'static>(
        &self,
        py: Python<'_>,
        future: impl Future<Output = T> + Send + 'static,
    ) -> PyResult<Ran<T>> {
        let (tx, mut rx) = mpsc::channel();
        runtime().spawn(async move {
            let _ = tx.send(future.await);
        });
        let mut interrupted = false;
        loop {
            let (back, got) = py.allow_threads(move || {
                let got = rx.recv_timeout(POLL);
                (rx, got)
            });
            rx = back;
            self.flush(py)?;
            match got {
                Ok(value) => return Ok(Ran { value, interrupted }),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(crate::errors::run(py, "the job ended without an outcome (it panicked)"));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if let Err(e) = py.check_signals() {
                if interrupted || !e.is_instance_of::<PyKeyboardInterrupt>(py) {
                    return Err(e);
                }
                interrupted = true;
                self.cancel.cancel();
                write_stderr(py, "\nstopping at the next safe point (interrupt again to stop waiting)\n")?;
            }
        }
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let Some(pending) = &self.pending else { return Ok(()) };
        let bytes = std::mem::take(&mut *pending.0.lock().expect("progress buffer"));
        if bytes.is_empty() {
            return Ok(());
        }
        write_stderr(py, &String::from_utf8_lossy(&bytes))
    }
}

fn write_stderr(py: Python<'_>, text: &str) -> PyResult<()> {
    let stderr = py.import("sys")?.getattr("stderr")?;
    if stderr.is_none() {
        return Ok(());
    }
    stderr.call_method1("write", (text,))?;
    stderr.call_method0("flush")?;
    Ok(())
}
