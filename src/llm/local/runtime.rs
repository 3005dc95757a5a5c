//! The llama.cpp worker: one OS thread per model file owns the loaded model and its context and runs one
//! generation at a time, off the async runtime. The thread starts (and loads the weights) on the first
//! request and lives for the process. The KV cache keeps the last prompts of `SEQUENCES` conversations,
//! one llama.cpp sequence each (see `slots`), so the next turn of any of them only evaluates its new
//! tokens, even when several conversations take turns.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::oneshot;

use super::slots::Slots;
use super::window;

/// Context window. gemma-3-270m was trained on 32k, but a 270M model gains little from more than a few
/// turns, and 4096 keeps the KV cache (and prompt evaluation on 2 cores) small.
pub const N_CTX: u32 = 4096;
/// Conversations whose prompts stay cached at once, each in a sequence of its own with the whole
/// `N_CTX` window (the KV cache is that many times as large: ~18 KB per token for gemma-3-270m).
pub const SEQUENCES: usize = 4;
/// Tokens evaluated per decode call.
const N_BATCH: usize = 512;
/// How much of the prompt's opening survives a middle cut (instructions, worked example, the problem).
const KEEP_HEAD: usize = 768;
const CUT_MARKER: &str = "\n[... earlier part of the transcript omitted ...]\n";

/// Weights loaded so far in this process (one per distinct model file, however many `open`s).
pub static LOADS: AtomicUsize = AtomicUsize::new(0);

/// What to sample.
#[derive(Debug, Clone)]
pub enum Shape {
    /// Free text until a stop sequence.
    Text,
    /// A call object under a grammar (the prompt already ends with the call opening).
    Call(Schemas),
    /// Free text; if the model writes `open`, a call object under a grammar follows it.
    TextOrCall { open: String, schemas: Schemas },
}

/// JSON schemas of a call: the exact one, and a looser one for when the exact one does not compile.
#[derive(Debug, Clone)]
pub struct Schemas {
    pub exact: String,
    pub fallback: String,
}

#[derive(Debug, Clone)]
pub struct Sampling {
    /// 0 means greedy.
    pub temperature: f32,
    pub seed: u32,
    /// 1.0 disables it.
    pub repeat_penalty: f32,
    pub max_tokens: usize,
}

pub struct Job {
    pub prompt: String,
    pub stops: Vec<String>,
    pub shape: Shape,
    pub sampling: Sampling,
    /// Dropped by the caller when it stops waiting: the worker then stops generating.
    pub reply: oneshot::Sender<Result<Generation, String>>,
    /// Where the free text goes as it is generated (`chat --stream`), piece by piece.
    pub pieces: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct Generation {
    /// Free text (before the call, if any).
    pub text: String,
    /// The sampled call object, as text.
    pub call: Option<String>,
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    /// Generation hit the token limit.
    pub truncated: bool,
    pub timing: Timing,
}

/// Where the time went (for the benchmark): prompt tokens actually evaluated (not reused from the cache)
/// and the seconds spent on them, and the seconds spent sampling and evaluating generated tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    pub prompt_evaluated: u64,
    pub prompt_secs: f64,
    pub generation_secs: f64,
}

impl Timing {
    fn add(&mut self, other: &Timing) {
        self.prompt_evaluated += other.prompt_evaluated;
        self.prompt_secs += other.prompt_secs;
        self.generation_secs += other.generation_secs;
    }
}

/// The worker of one model file. Cheap to hold; the thread and the weights come with the first job.
pub struct Worker {
    path: PathBuf,
    /// Conversations kept cached at once (sequences of the KV cache).
    sequences: usize,
    sender: OnceLock<Mutex<mpsc::Sender<Job>>>,
}

impl Worker {
    /// Queues a job; the worker runs jobs in arrival order, one at a time.
    pub fn submit(&self, job: Job) -> Result<(), String> {
        let sender = self.sender.get_or_init(|| Mutex::new(spawn(self.path.clone(), self.sequences)));
        let sender = sender.lock().map_err(|_| "the local model worker lock is poisoned".to_string())?;
        sender.send(job).map_err(|_| "the local model worker has stopped".to_string())
    }
}

/// The one worker of `path` in this process: every `open` of the same file shares the loaded weights.
pub fn worker(path: &Path) -> Arc<Worker> {
    worker_with(path, sequences())
}

