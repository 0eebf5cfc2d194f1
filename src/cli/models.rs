//! `aiprod models list | verify | prepare`: what is installed, whether it loads and computes
//! the reference results, and the one-off requantisation the installer runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use agents::models::{self, Registry, prepare};
use clap::Subcommand;
use sha2::{Digest, Sha256};

use crate::config::Config;

/// `aiprod models …`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Installed models, their files and sizes.
    List,
    /// Hash every file, load every model and check it against its reference output.
    Verify {
        /// Tokens the LLM generates for its speed figure (end-of-turn ignored above 16, so
        /// the figure covers exactly this many).
        #[arg(long, default_value_t = 16)]
        tokens: usize,
    },
    /// Score every available translation backend with chrF on the reference set and store
    /// the scores; a backend is used for a pair only when its score reaches the bar.
    EvaluateTranslation {
        /// Reference sentences per language (at most 32).
        #[arg(long, default_value_t = 32)]
        limit: usize,
        /// Target languages.
        #[arg(long, value_delimiter = ',', default_value = "fr,es,de")]
        lang: Vec<String>,
        /// Only the backends whose id starts with one of these (`apertium`, `marian`, `llm`);
        /// all installed backends when absent. Scores of the others are kept.
        #[arg(long, value_delimiter = ',')]
        backend: Vec<String>,
    },
    /// Let the creative director write a storyboard for a brief, without running a job: the
    /// chosen scene lines, every rejected candidate with its reason, and the timings.
    Direct {
        /// The brief.
        brief: String,
        /// Target duration, seconds.
        #[arg(long, default_value_t = 20)]
        duration: u32,
        /// Sampler seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Candidate lines per scene (default: models.directorCandidates).
        #[arg(long)]
        candidates: Option<usize>,
        /// Print the full report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Requantise the installed SmolLM2 GGUF to Q8_0 and build the illustration index
    /// (both idempotent; the installer runs it).
    Prepare {
        /// Models directory (default: models.dir from the config).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Assets directory (default: render.assetsDir from the config).
        #[arg(long)]
        assets: Option<PathBuf>,
    },
}

/// Export the configured inference thread count for candle before any model or thread pool
/// exists, unless the environment already chose one.
pub fn export_thread_count(config: &Config) {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: called from `cli::main` before the async runtime or any other thread starts,
        // so no thread can be reading the environment concurrently.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", config.models.threads.to_string()) };
    }
}

