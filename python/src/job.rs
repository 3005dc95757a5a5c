//! Running a long job from Python: the future runs on the shared Tokio runtime while the calling
//! thread waits with the GIL released, waking every 100 ms to copy progress to `sys.stderr` (so it
//! shows in a notebook cell as in a terminal) and to let Python see signals. The first
//! KeyboardInterrupt (Ctrl-C, a notebook's "interrupt kernel") cancels a job that has safe points
//! (training, evaluation), which then stops at the next one; a second one stops waiting. A job
//! without safe points (a function call, an optimizer step, a check) is aborted at once.

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
pub struct Pending(Arc<Mutex<Vec<u8>>>);

impl Pending {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("progress buffer"))
    }
}

/// Notes and log lines of any job (`agentopt::progress::note`, tracing), shown by whichever job
/// flushes next: written to fd 2 they would miss a notebook cell.
pub fn notes() -> &'static Pending {
    static NOTES: OnceLock<Pending> = OnceLock::new();
    NOTES.get_or_init(|| {
        let notes = Pending::default();
        let sink = notes.clone();
        agentopt::progress::route_notes(move |text| {
            let mut out = sink.clone();
            let _ = writeln!(out, "{text}");
        });
        notes
    })
}

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
    /// The job watches `cancel` and stops at a safe point; otherwise an interrupt aborts it.
    cancellable: bool,
}

/// A job's value, and whether a KeyboardInterrupt cancelled it on the way.
pub struct Ran<T> {
    pub value: T,
    pub interrupted: bool,
}

impl Job {
    /// A job with safe points (it takes `hooks()`). `progress`: show it at all; `live`: redraw one
    /// line (a terminal, a notebook) rather than print log lines.
    pub fn new(progress: bool, live: bool) -> Job {
        Job { cancel: Cancel::default(), pending: progress.then(Pending::default), live, cancellable: true }
    }

    /// A short job without progress or safe points: an interrupt aborts it.
    pub fn quick() -> Job {
        Job { cancellable: false, ..Job::new(false, false) }
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
        let task = runtime().spawn(async move {
            let _ = tx.send(future.await);
        });
        let mut interrupted = false;
        loop {
            let (back, got) = py.allow_threads(move || {
                let got = rx.recv_timeout(POLL);
                (rx, got)
            });
            rx = back;
            // Writing to sys.stderr runs Python code (a notebook's stream), where a pending
            // KeyboardInterrupt may surface first: it is handled like one from check_signals.
            let signals = self.flush(py).and_then(|()| py.check_signals());
            match got {
                Ok(value) => return Ok(Ran { value, interrupted }),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(crate::errors::run(py, "the job ended without an outcome (it panicked)"));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if let Err(e) = signals {
                if !self.cancellable || !e.is_instance_of::<PyKeyboardInterrupt>(py) {
                    task.abort();
                    return Err(e);
                }
                if interrupted {
                    // Already cancelled: it winds down in the background.
                    return Err(e);
                }
                interrupted = true;
                self.cancel.cancel();
                write_stderr(py, "\nstopping at the next safe point (interrupt again to stop waiting)\n")?;
            }
        }
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let mut bytes = notes().take();
        if let Some(pending) = &self.pending {
            bytes.extend(pending.take());
        }
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