/// The worker of `path` keeping `sequences` conversations cached (the benchmark asks for 1 and for the
/// default, each loading the weights once).
pub fn worker_with(path: &Path, sequences: usize) -> Arc<Worker> {
    type Workers = HashMap<(PathBuf, usize), Arc<Worker>>;
    static WORKERS: OnceLock<Mutex<Workers>> = OnceLock::new();
    let mut workers = WORKERS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let sequences = sequences.clamp(1, 64);
    workers
        .entry((path.to_path_buf(), sequences))
        .or_insert_with(|| Arc::new(Worker { path: path.to_path_buf(), sequences, sender: OnceLock::new() }))
        .clone()
}

fn spawn(path: PathBuf, sequences: usize) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let name = "agentopt-llama".to_string();
    let spawned = std::thread::Builder::new().name(name).spawn(move || serve(&path, sequences, rx));
    if let Err(e) = spawned {
        // The receiver is gone with the closure: every submit reports the worker as stopped.
        tracing::error!("cannot start the local model thread: {e}");
    }
    tx
}

/// llama.cpp's global state is initialised once per process.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs a lot to stderr; send it through tracing (visible with RUST_LOG=debug).
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| format!("cannot initialise llama.cpp: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn serve(path: &Path, sequences: usize, jobs: mpsc::Receiver<Job>) {
    let loaded = backend().and_then(|backend| {
        let started = std::time::Instant::now();
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| format!("cannot load the model `{}`: {e}", path.display()))?;
        LOADS.fetch_add(1, Ordering::Relaxed);
        tracing::info!("loaded `{}` in {:.1?}", path.display(), started.elapsed());
        Ok((backend, model))
    });
    let (backend, model) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return fail_all(jobs, &e),
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(N_CTX * sequences as u32))
        .with_n_seq_max(sequences as u32)
        // Each sequence its own N_CTX cells: a long transcript never crowds out the others.
        .with_kv_unified(false)
        .with_n_batch(N_BATCH as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        // Gemma 3 uses sliding-window attention; a full-size SWA cache lets us cut the cache at any
        // position, which prefix reuse needs.
        .with_swa_full(true);
    let ctx = match model.new_context(backend, params) {
        Ok(ctx) => ctx,
        Err(e) => return fail_all(jobs, &format!("cannot create a llama.cpp context: {e}")),
    };
    let mut engine = Engine { model: &model, ctx, slots: Slots::new(sequences), slot: 0 };
    for job in jobs {
        if job.reply.is_closed() {
            continue;
        }
        let result = engine.run(&job);
        let _ = job.reply.send(result);
    }
}

fn fail_all(jobs: mpsc::Receiver<Job>, error: &str) {
    tracing::error!("{error}");
    for job in jobs {
        let _ = job.reply.send(Err(error.to_string()));
    }
}

/// Why a sampling pass ended.
enum End {
    Eog,
    Stop(String),
    Length,
}

struct Pass {
    text: String,
    prompt_tokens: usize,
    generated: usize,
    end: End,
    timing: Timing,
}

struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    /// The tokens whose keys and values sit in each sequence of the KV cache, position 0 onwards.
    slots: Slots<LlamaToken>,
    /// The sequence the current pass evaluates in.
    slot: usize,
}

/// `SEQUENCES`, or `AGENTOPT_LOCAL_SEQUENCES` (1 is the single cache of before: the benchmark
/// compares the two).
fn sequences() -> usize {
    crate::env::var(crate::env::AGENTOPT_LOCAL_SEQUENCES)
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(SEQUENCES)
}

