//! Tokens per second of the embedded llama.cpp backend against llama-cpp-python's OpenAI-compatible
//! server on the same GGUF: prompt evaluation and generation, measured on the same prompt text. And
//! conversations taking turns on the embedded model (what `--concurrency` > 1 makes of it), with one
//! cached sequence and with one per conversation.
//!
//! In-process figures come from the worker's own timers (tokens evaluated / seconds, excluding tokens
//! reused from the KV cache). The server reports no timings, so it is timed from outside: a request with
//! `max_tokens: 1` times the prompt, then the same prompt again (the server reuses its cached prefix)
//! times the generation. Both include the sampler; the server's figures also include HTTP and JSON.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::llm::local;

/// A paragraph repeated to make the prompt long; a nonce up front defeats prompt caches.
const FILLER: &str = "A farmer has some chickens and some cows. Together they have 30 heads and 74 legs. \
How many chickens and how many cows does the farmer have? Explain each step of the reasoning. ";

struct Plan {
    repeats: usize,
    max_tokens: u32,
    rounds: usize,
}

/// Runs the benchmark; `quick` uses a shorter prompt, fewer tokens and one round.
pub async fn run(quick: bool) -> Value {
    let plan = if quick {
        Plan { repeats: 8, max_tokens: 64, rounds: 1 }
    } else {
        Plan { repeats: 25, max_tokens: 256, rounds: 3 }
    };
    let gguf = match local::default_model_path() {
        Ok(path) => path,
        Err(e) => return json!({"error": e.to_string()}),
    };
    json!({
        "model_file": gguf.display().to_string(),
        "threads": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "in_process": in_process(&gguf, &plan).await.unwrap_or_else(|e| json!({"error": e})),
        "llama_cpp_python_server": server(&gguf, &plan).await.unwrap_or_else(|e| json!({"error": e})),
        "conversations_in_turns": in_turns(&gguf, quick).await.unwrap_or_else(|e| json!({"error": e})),
    })
}

fn prompt(round: usize, plan: &Plan) -> String {
    format!("Round {round} ({}).\n{}", std::process::id(), FILLER.repeat(plan.repeats))
}

#[cfg(not(feature = "local"))]
async fn in_process(_: &std::path::Path, _: &Plan) -> Result<Value, String> {
    Err("built without the `local` feature".into())
}

#[cfg(feature = "local")]
async fn in_process(gguf: &std::path::Path, plan: &Plan) -> Result<Value, String> {
    use crate::llm::{ChatRequest, Message};
    let model = local::LocalModel::new("bench", gguf);
    let request = |text: String, max_tokens: u32| {
        let mut r = ChatRequest {
            messages: vec![Message::user(text)],
            temperature: Some(0.0),
            max_tokens: Some(max_tokens),
            ..Default::default()
        };
        r.extra.insert("repeat_penalty".into(), json!(1.0));
        r
    };
    // Warm-up: loads the weights, which is not what is measured.
    model.chat_timed(&request("Hello".into(), 1)).await.map_err(|e| e.to_string())?;
    let (mut evaluated, mut prompt_secs, mut generated, mut gen_secs) = (0u64, 0.0, 0u64, 0.0);
    for round in 0..plan.rounds {
        let (response, timing) = model
            .chat_timed(&request(prompt(round, plan), plan.max_tokens))
            .await
            .map_err(|e| e.to_string())?;
        evaluated += timing.prompt_evaluated;
        prompt_secs += timing.prompt_secs;
        generated += response.usage.output_tokens;
        gen_secs += timing.generation_secs;
    }
    Ok(speeds(evaluated, prompt_secs, generated, gen_secs))
}

#[cfg(not(feature = "local"))]
async fn in_turns(_: &std::path::Path, _: bool) -> Result<Value, String> {
    Err("built without the `local` feature".into())
}

