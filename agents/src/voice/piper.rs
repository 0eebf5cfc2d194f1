//! Piper neural voices (VITS exported to ONNX) run by ONNX Runtime.
//!
//! ONNX Runtime is loaded at run time from the shared library the install script unpacks
//! from the `onnxruntime` wheel (`ort` with `load-dynamic`: nothing is downloaded at build
//! time, and a machine without the library still builds and falls back to espeak-ng). The
//! pure-Rust runtimes cannot run this graph (tract cannot type the relative-position
//! attention reshape; candle-onnx lacks RandomNormalLike, NonZero, GatherND, Softplus,
//! ConvTranspose).
//!
//! Phonemes come from espeak-ng (the voice's `phoneme_type` is `espeak`), are mapped to ids
//! with the voice's `phoneme_id_map` after NFD normalisation, and framed the way Piper
//! trained: `^`, then every phoneme followed by the pad `_`, then `$`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use super::espeak;
use super::wav::Pcm;
use super::{Utterance, Voice, VoiceEngine, VoiceError};

/// The `.onnx.json` next to every Piper voice (only what inference needs).
#[derive(Debug, Clone, Deserialize)]
pub struct PiperConfig {
    /// Output sample rate.
    pub audio: AudioConfig,
    /// The espeak-ng voice the phonemes must come from.
    pub espeak: EspeakConfig,
    /// Default sampling scales.
    pub inference: InferenceConfig,
    /// Must be `espeak`: other phonemisers are not supported.
    pub phoneme_type: String,
    /// Phoneme (one character, NFD) → model ids.
    pub phoneme_id_map: HashMap<String, Vec<i64>>,
    /// Language of the voice.
    #[serde(default)]
    pub language: Option<LanguageConfig>,
}

/// `audio` in the voice config.
#[derive(Debug, Clone, Deserialize)]
pub struct AudioConfig {
    /// Samples per second of the model's output.
    pub sample_rate: u32,
}

/// `espeak` in the voice config.
#[derive(Debug, Clone, Deserialize)]
pub struct EspeakConfig {
    /// e.g. `en-us`.
    pub voice: String,
}

/// `inference` in the voice config: VITS's sampling scales.
#[derive(Debug, Clone, Deserialize)]
pub struct InferenceConfig {
    /// Variation of the generated audio.
    pub noise_scale: f32,
    /// Phoneme duration multiplier (> 1 is slower).
    pub length_scale: f32,
    /// Variation of the phoneme durations.
    pub noise_w: f32,
}

/// `language` in the voice config.
#[derive(Debug, Clone, Deserialize)]
pub struct LanguageConfig {
    /// e.g. `en_US`.
    pub code: String,
}

/// The ONNX Runtime environment, created once per process (ONNX Runtime allows one).
fn environment(runtime: &Path) -> Result<ort::environment::Environment, VoiceError> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        if !runtime.is_file() {
            return Err(format!(
                "ONNX Runtime is not installed: {} is missing; run {}",
                runtime.display(),
                crate::models::INSTALL_HINT
            ));
        }
        ort::init_from(runtime)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", runtime.display()))?
            .with_name("aiprod-voice")
            .build()
            .map_err(|e| format!("ONNX Runtime environment: {e}"))
    })
    .clone()
    .map_err(VoiceError::Unavailable)
}

/// A loaded Piper voice. One per process per model file ([`shared`]): loading takes about a
/// second; the session sits behind a mutex because a run needs it mutably.
pub struct PiperVoice {
    session: Mutex<Session>,
    config: PiperConfig,
    lang: String,
    id: String,
    load_time: Duration,
}

impl std::fmt::Debug for PiperVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperVoice").field("id", &self.id).field("lang", &self.lang).finish()
    }
}