impl Engine<'_> {
    fn run(&mut self, job: &Job) -> Result<Generation, String> {
        let cancelled = || job.reply.is_closed();
        let emit = |piece: &str| {
            if let Some(pieces) = &job.pieces {
                let _ = pieces.send(piece.to_string());
            }
        };
        let text = Some(&emit as &dyn Fn(&str));
        let s = &job.sampling;
        match &job.shape {
            Shape::Text => {
                let pass = self.pass(&job.prompt, &job.stops, None, s, s.max_tokens, &cancelled, text)?;
                Ok(Generation {
                    truncated: matches!(pass.end, End::Length),
                    prompt_tokens: pass.prompt_tokens as u64,
                    generated_tokens: pass.generated as u64,
                    timing: pass.timing,
                    text: pass.text,
                    call: None,
                })
            }
            Shape::Call(schemas) => {
                let grammar = self.grammar(schemas)?;
                let pass = self.pass(&job.prompt, &[], Some(&grammar), s, s.max_tokens, &cancelled, None)?;
                Ok(Generation {
                    truncated: matches!(pass.end, End::Length),
                    prompt_tokens: pass.prompt_tokens as u64,
                    generated_tokens: pass.generated as u64,
                    timing: pass.timing,
                    text: String::new(),
                    call: Some(pass.text),
                })
            }
            Shape::TextOrCall { open, schemas } => {
                let first = self.pass(&job.prompt, &job.stops, None, s, s.max_tokens, &cancelled, text)?;
                let mut out = Generation {
                    truncated: matches!(first.end, End::Length),
                    prompt_tokens: first.prompt_tokens as u64,
                    generated_tokens: first.generated as u64,
                    timing: first.timing,
                    text: first.text.clone(),
                    call: None,
                };
                if matches!(&first.end, End::Stop(stop) if stop == open) {
                    // The model opened a call: continue the same text under the call grammar. The cache
                    // already holds the prompt and the text, so only the opening is evaluated again.
                    let prompt = format!("{}{}{}", job.prompt, first.text, open);
                    let grammar = self.grammar(schemas)?;
                    let left = s.max_tokens.saturating_sub(first.generated).max(64);
                    let call = self.pass(&prompt, &[], Some(&grammar), s, left, &cancelled, None)?;
                    out.generated_tokens += call.generated as u64;
                    out.timing.add(&call.timing);
                    out.truncated = matches!(call.end, End::Length);
                    out.call = Some(call.text);
                }
                Ok(out)
            }
        }
    }

    /// The GBNF grammar of a call schema, falling back to the looser schema when the exact one does not
    /// compile (llama.cpp does not support every JSON Schema feature).
    fn grammar(&self, schemas: &Schemas) -> Result<String, String> {
        let compiles = |schema: &str| {
            let gbnf = llama_cpp_2::json_schema_to_grammar(schema).ok()?;
            LlamaSampler::grammar(self.model, &gbnf, "root").ok().map(|_| gbnf)
        };
        compiles(&schemas.exact)
            .or_else(|| {
                tracing::warn!("call schema does not compile to a grammar; using the loose one");
                compiles(&schemas.fallback)
            })
            .ok_or_else(|| "cannot build a grammar for the function call".to_string())
    }

    /// Evaluates `prompt` (reusing the cached prefix) and samples until an end-of-generation token, a stop
    /// sequence, or `max` tokens. `emit` gets the text as it is generated, held back while it could
    /// still turn out to be the start of a stop sequence, so that it adds up to the pass's text.
    #[allow(clippy::too_many_arguments)]
    fn pass(
        &mut self,
        prompt: &str,
        stops: &[String],
        grammar: Option<&str>,
        s: &Sampling,
        max: usize,
        cancelled: &dyn Fn() -> bool,
        emit: Option<&dyn Fn(&str)>,
    ) -> Result<Pass, String> {
        let hold_back = stops.iter().map(|s| s.len()).max().unwrap_or(1).saturating_sub(1);
        let mut emitted = 0;
        let max = max.clamp(1, N_CTX as usize / 2);
        let vocab = self.model.vocab();
        let tokens = vocab.tokenize(prompt.as_bytes(), true, false);
        let marker = vocab.tokenize(CUT_MARKER.as_bytes(), false, false);
        let tokens = window::fit(&tokens, N_CTX as usize - max - 1, KEEP_HEAD, &marker);
        if tokens.is_empty() {
            return Err("empty prompt".into());
        }
        self.slot = self.slots.pick(&tokens);
        let started = Instant::now();
        let evaluated = self.evaluate(&tokens, cancelled).inspect_err(|_| self.forget())?;
        let prompt_secs = started.elapsed().as_secs_f64();
        let started = Instant::now();

        let mut sampler = self.sampler(grammar, s)?;
        let mut bytes = Vec::new();
        let mut generated = 0;
        let end = loop {
            if generated >= max {
                break End::Length;
            }
            if cancelled() {
                return Err("cancelled".into());
            }
            let token = sampler.sample(&self.ctx, -1);
            if vocab.is_eog(token) {
                break End::Eog;
            }
            generated += 1;
            bytes.extend(vocab.token_to_piece(token, false, None));
            let text = String::from_utf8_lossy(&bytes);
            if let Some((at, stop)) = find_stop(&text, stops) {
                let kept = text[..at].to_string();
                bytes = kept.into_bytes();
                break End::Stop(stop.to_string());
            }
            if let Some(emit) = emit {
                // A stop can only begin in the last `hold_back` bytes; an incomplete character at
                // the end (the lossy U+FFFD) waits for its next token.
                let complete = text.trim_end_matches('\u{FFFD}');
                let mut safe = complete.len().saturating_sub(hold_back);
                while !complete.is_char_boundary(safe) {
                    safe -= 1;
                }
                if safe > emitted {
                    emit(&complete[emitted..safe]);
                    emitted = safe;
                }
            }
            self.decode(&[token], true).inspect_err(|_| self.forget())?;
        };
        let text = String::from_utf8_lossy(&bytes).trim_end().to_string();
        if let Some(emit) = emit.filter(|_| text.len() > emitted) {
            emit(&text[emitted..]);
        }
        let timing = Timing {
            prompt_evaluated: evaluated as u64,
            prompt_secs,
            generation_secs: started.elapsed().as_secs_f64(),
        };
        Ok(Pass { text, prompt_tokens: tokens.len(), generated, end, timing })
    }

    /// Brings the KV cache to `tokens`: keeps the common prefix with what is cached, evaluates the rest.
    /// At least the last token is evaluated so that its logits are there to sample from. Returns how many
    /// tokens were evaluated.
    fn evaluate(&mut self, tokens: &[LlamaToken], cancelled: &dyn Fn() -> bool) -> Result<usize, String> {
        let (slot, seq) = (self.slot, self.slot as i32);
        let cached = self.slots.tokens(slot);
        let mut keep = window::common_prefix(cached, tokens).min(tokens.len() - 1);
        if keep < cached.len() && self.ctx.kv_cache_seq_rm(seq, Some(keep as u32), None).is_err() {
            // Some caches cannot drop a suffix; start this sequence over rather than fail.
            let _ = self.ctx.clear_kv_cache_seq(Some(slot as u32), None, None);
            keep = 0;
        }
        self.slots.tokens(slot).truncate(keep);
        tracing::debug!("prompt: {} tokens, {keep} reused from the cache", tokens.len());
        let rest = &tokens[keep..];
        let chunks = rest.chunks(N_BATCH).count();
        for (i, chunk) in rest.chunks(N_BATCH).enumerate() {
            if cancelled() {
                return Err("cancelled".into());
            }
            self.decode(chunk, i + 1 == chunks)?;
        }
        Ok(rest.len())
    }

    /// Evaluates `tokens` at the end of the cache, asking for logits of the last one when `logits`.
    fn decode(&mut self, tokens: &[LlamaToken], logits: bool) -> Result<(), String> {
        let mut batch = LlamaBatch::new(tokens.len(), 1);
        let (slot, seq) = (self.slot, self.slot as i32);
        let start = self.slots.tokens(slot).len();
        for (i, token) in tokens.iter().enumerate() {
            let last = logits && i + 1 == tokens.len();
            batch.add(*token, (start + i) as i32, &[seq], last).map_err(|e| e.to_string())?;
        }
        self.ctx.decode(&mut batch).map_err(|e| format!("llama.cpp decode failed: {e}"))?;
        self.slots.tokens(slot).extend_from_slice(tokens);
        Ok(())
    }

    /// After a failure the content of the current sequence is unknown: drop it (the others are
    /// untouched).
    fn forget(&mut self) {
        if self.ctx.clear_kv_cache_seq(Some(self.slot as u32), None, None).is_err() {
            self.ctx.clear_kv_cache();
            for slot in 0..self.slots.count() {
                self.slots.tokens(slot).clear();
            }
        }
        self.slots.tokens(self.slot).clear();
    }

    fn sampler(&self, grammar: Option<&str>, s: &Sampling) -> Result<LlamaSampler, String> {
        let mut chain = Vec::new();
        if let Some(gbnf) = grammar {
            // First in the chain: it masks every token the grammar forbids before anything else looks.
            chain.push(LlamaSampler::grammar(self.model, gbnf, "root").map_err(|e| e.to_string())?);
        }
        if s.repeat_penalty != 1.0 {
            chain.push(LlamaSampler::penalties(self.model.n_vocab(), 64, s.repeat_penalty, 0.0, 0.0));
        }
        if s.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            chain.extend([
                LlamaSampler::top_k(40),
                LlamaSampler::top_p(0.95, 1),
                LlamaSampler::min_p(0.05, 1),
                LlamaSampler::temp(s.temperature),
                LlamaSampler::dist(s.seed),
            ]);
        }
        Ok(LlamaSampler::chain_simple(chain))
    }
}

/// The earliest stop sequence in `text`: its byte offset and the stop itself.
fn find_stop<'s>(text: &str, stops: &'s [String]) -> Option<(usize, &'s str)> {
    stops.iter().filter_map(|s| text.find(s.as_str()).map(|at| (at, s.as_str()))).min_by_key(|(at, _)| *at)
}
