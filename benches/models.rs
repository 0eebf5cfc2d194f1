//! Local model throughput: the director LLM's prefill and generation tokens/s (SmolLM2-135M
//! Q8_0), sentence embeddings per second (all-MiniLM-L6-v2), and the model part of semantic
//! QA per job (embedding the brief, script, captions and descriptions of a 4-scene job).
//! Skips, saying why, when the models are not installed (`./scripts/install_models.sh`).
//! Thread count: `CANDLE_NUM_THREADS` (default 1 here, like the config).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use agents::models::{self, GenerationParams, ModelSettings, Registry};

const PROMPT_USER: &str = "Brief: Explain in four scenes how a heat pump moves heat from cold outdoor air into a warm \
house: the outdoor unit, the refrigerant loop, the compressor, and the indoor radiators.\nWrite exactly 4 scenes.";

fn registry() -> Option<Registry> {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: set before any model or thread pool exists, on the only thread.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    let dir = models::test_models_dir();
    for m in [models::SMOLLM2_ID, models::MINILM_ID] {
        if let Err(e) = models::check_installed(&dir, m) {
            eprintln!("skipping model benchmarks: {e}");
            return None;
        }
    }
    Some(Registry::new(ModelSettings { dir, threads: 1 }))
}

fn llm(c: &mut Criterion) {
    let Some(reg) = registry() else { return };
    let (llm, _) = reg.llm().expect("load SmolLM2");
    let llm = llm.lock().unwrap();
    let prompt = models::llm::chat_prompt("You write storyboards for short videos.", PROMPT_USER);
    let prompt_tokens = llm.encode(&prompt).unwrap().len() as u64;
    let mut g = c.benchmark_group("director_llm");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(prompt_tokens));
    let prefill = GenerationParams { max_tokens: 1, seed: 1, ..Default::default() };
    g.bench_function("prefill_tokens", |b| b.iter(|| llm.generate(&prompt, &prefill, &mut |_, _| true).unwrap()));
    // 64 generated tokens (sampling never stops early: end-of-turn is ignored by the count).
    let n = 64;
    g.throughput(Throughput::Elements(n as u64));
    let params = GenerationParams { max_tokens: n, seed: 1, ..Default::default() };
    g.bench_function("generate_64_tokens_incl_prefill", |b| {
        b.iter(|| llm.generate(&prompt, &params, &mut |_, _| true).unwrap())
    });
    g.finish();
    let r = llm.generate(&prompt, &params, &mut |_, _| true).unwrap();
    eprintln!(
        "director_llm single run: {} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s",
        r.prompt_tokens,
        r.prefill_tok_s(),
        r.generated_tokens,
        r.generate_tok_s()
    );
}

fn embeddings(c: &mut Criterion) {
    let Some(reg) = registry() else { return };
    let (emb, _) = reg.embedder().expect("load MiniLM");
    let sentences: Vec<&str> = agents::translate::reference::SENTENCES.iter().map(|s| s.0).collect();
    let mut g = c.benchmark_group("embeddings");
    g.sample_size(10);
    g.throughput(Throughput::Elements(sentences.len() as u64));
    g.bench_function("sentences_batch_32", |b| b.iter(|| emb.embed(&sentences).unwrap()));
    // Semantic QA's model work for a 4-scene job: brief, script, 4 captions, 4 descriptions.
    let job: Vec<&str> = sentences[..10].to_vec();
    g.throughput(Throughput::Elements(1));
    g.bench_function("semantic_qa_job_embeddings", |b| b.iter(|| emb.embed(&job).unwrap()));
    g.finish();
}

criterion_group!(benches, llm, embeddings);
criterion_main!(benches);
