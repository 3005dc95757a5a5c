//! Progress of long jobs (`train`, `eval`): epoch, problems done/total, running success rate, errors
//! and spend. On a terminal it is one line redrawn in place; otherwise (CI, a log file) it degrades to
//! plain log lines every few problems or seconds, so logs stay readable and grep-able.
//!
//! `Progress` is shared across concurrent conversations (`&self` methods, a mutex inside): wrap it in an
//! `Arc` and call `conversation_done` from every task.
//!
//! ```
//! use agentopt::progress::Progress;
//! let progress = Progress::hidden(); // `Progress::new(total, "train")` draws on stderr
//! progress.set_epoch(0, 2);
//! progress.already_done(Some(true)); // a record found on disk when resuming
//! progress.conversation_done(None, 0.002); // errored: counted apart, not scored
//! progress.set_phase("eval after", 10);
//! progress.finish();
//! ```

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type NoteSink = Box<dyn Fn(&str) + Send + Sync>;

static NOTES: OnceLock<NoteSink> = OnceLock::new();

/// Sends one-off notes to the user (the embedded-model note, an unsandboxed warning, "already
/// complete") to `sink` instead of stderr, for the rest of the process: the Python package shows them
/// where its caller looks (`sys.stderr`, a notebook cell). The first call wins.
pub fn route_notes(sink: impl Fn(&str) + Send + Sync + 'static) {
    let _ = NOTES.set(Box::new(sink));
}

/// A one-off note to the user: one line (or paragraph) on stderr, or wherever `route_notes` said.
pub fn note(text: &str) {
    match NOTES.get() {
        Some(sink) => sink(text),
        None => eprintln!("{text}"),
    }
}

/// Plain mode prints after this many problems...
const LOG_EVERY: usize = 10;
/// ...or after this long, whichever comes first.
const LOG_INTERVAL: Duration = Duration::from_secs(5);
/// Live mode redraws at most this often: drawing is cheap, but a terminal flooded with redraws is not.
const REDRAW_INTERVAL: Duration = Duration::from_millis(100);

struct State {
    out: Box<dyn Write + Send>,
    label: String,
    epoch: Option<usize>,
    total: usize,
    done: usize,
    correct: usize,
    errored: usize,
    usd: f64,
    last_draw: Option<Instant>,
    done_at_last_log: usize,
    last_line: String,
    finished: bool,
}

/// A progress display; see the module documentation.
pub struct Progress {
    live: bool,
    log_every: usize,
    log_interval: Duration,
    state: Mutex<State>,
}

impl Progress {
    /// Progress on stderr: a live line when stderr is a terminal, log lines otherwise.
    pub fn new(total: usize, label: &str) -> Self {
        let live = std::io::stderr().is_terminal();
        Progress::with_writer(std::io::stderr(), total, label, live)
    }

    /// Progress that shows nothing (for `--json` runs whose caller wants a silent stderr, and tests).
    pub fn hidden() -> Self {
        Progress::with_writer(std::io::sink(), 0, "", false)
    }

    /// Progress written to `out`; `live` redraws one line with `\r`, else plain lines are printed.
    pub fn with_writer(out: impl Write + Send + 'static, total: usize, label: &str, live: bool) -> Self {
        Progress {
            live,
            log_every: LOG_EVERY,
            log_interval: LOG_INTERVAL,
            state: Mutex::new(State {
                out: Box::new(out),
                label: label.to_string(),
                epoch: None,
                total,
                done: 0,
                correct: 0,
                errored: 0,
                usd: 0.0,
                last_draw: None,
                done_at_last_log: 0,
                last_line: String::new(),
                finished: false,
            }),
        }
    }

    /// Plain mode: print every `every` problems or `interval`, whichever comes first.
    pub fn log_every(mut self, every: usize, interval: Duration) -> Self {
        self.log_every = every.max(1);
        self.log_interval = interval;
        self
    }