/// Four conversations served in turns, as `eval --concurrency 4` has them: each turn appends a tool
/// result to its own transcript and asks for a short reply. Prompt tokens evaluated and wall time with a
/// single cached sequence (every turn after another conversation's starts from the shared opening) and
/// with `SEQUENCES` (each conversation finds its own transcript cached).
#[cfg(feature = "local")]
async fn in_turns(gguf: &std::path::Path, quick: bool) -> Result<Value, String> {
    use crate::llm::{ChatRequest, Message};
    let (conversations, turns) = if quick { (4, 3) } else { (4, 6) };
    let mut figures = serde_json::Map::new();
    for sequences in [1, local::SEQUENCES] {
        let model = local::LocalModel::with_sequences("bench", gguf, sequences);
        let request = |messages: Vec<Message>| {
            let mut r =
                ChatRequest { messages, temperature: Some(0.0), max_tokens: Some(16), ..Default::default() };
            r.extra.insert("repeat_penalty".into(), json!(1.0));
            r
        };
        model.chat_timed(&request(vec![Message::user("Hello")])).await.map_err(|e| e.to_string())?;
        let mut transcripts: Vec<Vec<Message>> = (0..conversations)
            .map(|c| {
                vec![
                    Message::system(format!("{}\nSolve the problem with Python.", FILLER.repeat(4))),
                    Message::user(format!("Problem {c}: what is {} * {}?", 17 + c, 23 + 2 * c)),
                ]
            })
            .collect();
        let (mut evaluated, mut prompt_tokens) = (0, 0);
        let started = Instant::now();
        for turn in 0..turns {
            for (c, transcript) in transcripts.iter_mut().enumerate() {
                let (response, timing) =
                    model.chat_timed(&request(transcript.clone())).await.map_err(|e| e.to_string())?;
                evaluated += timing.prompt_evaluated;
                prompt_tokens += response.usage.input_tokens;
                transcript.push(response.message);
                transcript.push(Message::user(format!(
                    "exitcode: 0 (execution succeeded)\nCode output: {} (turn {turn} of conversation {c})",
                    (17 + c) * (23 + 2 * c) + turn
                )));
            }
        }
        figures.insert(
            format!("sequences_{sequences}"),
            json!({
                "conversations": conversations, "turns_each": turns,
                "prompt_tokens": prompt_tokens, "prompt_tokens_evaluated": evaluated,
                "wall_s": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            }),
        );
    }
    Ok(Value::Object(figures))
}

async fn server(gguf: &std::path::Path, plan: &Plan) -> Result<Value, String> {
    let python = crate::exec::find_python();
    let server = super::llama_server::start(
        &python,
        gguf,
        4096,
        Some(super::llama_server::BASE_MODEL_CHAT_FORMAT),
        Duration::from_secs(120),
    )
    .await?;
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", server.base_url);
    let call = |text: String, max_tokens: u32| {
        let body = json!({
            "model": "bench", "messages": [{"role": "user", "content": text}],
            "temperature": 0, "repeat_penalty": 1.0, "max_tokens": max_tokens
        });
        let request = client.post(&url).json(&body).timeout(Duration::from_secs(300));
        async move {
            let started = Instant::now();
            let reply: Value = request
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| format!("server request failed: {e}"))?
                .json()
                .await
                .map_err(|e| format!("server reply is not JSON: {e}"))?;
            let tokens = |k: &str| reply["usage"][k].as_u64().unwrap_or(0);
            Ok::<_, String>((
                started.elapsed().as_secs_f64(),
                tokens("prompt_tokens"),
                tokens("completion_tokens"),
            ))
        }
    };
    call("Hello".into(), 1).await?;
    let (mut evaluated, mut prompt_secs, mut generated, mut gen_secs) = (0u64, 0.0, 0u64, 0.0);
    for round in 0..plan.rounds {
        let text = prompt(round, plan);
        let (secs, prompt_tokens, _) = call(text.clone(), 1).await?;
        evaluated += prompt_tokens;
        prompt_secs += secs;
        let (secs, _, completion) = call(text, plan.max_tokens).await?;
        generated += completion;
        gen_secs += secs;
    }
    Ok(speeds(evaluated, prompt_secs, generated, gen_secs))
}

fn speeds(evaluated: u64, prompt_secs: f64, generated: u64, gen_secs: f64) -> Value {
    let rate = |n: u64, secs: f64| if secs > 0.0 { (n as f64 / secs * 10.0).round() / 10.0 } else { 0.0 };
    json!({
        "prompt_tokens": evaluated,
        "prompt_tok_per_s": rate(evaluated, prompt_secs),
        "generated_tokens": generated,
        "generation_tok_per_s": rate(generated, gen_secs),
    })
}