impl PiperVoice {
    /// Loads `model` (`.onnx`, with its `.onnx.json` beside it) on ONNX Runtime from
    /// `runtime`, with `threads` intra-op threads.
    pub fn load(model: &Path, runtime: &Path, threads: usize) -> Result<Self, VoiceError> {
        let started = Instant::now();
        let config_path = PathBuf::from(format!("{}.json", model.display()));
        for p in [model, config_path.as_path()] {
            if !p.is_file() {
                return Err(VoiceError::Unavailable(format!(
                    "Piper voice file {} is missing; run {}",
                    p.display(),
                    crate::models::INSTALL_HINT
                )));
            }
        }
        let text = std::fs::read_to_string(&config_path)
            .map_err(|e| VoiceError::Io(format!("reading {}: {e}", config_path.display())))?;
        let config: PiperConfig = serde_json::from_str(&text)
            .map_err(|e| VoiceError::Failed(format!("{} is not a Piper voice config: {e}", config_path.display())))?;
        if config.phoneme_type != "espeak" {
            return Err(VoiceError::Failed(format!(
                "{}: phoneme_type '{}' is not supported (espeak only)",
                config_path.display(),
                config.phoneme_type
            )));
        }
        for symbol in ["^", "$", "_"] {
            if !config.phoneme_id_map.contains_key(symbol) {
                return Err(VoiceError::Failed(format!("{}: no id for '{symbol}'", config_path.display())));
            }
        }
        let env = environment(runtime)?;
        let fail = |e: &dyn std::fmt::Display| VoiceError::Failed(format!("loading {}: {e}", model.display()));
        let session = Session::builder(&env)
            .map_err(|e| fail(&e))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| fail(&e))?
            .with_inter_threads(1)
            .map_err(|e| fail(&e))?
            .commit_from_file(model)
            .map_err(|e| fail(&e))?;
        let stem = model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let lang = config
            .language
            .as_ref()
            .map(|l| l.code.split(['_', '-']).next().unwrap_or("").to_ascii_lowercase())
            .unwrap_or_else(|| stem.split(['_', '-']).next().unwrap_or("").to_ascii_lowercase());
        Ok(Self {
            session: Mutex::new(session),
            config,
            lang,
            id: format!("piper:{stem}"),
            load_time: started.elapsed(),
        })
    }

    /// How long loading took (reported in memory and by `aiprod models verify`).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Model input ids for a phoneme string; characters the voice does not know are skipped.
    pub fn phoneme_ids(&self, phonemes: &str) -> Vec<i64> {
        let map = &self.config.phoneme_id_map;
        let id = |s: &str| map.get(s).cloned().unwrap_or_default();
        let pad = id("_");
        let mut ids = id("^");
        ids.extend(&pad);
        let mut buf = [0u8; 4];
        for c in phonemes.nfd() {
            if let Some(v) = map.get(c.encode_utf8(&mut buf) as &str) {
                ids.extend(v);
                ids.extend(&pad);
            }
        }
        ids.extend(id("$"));
        ids
    }

    #[doc(hidden)]
    pub fn debug_sentence(&self, s: &str, rate: f32) -> Result<Pcm, VoiceError> {
        self.sentence(s, rate)
    }

    /// Synthesises one sentence at `rate` (1.0 = the voice's own pace; 1.1 = 10 % faster).
    fn sentence(&self, sentence: &str, rate: f32) -> Result<Pcm, VoiceError> {
        let phonemes = espeak::sentence_phonemes(&self.config.espeak.voice, sentence)?;
        let ids = self.phoneme_ids(&phonemes);
        if ids.len() <= 3 {
            return Ok(Pcm { samples: Vec::new(), sample_rate: self.config.audio.sample_rate });
        }
        let inf = &self.config.inference;
        let scales = vec![inf.noise_scale, inf.length_scale / rate.max(0.1), inf.noise_w];
        let fail = |e: &dyn std::fmt::Display| VoiceError::Failed(format!("{}: {e}", self.id));
        let n = ids.len();
        let input = Tensor::from_array(([1usize, n], ids)).map_err(|e| fail(&e))?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(|e| fail(&e))?;
        let scales = Tensor::from_array(([3usize], scales)).map_err(|e| fail(&e))?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales])
            .map_err(|e| fail(&e))?;
        let (_, audio) = outputs["output"].try_extract_tensor::<f32>().map_err(|e| fail(&e))?;
        // Piper's own scaling: normalise each sentence to its peak (never amplifying
        // near-silence by more than 100×).
        let peak = audio.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(0.01);
        let samples = audio.iter().map(|v| v / peak * 0.9).collect();
        Ok(Pcm { samples, sample_rate: self.config.audio.sample_rate })
    }
}

impl Voice for PiperVoice {
    fn id(&self) -> &str {
        &self.id
    }
    fn engine(&self) -> VoiceEngine {
        VoiceEngine::Piper
    }
    fn language(&self) -> &str {
        &self.lang
    }
    fn espeak_voice(&self) -> &str {
        &self.config.espeak.voice
    }
    fn speak(&self, text: &str, rate: f32) -> Result<Utterance, VoiceError> {
        super::speak_by_sentence(self, text, rate, |s| self.sentence(s, rate))
    }
}

/// The process-wide instance of the voice in `model` (loaded on first use, kept for the
/// process: every job shares it). A failed load is remembered too, so a broken install is
/// reported once per process rather than retried per scene.
pub fn shared(model: &Path, runtime: &Path, threads: usize) -> Result<Arc<PiperVoice>, VoiceError> {
    type Cache = Mutex<HashMap<PathBuf, Result<Arc<PiperVoice>, VoiceError>>>;
    static ALL: OnceLock<Cache> = OnceLock::new();
    let mut all = ALL.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    all.entry(model.to_path_buf()).or_insert_with(|| PiperVoice::load(model, runtime, threads).map(Arc::new)).clone()
}