    /// Starts a new epoch of `total` problems: the counts restart, the spend keeps adding up.
    pub fn set_epoch(&self, epoch: usize, total: usize) {
        let mut s = self.lock();
        self.keep_line(&mut s);
        s.epoch = Some(epoch);
        s.reset(total);
        self.draw(&mut s, true);
    }

    /// Starts a new phase with its own label (e.g. "eval before"), counts restarted.
    pub fn set_phase(&self, label: &str, total: usize) {
        let mut s = self.lock();
        self.keep_line(&mut s);
        s.label = label.to_string();
        s.epoch = None;
        s.reset(total);
        self.draw(&mut s, true);
    }

    /// One problem finished: `Some(correct)` when graded, `None` when it errored; `usd` it cost.
    pub fn conversation_done(&self, correct: Option<bool>, usd: f64) {
        let mut s = self.lock();
        s.count(correct);
        s.usd += usd;
        let last = s.done == s.total;
        self.draw(&mut s, last);
    }

    /// Counts a problem finished before this process started (a resumed phase), without drawing.
    pub fn already_done(&self, correct: Option<bool>) {
        let mut s = self.lock();
        s.count(correct);
        // Resumed work is not news: the next log line reports it with the first new result.
        s.done_at_last_log = s.done;
    }

    /// Money spent outside conversations (the optimizer's calls).
    pub fn add_usd(&self, usd: f64) {
        self.lock().usd += usd;
    }

    /// Ends the display: the final counts on their own line.
    pub fn finish(&self) {
        let mut s = self.lock();
        if s.finished {
            return;
        }
        s.finished = true;
        let line = s.line();
        // Write errors on a progress display are not worth failing the job for.
        let _ = if self.live {
            write!(s.out, "\r\x1b[2K{line}\n")
        } else if line != s.last_line {
            writeln!(s.out, "{line}")
        } else {
            Ok(())
        };
        let _ = s.out.flush();
    }