/// Run a `models` subcommand.
pub fn run(command: ModelsCommand, config: &Config) -> ExitCode {
    match command {
        ModelsCommand::List => list(&config.models.dir),
        ModelsCommand::Verify { tokens } => verify(config, tokens),
        ModelsCommand::EvaluateTranslation { limit, lang, backend } => {
            evaluate_translation(config, limit, &lang, &backend)
        }
        ModelsCommand::Direct { brief, duration, seed, candidates, json } => {
            direct(config, &brief, duration, seed, candidates, json)
        }
        ModelsCommand::Prepare { dir, assets } => {
            let dir = dir.unwrap_or_else(|| config.models.dir.clone());
            match prepare::prepare_smollm2(&dir) {
                Ok(prepare::Prepared::AlreadyDone) => {
                    println!("models: {} already prepared (Q8_0)", models::SMOLLM2_ID);
                }
                Ok(prepare::Prepared::Requantized { tensors }) => {
                    println!("models: {} requantised to Q8_0 ({tensors} tensors)", models::SMOLLM2_ID);
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
            let assets = assets.unwrap_or_else(|| config.render.assets_dir.clone());
            match prepare_illustrations(&dir, &assets) {
                Ok(message) => {
                    println!("assets: {message}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Builds the illustration index under `assets` once (embedding every annotation with the
/// installed all-MiniLM-L6-v2), so no job pays for it.
fn prepare_illustrations(models_dir: &Path, assets: &Path) -> Result<String, String> {
    use agents::illustrate::IllustrationIndex;
    if let Some(index) = IllustrationIndex::load_cached(assets) {
        return Ok(format!("illustration index already built ({} illustrations)", index.len()));
    }
    let started = std::time::Instant::now();
    let embedder = models::embed::Embedder::load(&models_dir.join(models::MINILM_DIR)).map_err(|e| e.to_string())?;
    let index = IllustrationIndex::build(assets, &embedder).map_err(|e| e.to_string())?;
    index.save(assets).map_err(|e| e.to_string())?;
    Ok(format!("illustration index built: {} illustrations in {:.1} s", index.len(), started.elapsed().as_secs_f64()))
}

const MODELS: [(&str, &str); 4] = [
    (models::MINILM_ID, "sentence embeddings (semantic QA, director ranking, consistency cache)"),
    (models::SMOLLM2_ID, "creative director LLM"),
    (models::PIPER_JOE_ID, "English narrator: Piper neural voice (dataset CC0, fine-tuned from lessac)"),
    (models::ONNX_RUNTIME_ID, "ONNX Runtime 1.32.0 (MIT), runs the Piper voice"),
];

fn list(dir: &Path) -> ExitCode {
    println!("models directory: {}", dir.display());
    for (id, role) in MODELS {
        let status = match models::check_installed(dir, id) {
            Ok(()) => "installed".to_owned(),
            Err(e) => format!("NOT INSTALLED ({e})"),
        };
        println!("{id:<24} {status} — {role}");
        for f in models::required_files(id) {
            if let Ok(meta) = std::fs::metadata(dir.join(f)) {
                println!("    {f:<64} {:>7.1} MB", meta.len() as f64 / 1e6);
            }
        }
    }
    let espeak = if agents::voice::espeak::available() {
        "installed (system package)"
    } else {
        "NOT INSTALLED (apt-get install espeak-ng)"
    };
    println!("{:<24} {espeak} — phonemes for Piper; formant voice (not neural) for the other languages", "espeak-ng");
    let stats = crate::store::cache::stats();
    println!(
        "consistency cache (this process): markers {} hits, {} misses; identical requests {} hits, {} misses \
         (the service's /metrics counts its own)",
        stats.hits, stats.misses, stats.request_hits, stats.request_misses
    );
    ExitCode::SUCCESS
}

fn sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut HashWriter(&mut h))?;
    Ok(hex::encode(h.finalize()))
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn verify(config: &Config, tokens: usize) -> ExitCode {
    let dir = &config.models.dir;
    let mut ok = true;
    for (id, _) in MODELS {
        if let Err(e) = models::check_installed(dir, id) {
            println!("{id}: FAIL — {e}");
            ok = false;
            continue;
        }
        for f in models::required_files(id) {
            match sha256(&dir.join(f)) {
                Ok(h) => println!("{id}: {f} sha256 {h}"),
                Err(e) => {
                    println!("{id}: FAIL — reading {f}: {e}");
                    ok = false;
                }
            }
        }
    }
    let registry = Registry::new(config.models.settings());
    if registry.installed(models::MINILM_ID) {
        match registry.embedder() {
            Ok((emb, load)) => {
                let started = Instant::now();
                match emb.similarity("A man is eating food.", "A man is eating a piece of bread.") {
                    Ok(s) => {
                        let pass = (s - 0.755).abs() < 0.01;
                        ok &= pass;
                        println!(
                            "{}: loaded in {} ms; reference similarity {s:.4} (expected ≈ 0.755) in {} ms — {}",
                            models::MINILM_ID,
                            load.as_millis(),
                            started.elapsed().as_millis(),
                            if pass { "OK" } else { "FAIL" }
                        );
                    }
                    Err(e) => {
                        ok = false;
                        println!("{}: FAIL — {e}", models::MINILM_ID);
                    }
                }
            }
            Err(e) => {
                ok = false;
                println!("{}: FAIL — {e}", models::MINILM_ID);
            }
        }
    }
    if registry.installed(models::SMOLLM2_ID) {
        match registry.llm() {
            Ok((llm, load)) => {
                let llm = llm.lock().unwrap_or_else(|p| p.into_inner());
                let ids = llm.encode("<|im_start|>system\n").unwrap_or_default();
                let pass = ids == [1, 9690, 198];
                ok &= pass;
                let prompt = models::llm::chat_prompt("You are a helpful assistant.", "Say hello.");
                let params = models::GenerationParams {
                    max_tokens: tokens,
                    seed: 1,
                    ignore_eos: tokens > 16,
                    ..Default::default()
                };
                match llm.generate(&prompt, &params, &mut |_, _| true) {
                    Ok(g) => println!(
                        "{}: loaded in {} ms; tokenizer ids {ids:?} — {}; {} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s: {:?}",
                        models::SMOLLM2_ID,
                        load.as_millis(),
                        if pass { "OK" } else { "FAIL (expected [1, 9690, 198])" },
                        g.prompt_tokens,
                        g.prefill_tok_s(),
                        g.generated_tokens,
                        g.generate_tok_s(),
                        g.text
                    ),
                    Err(e) => {
                        ok = false;
                        println!("{}: FAIL — {e}", models::SMOLLM2_ID);
                    }
                }
            }
            Err(e) => {
                ok = false;
                println!("{}: FAIL — {e}", models::SMOLLM2_ID);
            }
        }
    }
    ok &= verify_voices(config);
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Speaks a reference sentence with every configured Piper voice and with espeak-ng, and
/// checks that each result is speech of a plausible length.
fn verify_voices(config: &Config) -> bool {
    use agents::voice::{Voice, espeak::EspeakVoice, piper};
    const SENTENCE: &str = "Fresh bread at dawn, warm from the oven.";
    let settings = config.voice.settings(&config.models.dir);
    let check = |name: &str, voice: &dyn Voice, load_ms: u128| -> bool {
        let started = Instant::now();
        match voice.speak(SENTENCE, 1.0) {
            Ok(u) => {
                let secs = u.duration_s();
                let peak = u.samples.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let pass = (1.0..6.0).contains(&secs) && peak > 0.1 && u.words.len() == 8;
                let took = started.elapsed().as_secs_f64();
                println!(
                    "{name}: loaded in {load_ms} ms; {:?} → {secs:.2} s of speech, peak {peak:.2}, {} words timed, \
                     synthesised in {took:.2} s (real-time factor {:.2}) — {}",
                    SENTENCE,
                    u.words.len(),
                    took / secs.max(1e-6),
                    if pass { "OK" } else { "FAIL" }
                );
                pass
            }
            Err(e) => {
                println!("{name}: FAIL — {e}");
                false
            }
        }
    };
    let mut ok = true;
    for (lang, model) in &settings.piper_voices {
        if !model.is_file() {
            continue; // reported above as not installed (or a user's voice that is missing)
        }
        let started = Instant::now();
        match piper::PiperVoice::load(model, &settings.onnx_runtime, settings.threads) {
            Ok(v) => ok &= check(&format!("piper voice for '{lang}' ({})", v.id()), &v, started.elapsed().as_millis()),
            Err(e) => {
                ok = false;
                println!("piper voice for '{lang}': FAIL — {e}");
            }
        }
    }
    match EspeakVoice::for_language("en") {
        Ok(v) if agents::voice::espeak::available() => ok &= check("espeak-ng (formant, en)", &v, 0),
        _ => {
            ok = false;
            println!("espeak-ng: FAIL — not installed (apt-get install espeak-ng)");
        }
    }
    ok
}

fn direct(config: &Config, brief: &str, duration: u32, seed: u64, candidates: Option<usize>, json: bool) -> ExitCode {
    use agents::director::{CreativeDirector, DirectorSettings};
    use agents::planner::PlanRequest;
    for m in [models::SMOLLM2_ID, models::MINILM_ID] {
        if let Err(e) = models::check_installed(&config.models.dir, m) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let director = CreativeDirector {
        registry: Registry::shared(&config.models.settings()),
        settings: DirectorSettings {
            candidates: candidates.unwrap_or(config.models.director_candidates),
            temperature: config.models.director_temperature,
            repair_rounds: config.models.director_repair_rounds,
        },
    };
    let req = PlanRequest {
        brief: brief.to_owned(),
        duration_s: duration,
        language: "en".into(),
        fast_track: false,
        limits: crate::pipeline::stages::plan_limits(config, duration, false),
        reuse_markers: None,
        speech: config.voice.fit(),
    };
    let started = Instant::now();
    let directed = match director.direct(&req, &agents::AgentContext::with_seed(seed)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: the director wrote no storyboard: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&directed).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let r = &directed.report;
    for (n, (scene, &i)) in directed.manifest.scenes.iter().zip(&r.chosen).enumerate() {
        let rel = r.candidates[i].relevance.unwrap_or(0.0);
        println!(
            "scene {} ({:.1} s, {}, {}, similarity {rel:.3}): {} — {}",
            n + 1,
            scene.duration_s,
            scene.camera.as_str(),
            scene.mood,
            scene.caption,
            scene.description
        );
    }
    for c in r.candidates.iter().filter(|c| c.rejected.is_some()) {
        println!(
            "  rejected for scene {} (seed {}): {} — {:?}",
            c.scene,
            c.seed,
            c.rejected.as_deref().unwrap_or(""),
            c.text
        );
    }
    println!(
        "{} lines sampled, {} tokens, prefill {:.0} tok/s, generation {:.1} tok/s, mean similarity {:.3}, {:.1} s",
        r.candidates.len(),
        r.generated_tokens,
        r.prefill_tok_s,
        r.generate_tok_s,
        r.relevance,
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn evaluate_translation(config: &Config, limit: usize, langs: &[String], only: &[String]) -> ExitCode {
    use agents::translate;
    let (mut backends, problems) = crate::pipeline::stages::translation_backends(config);
    if !only.is_empty() {
        backends.retain(|b| only.iter().any(|o| b.id().starts_with(o.as_str())));
    }
    for p in &problems {
        println!("backend not loaded: {p}");
    }
    if backends.is_empty() {
        println!("no translation backend is installed; every extra subtitle language stays unavailable");
        return ExitCode::SUCCESS;
    }
    let mut table = match translate::load_quality(&config.models.dir) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bar = config.models.translation_min_chrf;
    let mut ok = true;
    for b in &backends {
        for lang in langs {
            if !b.supports("en", lang) {
                continue;
            }
            let started = Instant::now();
            match translate::evaluate(b.as_ref(), "en", lang, limit) {
                Ok(q) => {
                    println!(
                        "{} en-{lang}: chrF {:.1} on {} sentences in {:.1} s — {}",
                        b.id(),
                        q.chrf,
                        q.sentences,
                        started.elapsed().as_secs_f64(),
                        if q.chrf >= bar { "used".to_owned() } else { format!("below the bar {bar:.1}: not used") }
                    );
                    table.entry(b.id()).or_default().insert(format!("en-{lang}"), q);
                }
                Err(e) => {
                    ok = false;
                    println!("{} en-{lang}: FAIL — {e}", b.id());
                }
            }
        }
    }
    if let Err(e) = translate::save_quality(&config.models.dir, &table) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