    /// Live mode: a phase that made progress keeps its final line when the next phase starts
    /// (plain mode has printed it already).
    fn keep_line(&self, s: &mut State) {
        if self.live && s.done > 0 && !s.finished {
            let line = s.line();
            let _ = write!(s.out, "\r\x1b[2K{line}\n");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves only counters behind: keep using them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn draw(&self, s: &mut State, force: bool) {
        let now = Instant::now();
        let since = s.last_draw.map(|t| now.duration_since(t));
        if self.live {
            if !force && since.is_some_and(|d| d < REDRAW_INTERVAL) {
                return;
            }
            let line = s.line();
            let _ = write!(s.out, "\r\x1b[2K{line}");
        } else {
            // Phase starts are not logged: the first count after them says the same and more.
            if s.done == 0 {
                s.last_draw = Some(now);
                return;
            }
            let due = s.done - s.done_at_last_log >= self.log_every
                || since.is_none_or(|d| d >= self.log_interval)
                || s.done == s.total;
            if !due || s.done == s.done_at_last_log {
                return;
            }
            s.done_at_last_log = s.done;
            let line = s.line();
            let _ = writeln!(s.out, "{line}");
            s.last_line = line;
        }
        let _ = s.out.flush();
        s.last_draw = Some(now);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // A live line left without its newline would be overwritten by the next shell prompt.
        if self.live {
            self.finish();
        }
    }
}

impl State {
    /// One more finished problem: graded (`Some(correct)`) or errored (`None`).
    fn count(&mut self, correct: Option<bool>) {
        self.done += 1;
        match correct {
            Some(true) => self.correct += 1,
            Some(false) => {}
            None => self.errored += 1,
        }
    }

    fn reset(&mut self, total: usize) {
        self.total = total;
        self.done = 0;
        self.correct = 0;
        self.errored = 0;
        self.done_at_last_log = 0;
        self.finished = false;
    }

    fn line(&self) -> String {
        let epoch = self.epoch.map(|e| format!(" epoch {e}")).unwrap_or_default();
        let scored = self.done - self.errored;
        let rate = if scored > 0 {
            format!("{:.1}%", 100.0 * self.correct as f64 / scored as f64)
        } else {
            "-".into()
        };
        format!(
            "{}{epoch}: {}/{} done, {} correct ({rate}), {} errored, ${:.4}",
            self.label, self.done, self.total, self.correct, self.errored, self.usd
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read back after the progress display is gone.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn plain_lines_every_n() {
        let out = Shared::default();
        let p = Progress::with_writer(out.clone(), 5, "train", false).log_every(2, Duration::from_secs(3600));
        p.set_epoch(1, 5);
        p.conversation_done(Some(true), 0.01);
        p.conversation_done(Some(false), 0.01); // 2 since the epoch started: logged
        p.conversation_done(None, 0.0);
        p.conversation_done(Some(true), 0.01); // 2 more
        p.conversation_done(Some(true), 0.01); // the last one is always logged...
        p.finish(); // ...and not repeated
        assert_eq!(
            out.text(),
            "train epoch 1: 2/5 done, 1 correct (50.0%), 0 errored, $0.0200\n\
             train epoch 1: 4/5 done, 2 correct (66.7%), 1 errored, $0.0300\n\
             train epoch 1: 5/5 done, 3 correct (75.0%), 1 errored, $0.0400\n"
        );
    }

    #[test]
    fn phases_restart_counts_but_not_spend() {
        let out = Shared::default();
        let p = Progress::with_writer(out.clone(), 1, "train", false);
        p.conversation_done(None, 0.5);
        p.set_phase("eval after", 2);
        p.conversation_done(Some(true), 0.25);
        p.finish();
        let text = out.text();
        assert!(text.starts_with("train: 1/1 done, 0 correct (-), 1 errored, $0.5000\n"), "{text}");
        assert!(text.ends_with("eval after: 1/2 done, 1 correct (100.0%), 0 errored, $0.7500\n"), "{text}");
    }

    #[test]
    fn resumed_phase_starts_from_its_done_count() {
        let out = Shared::default();
        let p = Progress::with_writer(out.clone(), 3, "eval before", false)
            .log_every(1, Duration::from_secs(3600));
        p.already_done(Some(true));
        p.already_done(None);
        assert_eq!(out.text(), "");
        p.conversation_done(Some(false), 0.5);
        assert_eq!(out.text(), "eval before: 3/3 done, 1 correct (50.0%), 1 errored, $0.5000\n");
    }

    #[test]
    fn shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Progress>();
        Progress::hidden().conversation_done(Some(true), 1.0);
    }

    #[test]
    fn live_redraws_one_line() {
        let out = Shared::default();
        let p = Progress::with_writer(out.clone(), 2, "eval", true);
        p.conversation_done(Some(true), 0.0);
        p.conversation_done(Some(true), 0.0);
        drop(p);
        let text = out.text();
        assert!(text.starts_with("\r\x1b[2Keval: 1/2"), "{text:?}");
        assert!(
            text.ends_with("\r\x1b[2Keval: 2/2 done, 2 correct (100.0%), 0 errored, $0.0000\n"),
            "{text:?}"
        );
        assert_eq!(text.matches('\n').count(), 1);
    }

    #[test]
    fn live_keeps_each_phases_last_line() {
        let out = Shared::default();
        let p = Progress::with_writer(out.clone(), 1, "eval before", true);
        p.conversation_done(Some(false), 0.0);
        p.set_phase("train", 1);
        p.set_epoch(0, 1);
        p.conversation_done(Some(true), 0.0);
        p.finish();
        let text = out.text();
        assert!(text.contains("eval before: 1/1 done, 0 correct (0.0%), 0 errored, $0.0000\n"), "{text:?}");
        assert!(
            text.ends_with("train epoch 0: 1/1 done, 1 correct (100.0%), 0 errored, $0.0000\n"),
            "{text:?}"
        );
        assert_eq!(text.matches('\n').count(), 2, "{text:?}");
    }
}
