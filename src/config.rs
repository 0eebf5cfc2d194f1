//! Typed configuration loaded from `config/v33.json`.
//!
//! The file is parsed with `deny_unknown_fields` so a typo is an error, not a silently
//! ignored key, and every error names the key path (`render.tiers.standard.fps`). After
//! parsing, [`Config::validate`] checks the relations serde cannot express (ranges, weights
//! that add up, presets that name existing tiers). Nothing else in the crate reads the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::pipeline::machine::Stage;

/// The aiprod home: the directory relative paths in the configuration resolve against.
/// `$AIPROD_HOME` when set; else, for a config file, the directory above its `config/`
/// directory when it sits in one (the repository layout, `config/v33.json`), otherwise the
/// file's own directory; else (the built-in configuration) the current directory.
pub fn home_for(config_file: Option<&Path>) -> PathBuf {
    if let Some(home) = std::env::var_os("AIPROD_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let cwd = || std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let Some(file) = config_file else { return cwd() };
    let file = if file.is_relative() { cwd().join(file) } else { file.to_path_buf() };
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_else(cwd);
    match dir.file_name() {
        Some(name) if name == "config" => dir.parent().map(Path::to_path_buf).unwrap_or(dir),
        _ => dir,
    }
}

/// Why a configuration could not be used; always names the offending key path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The file that was read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The JSON is malformed or does not match the schema.
    #[error("config key '{key}': {message}")]
    Parse {
        /// Dotted path of the key that failed.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// A value is out of its allowed range or inconsistent with another.
    #[error("config key '{key}': {message}")]
    Invalid {
        /// Dotted path of the key that failed.
        key: String,
        /// What was wrong.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), message: message.into() }
}

/// The whole configuration. Field names follow the v33 JSON (camelCase).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Version of the configuration schema; recorded in cost certificates and cache keys.
    pub version: String,
    /// Retry, timeout and re-render policy for the driver.
    pub orchestrator: Orchestrator,
    /// Limits for incoming briefs.
    pub input_sanitizer: InputSanitizer,
    /// When and how the fast track applies.
    pub fast_track: FastTrack,
    /// The 168-hour consistency cache.
    pub consistency_cache: ConsistencyCache,
    /// Money rules.
    pub financial: Financial,
    /// What the technical QA gate checks.
    pub technical_qa: TechnicalQa,
    /// Minimum scores per gate.
    pub quality_gates: QualityGates,
    /// Semantic QA criteria weights and thresholds.
    pub semantic_qa: SemanticQa,
    /// The supervisor's decision matrix.
    pub supervisor: Supervisor,
    /// Named presets a brief may ask for.
    pub presets: BTreeMap<String, Preset>,
    /// Render tiers and layout constants.
    pub render: Render,
    /// Log file location and rotation.
    pub logging: Logging,
    /// Where jobs and artifacts live.
    pub storage: Storage,
    /// The static pricing table and where a dynamic one comes from.
    pub pricing: Pricing,
    /// `aiprod serve`: bind address, workers, queue, rate limits, CORS, webhooks.
    #[serde(default)]
    pub service: Service,
    /// Local models: where they are installed and how the agents run them.
    pub models: Models,
    /// Narration: voices, pauses and limits, the mix, subtitle rules.
    #[serde(default)]
    pub voice: Voice,
}

/// The `pricing` section: a versioned static table, and optionally a file path or http(s)
/// URL serving a newer one (refreshed every `financial.dynamicPricing.updateIntervalHours`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pricing {
    /// File path or `http(s)://` URL of a dynamic pricing table; `null` = static only.
    pub source: Option<String>,
    /// The static table, in force when there is no source (or it fails and
    /// `fallbackToStatic` is on).
    pub table: crate::finance::pricing::PricingTable,
}

/// The HTTP service (`aiprod serve`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Service {
    /// Address to listen on. `AIPROD_BIND` overrides.
    pub bind: String,
    /// Jobs driven at once; each render also uses the encoder's threads.
    pub workers: usize,
    /// Jobs waiting for a worker beyond which submissions get 429.
    pub max_queued_jobs: i64,
    /// Seconds a shutdown waits for running stages to stop at a checkpoint.
    pub shutdown_grace_sec: f64,
    /// Per-key request rate limits.
    pub rate_limit: RateLimits,
    /// Origins allowed to call the API from a browser (CORS); empty = same origin only.
    pub cors_origins: Vec<String>,
    /// Terminal-state callbacks.
    pub webhooks: Webhooks,
    /// Seconds a client has to send a request's headers, counted from when the connection
    /// waits for a request: a slow sender (slowloris) and an idle keep-alive connection are
    /// both closed after it.
    pub header_timeout_sec: f64,
    /// Seconds a client has to send a request's whole body once its headers arrived.
    pub body_timeout_sec: f64,
    /// Failed authentications one client address may make per minute before it gets 429.
    pub failed_auth_per_minute: u32,
    /// Serve `/metrics` and the full `/health` without a key. Off by default: on a bind
    /// address that is not loopback they need a key with the `ops` or `admin` role, and
    /// `/health` without one answers only that the process is alive.
    pub public_ops: bool,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            workers: 2,
            max_queued_jobs: 100,
            shutdown_grace_sec: 10.0,
            rate_limit: RateLimits::default(),
            cors_origins: Vec::new(),
            webhooks: Webhooks::default(),
            header_timeout_sec: 10.0,
            body_timeout_sec: 30.0,
            failed_auth_per_minute: 20,
            public_ops: false,
        }
    }
}

/// Token-bucket limits: a default for every key and overrides by key name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RateLimits {
    /// The limit of keys without an override.
    pub default: RateLimit,
    /// Limits by API key name.
    pub per_key: BTreeMap<String, RateLimit>,
}

/// One key's limit.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimit {
    /// Sustained requests per minute.
    pub per_minute: f64,
    /// Requests allowed in a burst above the sustained rate.
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { per_minute: 600.0, burst: 60.0 }
    }
}

/// Webhook delivery policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Webhooks {
    /// Allow callbacks to loopback and private addresses (off: they could reach internal
    /// services).
    pub allow_private: bool,
    /// Delivery attempts before giving up.
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt.
    pub backoff_ms: u64,
    /// Per-attempt timeout.
    pub timeout_sec: f64,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self { allow_private: false, max_attempts: 5, backoff_ms: 500, timeout_sec: 10.0 }
    }
}

/// Driver policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Orchestrator {
    /// Retries for transient stage failures.
    pub retry_policy: RetryPolicy,
    /// Per-stage timeout in seconds, keyed by stage (unknown keys are a parse error).
    pub stage_timeouts_sec: StageTimeouts,
    /// A job that stays in one state longer than this raises an alert.
    pub alert_on_stuck_state_minutes: u64,
    /// How many times a technical QA failure may send the job back to rendering.
    pub max_rerenders: u32,
}

impl Orchestrator {
    /// The timeout for a stage; stages without an entry get the longest configured one.
    pub fn timeout(&self, stage: Stage) -> std::time::Duration {
        let secs = self
            .stage_timeouts_sec
            .0
            .get(&stage)
            .copied()
            .unwrap_or_else(|| self.stage_timeouts_sec.0.values().copied().fold(60.0, f64::max));
        std::time::Duration::from_secs_f64(secs)
    }
}

/// `orchestrator.stageTimeoutsSec`, keyed by the [`Stage`] enum. A `BTreeMap<String, _>`
/// looked up by name let `technicalQa` never match `technical_qa`, so two stages silently ran
/// with the largest timeout; parsing the keys here makes an unknown key an error naming it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimeouts(pub BTreeMap<Stage, f64>);

impl<'de> Deserialize<'de> for StageTimeouts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, f64>::deserialize(d)?;
        let mut out = BTreeMap::new();
        for (key, secs) in raw {
            let stage = Stage::from_config_key(&key).ok_or_else(|| {
                let known: Vec<&str> = Stage::ALL.iter().map(|s| s.config_key()).collect();
                serde::de::Error::custom(format!("unknown stage '{key}' (expected one of {})", known.join(", ")))
            })?;
            out.insert(stage, secs);
        }
        Ok(Self(out))
    }
}

/// Exponential backoff with jitter for transient failures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay in seconds (fractions allowed, for tests).
    pub backoff_sec: f64,
    /// Upper bound of a single backoff delay.
    pub max_backoff_sec: f64,
}

/// Input limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InputSanitizer {
    /// Shortest brief, in characters.
    pub min_content_chars: usize,
    /// Longest brief, in characters.
    pub max_content_chars: usize,
    /// Shortest video, in seconds.
    pub min_duration_sec: u32,
    /// Longest video, in seconds.
    pub max_duration_sec: u32,
    /// Duration when the brief names none.
    pub default_duration_sec: u32,
    /// Allowed priorities.
    pub priorities: Vec<String>,
    /// Allowed subtitle languages (ISO 639-1).
    pub languages: Vec<String>,
    /// Allowed aspect ratios.
    pub aspect_ratios: Vec<String>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest brand id.
    pub max_brand_id_chars: usize,
}

/// Fast-track rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FastTrack {
    /// Briefs whose complexity score is below this take the fast track.
    pub activation_complexity_max: f64,
    /// Longest fast-track video.
    pub max_duration_sec: u32,
    /// Most scenes on the fast track.
    pub max_scenes: usize,
    /// Highest estimated cost (USD) of a job the fast track takes; a costlier one takes the
    /// full path (the route stage says so).
    pub cost_ceiling: f64,
    /// Latency target for a fast-track job: one whose predicted CPU-seconds exceed it takes the
    /// full path.
    pub max_latency_sec: u32,
}

/// Consistency cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsistencyCache {
    /// How long entries live.
    pub ttl_hours: u64,
    /// Embedding similarity above which markers are reused.
    pub similarity_threshold: f64,
    /// Whether entries are shared across jobs of a brand.
    pub reuse_across_jobs: bool,
}

/// Money rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Financial {
    /// Hard ceiling per minute of output.
    pub max_cost_per_minute: f64,
    /// Estimated cost above which the fast track is forced.
    pub force_fast_track_if_cost_exceeds: f64,
    /// Quality floor and cost ceiling per tier.
    pub quality_to_cost_mapping: BTreeMap<String, QualityCost>,
    /// Pricing-table refresh.
    pub dynamic_pricing: DynamicPricing,
    /// Spend allowed per day.
    pub daily_limit: f64,
    /// Overrun handling.
    pub cost_controls: CostControls,
}

/// One row of the quality-to-cost mapping.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QualityCost {
    /// Quality the tier is expected to reach.
    pub min_quality: f64,
    /// Most it may cost per minute.
    pub max_cost_per_minute: f64,
}

/// Pricing refresh policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DynamicPricing {
    /// Refresh interval.
    pub update_interval_hours: u64,
    /// Use the static table when the refresh fails.
    pub fallback_to_static: bool,
}

/// Overrun handling.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CostControls {
    /// Actual cost may exceed the estimate by this much before it is flagged.
    pub max_overrun_percentage: f64,
    /// Fraction of `financial.dailyLimit` at which the daily guard starts warning (the
    /// economy tier takes over at 90 %, refusal at 100 %).
    pub alert_threshold: f64,
    /// Downgrade the tier instead of refusing when over budget.
    pub auto_downgrade: bool,
}

/// Technical QA gate settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TechnicalQa {
    /// Allowed difference between planned and measured duration.
    pub duration_tolerance_sec: f64,
    /// Required video codec name as FFmpeg reports it.
    pub codec: String,
    /// Whether an audio stream must be present.
    pub audio_required: bool,
    /// Audio whose RMS level is below this (dBFS) counts as silent.
    pub silence_threshold_dbfs: f64,
}

/// Minimum scores per gate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QualityGates {
    /// Technical score needed to pass the technical gate.
    pub technical: f64,
    /// Semantic score needed to pass the semantic gate.
    pub semantic: f64,
    /// Overall quality needed for automatic approval; the supervisor applies the stricter of
    /// this and `supervisor.approveMinQuality`.
    pub final_approval: f64,
}

/// Semantic QA criteria.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SemanticQa {
    /// Weight and threshold per criterion name.
    pub criteria: BTreeMap<String, Criterion>,
}

/// One semantic criterion.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Criterion {
    /// Share of the overall semantic score.
    pub weight: f64,
    /// Score below which the criterion fails.
    pub threshold: f64,
}

/// Supervisor thresholds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Supervisor {
    /// Quality at or above which a job within budget is approved.
    pub approve_min_quality: f64,
    /// Quality below which a job is rejected.
    pub reject_below_quality: f64,
    /// Technical score below which a job is rejected.
    pub reject_below_technical: f64,
}

/// Which planning path a preset uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PipelineKind {
    /// Fast track allowed.
    Fast,
    /// Always the full creative path.
    Full,
}

/// A named bundle of options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Preset {
    /// Fast or full pipeline.
    pub pipeline: PipelineKind,
    /// Quality the preset promises.
    pub min_quality: f64,
    /// Longest video the preset accepts.
    pub max_duration_sec: u32,
    /// Price per minute of output quoted for the preset.
    pub cost_per_minute: f64,
    /// Tier used when the brief names none.
    pub default_tier: String,
    /// Pause for a human plan review before rendering.
    pub plan_review: bool,
    /// Use the consistency cache.
    pub cache: bool,
    /// Require more than one reviewer.
    pub multi_review: bool,
    /// Narrate the video unless the brief says `"narration": false`.
    #[serde(default = "yes")]
    pub narration: bool,
    /// The voice used when the brief names none.
    #[serde(default)]
    pub voice: agents::voice::VoiceChoice,
}

fn yes() -> bool {
    true
}

/// The `voice` section: which voices speak, how scenes are fitted to the speech, how the
/// soundtrack is mixed and how subtitles are cut from the words.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Voice {
    /// Piper voice (`.onnx`, its `.onnx.json` beside it) per language; a relative path is
    /// inside `models.dir`. Languages without one are spoken by espeak-ng.
    pub piper_voices: BTreeMap<String, PathBuf>,
    /// ONNX Runtime's shared library; a relative path is inside `models.dir`.
    pub onnx_runtime: PathBuf,
    /// Intra-op threads for the neural voice.
    pub threads: usize,
    /// Silence before each scene's speech, seconds (the crossfade into the scene).
    pub lead_in_sec: f64,
    /// Silence after each scene's speech, seconds.
    pub tail_sec: f64,
    /// Shortest scene, seconds.
    pub min_scene_sec: f64,
    /// Largest speed-up of the speech to fit the requested duration (0.12 = 12 %).
    pub max_rate_change: f64,
    /// How far the fitted total may stray from the requested duration, seconds.
    pub duration_tolerance_sec: f64,
    /// Integrated loudness of the final mix, LUFS.
    pub target_lufs: f64,
    /// True-peak ceiling of the final mix, dBTP.
    pub true_peak_dbtp: f64,
    /// How far the music ducks under the voice, dB.
    pub duck_db: f32,
    /// Ducking attack, ms.
    pub duck_attack_ms: f32,
    /// Ducking release, ms.
    pub duck_release_ms: f32,
    /// Subtitle line length, characters.
    pub subtitle_line_chars: usize,
    /// Subtitle lines per cue.
    pub subtitle_lines: usize,
    /// Subtitle reading speed, characters per second.
    pub subtitle_chars_per_sec: f64,
}

impl Default for Voice {
    fn default() -> Self {
        Self {
            piper_voices: BTreeMap::from([(
                "en".to_owned(),
                PathBuf::from("piper-en_US-joe-medium/en_US-joe-medium.onnx"),
            )]),
            onnx_runtime: PathBuf::from("onnxruntime/libonnxruntime.so.1.32.0"),
            threads: 2,
            lead_in_sec: 0.4,
            tail_sec: 0.5,
            min_scene_sec: 2.0,
            max_rate_change: 0.12,
            duration_tolerance_sec: 2.0,
            target_lufs: -14.0,
            true_peak_dbtp: -1.0,
            duck_db: 14.0,
            duck_attack_ms: 60.0,
            duck_release_ms: 450.0,
            subtitle_line_chars: 42,
            subtitle_lines: 2,
            subtitle_chars_per_sec: 20.0,
        }
    }
}

impl Voice {
    /// The voices' settings, relative paths resolved inside `models_dir`.
    pub fn settings(&self, models_dir: &Path) -> agents::voice::VoiceSettings {
        let resolve = |p: &PathBuf| if p.is_absolute() { p.clone() } else { models_dir.join(p) };
        agents::voice::VoiceSettings {
            piper_voices: self.piper_voices.iter().map(|(l, p)| (l.clone(), resolve(p))).collect(),
            onnx_runtime: resolve(&self.onnx_runtime),
            threads: self.threads,
        }
    }

    /// Pauses and limits for fitting scenes to the speech.
    pub fn fit(&self) -> agents::voice::fit::FitSettings {
        agents::voice::fit::FitSettings {
            lead_in_s: self.lead_in_sec,
            tail_s: self.tail_sec,
            min_scene_s: self.min_scene_sec,
            max_rate_change: self.max_rate_change,
            tolerance_s: self.duration_tolerance_sec,
        }
    }

    /// Ducking and loudness of the mix.
    pub fn mix(&self) -> agents::domain::MixSettings {
        agents::domain::MixSettings {
            target_lufs: self.target_lufs,
            true_peak_dbtp: self.true_peak_dbtp,
            duck_db: self.duck_db,
            duck_attack_ms: self.duck_attack_ms,
            duck_release_ms: self.duck_release_ms,
        }
    }

    /// How subtitle cues are cut from the narration.
    pub fn cue_rules(&self) -> agents::voice::cues::CueRules {
        agents::voice::cues::CueRules {
            max_line_chars: self.subtitle_line_chars,
            max_lines: self.subtitle_lines,
            max_chars_per_s: self.subtitle_chars_per_sec,
            ..Default::default()
        }
    }
}

/// Render tiers and layout constants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Render {
    /// Encoder settings per tier name (economy, standard, premium).
    pub tiers: BTreeMap<String, Tier>,
    /// Crossfade length between scenes.
    pub transition_sec: f64,
    /// Longest preview clip.
    pub preview_max_sec: f64,
    /// Short side of the preview clip in pixels.
    pub preview_short_side: u32,
    /// The TrueType font captions are set in; Debian's Noto faces are its fallbacks.
    pub font_path: PathBuf,
    /// Where `scripts/install_assets.sh` installs the illustration set (also the emoji in
    /// captions); relative paths resolve against the working directory.
    pub assets_dir: PathBuf,
}

/// One quality tier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tier {
    /// Short side of the frame in pixels (720 = 1280×720 at 16:9).
    pub short_side: u32,
    /// Frames per second.
    pub fps: u32,
    /// libx264 preset (an unknown name is refused while the config is read, with its key).
    pub x264_preset: agents::domain::X264Preset,
    /// libx264 CRF.
    pub crf: u8,
    /// AAC bitrate, bits per second.
    pub audio_bitrate: u32,
}

/// Log file and rotation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Logging {
    /// Directory of the log file.
    pub dir: PathBuf,
    /// File name.
    pub file: String,
    /// Rotate when the file grows past this size.
    pub max_bytes: usize,
    /// How many rotated files to keep.
    pub backups: usize,
}

/// Storage locations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Storage {
    /// Root of the SQLite file and of the jobs' local working directories (`jobs/<id>/`).
    /// `AIPROD_DATA_DIR` overrides.
    pub data_dir: PathBuf,
    /// Where finished files are published so that every API node can serve them: a
    /// directory every node mounts (NFS, EFS), or `s3://bucket/prefix` (S3-compatible object
    /// storage; credentials, region and endpoint from the AWS environment variables). Unset,
    /// the working directories under `dataDir` are served as they are (one machine, or a
    /// shared `dataDir`). `--artifacts` / `AIPROD_ARTIFACTS` override.
    #[serde(default)]
    pub artifacts: Option<String>,
    /// Where jobs live: `postgres://user@host/db`, or `sqlite://path`; unset, the SQLite
    /// file under `dataDir`. `--store` / `AIPROD_STORE_URL` override.
    #[serde(default)]
    pub store_url: Option<String>,
    /// Seconds a worker's claim on a job lasts without a heartbeat (PostgreSQL); a worker
    /// that dies loses its jobs to another worker this long after its last heartbeat.
    #[serde(default = "default_lease_sec")]
    pub lease_sec: f64,
}

fn default_lease_sec() -> f64 {
    30.0
}

/// Local models section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Models {
    /// Directory `scripts/install_models.sh` installs into. `AIPROD_MODELS_DIR` overrides.
    pub dir: PathBuf,
    /// CPU threads for model inference (exported as `CANDLE_NUM_THREADS` unless already set).
    pub threads: usize,
    /// Candidate lines the creative director samples per scene (the valid one closest to the
    /// brief and the scene's beat wins).
    pub director_candidates: usize,
    /// The director's sampling temperature.
    pub director_temperature: f64,
    /// Extra sampling rounds for a scene none of whose candidate lines was valid.
    pub director_repair_rounds: usize,
    /// Lowest reference chrF (0–100) at which a translation backend is used for a pair.
    pub translation_min_chrf: f64,
    /// Marian model directories by pair (`"en-fr": "/path/to/opus-mt-en-fr"`); none ship here.
    #[serde(default)]
    pub marian: BTreeMap<String, PathBuf>,
}

impl Models {
    /// The model registry's settings (directory and inference threads).
    pub fn settings(&self) -> agents::models::ModelSettings {
        agents::models::ModelSettings { dir: self.dir.clone(), threads: self.threads }
    }
}

impl Config {
    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_owned(), source })?;
        let mut config = Self::from_json(&text)?;
        config.resolve_paths(&home_for(Some(path)));
        if let Ok(dir) = std::env::var("AIPROD_DATA_DIR") {
            config.storage.data_dir = PathBuf::from(dir);
        }
        if let Ok(dir) = std::env::var("AIPROD_MODELS_DIR") {
            config.models.dir = PathBuf::from(dir);
        }
        if let Ok(bind) = std::env::var("AIPROD_BIND") {
            config.service.bind = bind;
            config.validate()?;
        }
        Ok(config)
    }

    /// Parse and validate JSON text (no environment overrides).
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Parse {
                key: if key == "." { "(root)".into() } else { key },
                message: e.into_inner().to_string(),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration shipped in the repository, compiled in: the fallback when no file is
    /// given and the baseline for tests.
    pub fn builtin() -> Self {
        Self::from_json(include_str!("../config/v33.json")).expect("config/v33.json in the repository is valid")
    }

    /// Make every relative path in the configuration (data dir, models dir, log dir, font,
    /// Marian models, a file pricing source) absolute against `home`, so a command started from
    /// any directory reads and writes the same files.
    pub fn resolve_paths(&mut self, home: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = home.join(&*p);
            }
        };
        abs(&mut self.storage.data_dir);
        if let Some(dir) = &mut self.storage.artifacts
            && !dir.contains("://")
            && Path::new(dir.as_str()).is_relative()
        {
            *dir = home.join(dir.as_str()).to_string_lossy().into_owned();
        }
        abs(&mut self.models.dir);
        abs(&mut self.logging.dir);
        abs(&mut self.render.font_path);
        abs(&mut self.render.assets_dir);
        self.models.marian.values_mut().for_each(abs);
        if let Some(source) = &mut self.pricing.source
            && !source.starts_with("http://")
            && !source.starts_with("https://")
            && Path::new(source.as_str()).is_relative()
        {
            *source = home.join(source.as_str()).to_string_lossy().into_owned();
        }
    }

    /// Check the relations that the schema alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let unit = |key: &str, v: f64| {
            if (0.0..=1.0).contains(&v) { Ok(()) } else { Err(invalid(key, format!("{v} is not within 0.0–1.0"))) }
        };
        let positive = |key: &str, v: f64| {
            if v > 0.0 && v.is_finite() { Ok(()) } else { Err(invalid(key, format!("{v} must be a positive number"))) }
        };

        positive("storage.leaseSec", self.storage.lease_sec)?;

        let rp = &self.orchestrator.retry_policy;
        if rp.max_retries > 20 {
            return Err(invalid("orchestrator.retryPolicy.maxRetries", "at most 20 retries"));
        }
        if !(rp.backoff_sec >= 0.0 && rp.backoff_sec <= rp.max_backoff_sec) {
            return Err(invalid("orchestrator.retryPolicy.backoffSec", "must be ≥ 0 and ≤ maxBackoffSec"));
        }
        for (stage, secs) in &self.orchestrator.stage_timeouts_sec.0 {
            positive(&format!("orchestrator.stageTimeoutsSec.{}", stage.config_key()), *secs)?;
        }

        let s = &self.input_sanitizer;
        if s.min_content_chars == 0 || s.min_content_chars > s.max_content_chars {
            return Err(invalid("inputSanitizer.minContentChars", "must be ≥ 1 and ≤ maxContentChars"));
        }
        if s.min_duration_sec == 0 || s.min_duration_sec > s.max_duration_sec {
            return Err(invalid("inputSanitizer.minDurationSec", "must be ≥ 1 and ≤ maxDurationSec"));
        }
        if !(s.min_duration_sec..=s.max_duration_sec).contains(&s.default_duration_sec) {
            return Err(invalid("inputSanitizer.defaultDurationSec", "must lie within minDurationSec..maxDurationSec"));
        }
        for (i, r) in s.aspect_ratios.iter().enumerate() {
            r.parse::<agents::domain::AspectRatio>()
                .map_err(|e| invalid(format!("inputSanitizer.aspectRatios[{i}]"), e))?;
        }
        for (i, l) in s.languages.iter().enumerate() {
            if l.len() != 2 || !l.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(invalid(
                    format!("inputSanitizer.languages[{i}]"),
                    format!("'{l}' is not a lowercase ISO 639-1 code"),
                ));
            }
        }
        if s.languages.is_empty() || s.priorities.is_empty() || s.aspect_ratios.is_empty() {
            return Err(invalid("inputSanitizer", "languages, priorities and aspectRatios must not be empty"));
        }

        unit("fastTrack.activationComplexityMax", self.fast_track.activation_complexity_max)?;
        if self.fast_track.max_scenes == 0 {
            return Err(invalid("fastTrack.maxScenes", "must be at least 1"));
        }
        unit("consistencyCache.similarityThreshold", self.consistency_cache.similarity_threshold)?;
        let m = &self.models;
        if !(1..=64).contains(&m.threads) {
            return Err(invalid("models.threads", format!("{} is not within 1–64", m.threads)));
        }
        if !(1..=8).contains(&m.director_candidates) {
            return Err(invalid("models.directorCandidates", format!("{} is not within 1–8", m.director_candidates)));
        }
        if !(0.0..=2.0).contains(&m.director_temperature) {
            return Err(invalid(
                "models.directorTemperature",
                format!("{} is not within 0.0–2.0", m.director_temperature),
            ));
        }
        if !(0.0..=100.0).contains(&m.translation_min_chrf) {
            return Err(invalid(
                "models.translationMinChrf",
                format!("{} is not within 0–100", m.translation_min_chrf),
            ));
        }
        for pair in m.marian.keys() {
            let ok = pair.len() == 5
                && pair.as_bytes()[2] == b'-'
                && pair.bytes().filter(|b| b.is_ascii_lowercase()).count() == 4;
            if !ok {
                return Err(invalid(format!("models.marian.{pair}"), "keys are language pairs like \"en-fr\""));
            }
        }
        if m.director_repair_rounds > 3 {
            return Err(invalid("models.directorRepairRounds", "at most 3 repair rounds"));
        }
        positive("financial.maxCostPerMinute", self.financial.max_cost_per_minute)?;
        positive("financial.dailyLimit", self.financial.daily_limit)?;
        let alert = self.financial.cost_controls.alert_threshold;
        if !(alert > 0.0 && alert <= 0.9) {
            return Err(invalid(
                "financial.costControls.alertThreshold",
                "must be > 0 and ≤ 0.9 (the economy tier takes over at 90 % of the daily limit)",
            ));
        }
        for (tier, qc) in &self.financial.quality_to_cost_mapping {
            unit(&format!("financial.qualityToCostMapping.{tier}.minQuality"), qc.min_quality)?;
            positive(&format!("financial.qualityToCostMapping.{tier}.maxCostPerMinute"), qc.max_cost_per_minute)?;
        }
        unit("qualityGates.technical", self.quality_gates.technical)?;
        unit("qualityGates.semantic", self.quality_gates.semantic)?;
        unit("qualityGates.finalApproval", self.quality_gates.final_approval)?;
        positive("technicalQa.durationToleranceSec", self.technical_qa.duration_tolerance_sec)?;

        let mut total = 0.0;
        for name in ["styleCoherence", "narrativeAdherence", "emotionalSync", "visualQuality"] {
            let c = self
                .semantic_qa
                .criteria
                .get(name)
                .ok_or_else(|| invalid(format!("semanticQa.criteria.{name}"), "missing criterion"))?;
            unit(&format!("semanticQa.criteria.{name}.weight"), c.weight)?;
            unit(&format!("semanticQa.criteria.{name}.threshold"), c.threshold)?;
            total += c.weight;
        }
        if (total - 1.0).abs() > 1e-6 {
            return Err(invalid("semanticQa.criteria", format!("weights add up to {total}, not 1.0")));
        }

        let sv = &self.supervisor;
        unit("supervisor.approveMinQuality", sv.approve_min_quality)?;
        unit("supervisor.rejectBelowQuality", sv.reject_below_quality)?;
        unit("supervisor.rejectBelowTechnical", sv.reject_below_technical)?;
        if sv.reject_below_quality > sv.approve_min_quality {
            return Err(invalid("supervisor.rejectBelowQuality", "must not exceed approveMinQuality"));
        }

        for name in ["economy", "standard", "premium"] {
            let t =
                self.render.tiers.get(name).ok_or_else(|| invalid(format!("render.tiers.{name}"), "missing tier"))?;
            let key = format!("render.tiers.{name}");
            if !(120..=2160).contains(&t.short_side) {
                return Err(invalid(format!("{key}.shortSide"), "must be within 120..2160"));
            }
            if !(1..=60).contains(&t.fps) {
                return Err(invalid(format!("{key}.fps"), "must be within 1..60"));
            }
            if t.crf > 51 {
                return Err(invalid(format!("{key}.crf"), "must be within 0..51"));
            }
            if !(32_000..=512_000).contains(&t.audio_bitrate) {
                return Err(invalid(format!("{key}.audioBitrate"), "must be within 32000..512000"));
            }
        }
        if !(0.0..=2.0).contains(&self.render.transition_sec) {
            return Err(invalid("render.transitionSec", "must be within 0..2 seconds"));
        }
        positive("render.previewMaxSec", self.render.preview_max_sec)?;

        if self.presets.is_empty() {
            return Err(invalid("presets", "at least one preset is required"));
        }
        for (name, p) in &self.presets {
            if !self.render.tiers.contains_key(&p.default_tier) {
                return Err(invalid(
                    format!("presets.{name}.defaultTier"),
                    format!("unknown tier '{}'", p.default_tier),
                ));
            }
            unit(&format!("presets.{name}.minQuality"), p.min_quality)?;
            positive(&format!("presets.{name}.costPerMinute"), p.cost_per_minute)?;
        }
        self.pricing.table.validate().map_err(|e| match e {
            crate::finance::pricing::PricingError::Invalid { key, message } => {
                invalid(format!("pricing.table.{key}"), message)
            }
            other => invalid("pricing.table", other.to_string()),
        })?;
        if self.pricing.source.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(invalid("pricing.source", "must be a file path or an http(s) URL, or null"));
        }
        if self.financial.dynamic_pricing.update_interval_hours == 0 {
            return Err(invalid("financial.dynamicPricing.updateIntervalHours", "must be at least 1"));
        }
        let sv = &self.service;
        sv.bind
            .parse::<std::net::SocketAddr>()
            .map_err(|e| invalid("service.bind", format!("'{}' is not an address:port: {e}", sv.bind)))?;
        if sv.workers > 64 {
            return Err(invalid(
                "service.workers",
                "must be within 0..64 (0: an API node; `aiprod worker` processes run the jobs)",
            ));
        }
        if sv.max_queued_jobs < 1 {
            return Err(invalid("service.maxQueuedJobs", "must be at least 1"));
        }
        positive("service.shutdownGraceSec", sv.shutdown_grace_sec)?;
        positive("service.webhooks.timeoutSec", sv.webhooks.timeout_sec)?;
        positive("service.headerTimeoutSec", sv.header_timeout_sec)?;
        positive("service.bodyTimeoutSec", sv.body_timeout_sec)?;
        if sv.failed_auth_per_minute == 0 {
            return Err(invalid("service.failedAuthPerMinute", "must be at least 1"));
        }
        if sv.webhooks.max_attempts == 0 {
            return Err(invalid("service.webhooks.maxAttempts", "must be at least 1"));
        }
        let limits = std::iter::once(("default".to_owned(), &sv.rate_limit.default))
            .chain(sv.rate_limit.per_key.iter().map(|(k, v)| (format!("perKey.{k}"), v)));
        for (name, l) in limits {
            positive(&format!("service.rateLimit.{name}.perMinute"), l.per_minute)?;
            if !(l.burst >= 1.0 && l.burst.is_finite()) {
                return Err(invalid(format!("service.rateLimit.{name}.burst"), "must be at least 1"));
            }
        }
        for (i, o) in sv.cors_origins.iter().enumerate() {
            if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                return Err(invalid(
                    format!("service.corsOrigins[{i}]"),
                    format!("'{o}' is not an origin like https://example.com"),
                ));
            }
        }
        if self.logging.max_bytes < 1024 {
            return Err(invalid("logging.maxBytes", "must be at least 1024"));
        }
        let v = &self.voice;
        if !(1..=16).contains(&v.threads) {
            return Err(invalid("voice.threads", "must be within 1..16"));
        }
        for (key, value, lo, hi) in [
            ("voice.leadInSec", v.lead_in_sec, 0.0, 5.0),
            ("voice.tailSec", v.tail_sec, 0.0, 5.0),
            ("voice.minSceneSec", v.min_scene_sec, 0.5, 30.0),
            ("voice.maxRateChange", v.max_rate_change, 0.0, 0.5),
            ("voice.durationToleranceSec", v.duration_tolerance_sec, 0.0, 30.0),
            ("voice.targetLufs", v.target_lufs, -40.0, -5.0),
            ("voice.truePeakDbtp", v.true_peak_dbtp, -20.0, 0.0),
            ("voice.duckDb", v.duck_db as f64, 0.0, 40.0),
            ("voice.duckAttackMs", v.duck_attack_ms as f64, 1.0, 2000.0),
            ("voice.duckReleaseMs", v.duck_release_ms as f64, 1.0, 5000.0),
            ("voice.subtitleCharsPerSec", v.subtitle_chars_per_sec, 5.0, 60.0),
        ] {
            if !(lo..=hi).contains(&value) {
                return Err(invalid(key, format!("{value} is not within {lo}..{hi}")));
            }
        }
        if !(10..=80).contains(&v.subtitle_line_chars) || !(1..=4).contains(&v.subtitle_lines) {
            return Err(invalid("voice.subtitleLineChars", "lines of 10..80 characters, 1..4 lines per cue"));
        }
        for lang in v.piper_voices.keys() {
            if !self.input_sanitizer.languages.contains(lang) {
                return Err(invalid(format!("voice.piperVoices.{lang}"), "not a language the sanitizer accepts"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> serde_json::Value {
        serde_json::from_str(include_str!("../config/v33.json")).unwrap()
    }

    fn error_for(v: serde_json::Value) -> String {
        Config::from_json(&v.to_string()).unwrap_err().to_string()
    }

    #[test]
    fn shipped_config_is_valid_and_carries_v33_values() {
        let c = Config::builtin();
        assert_eq!(c.orchestrator.retry_policy.max_retries, 3);
        assert_eq!(c.fast_track.activation_complexity_max, 0.3);
        assert_eq!(c.consistency_cache.ttl_hours, 168);
        assert_eq!(c.financial.daily_limit, 100.0);
        assert_eq!(c.semantic_qa.criteria["narrativeAdherence"].threshold, 0.8);
        assert!(c.presets["brand_campaign"].plan_review);
        assert!(!c.presets["quick_social"].plan_review);
    }

    #[test]
    fn service_section_is_validated() {
        let c = Config::builtin();
        assert_eq!(c.service.bind, "127.0.0.1:8080");
        let mut v = shipped();
        v["service"]["bind"] = "localhost".into();
        assert!(error_for(v).contains("service.bind"));
        let mut v = shipped();
        v["service"]["rateLimit"]["perKey"]["bench"] = serde_json::json!({"perMinute": 0, "burst": 5});
        assert!(error_for(v).contains("service.rateLimit.perKey.bench.perMinute"));
        let mut v = shipped();
        v["service"]["corsOrigins"] = serde_json::json!(["example.com"]);
        assert!(error_for(v).contains("service.corsOrigins[0]"));
    }

    #[test]
    fn stage_timeouts_are_keyed_by_stage_and_unknown_stages_are_refused() {
        let c = Config::builtin();
        // The shipped keys are camelCase; both QA stages must get their own value, not the
        // largest one (the rendering stage's 1800 s).
        assert_eq!(c.orchestrator.timeout(Stage::TechnicalQa), std::time::Duration::from_secs(600));
        assert_eq!(c.orchestrator.timeout(Stage::SemanticQa), std::time::Duration::from_secs(600));
        assert_eq!(c.orchestrator.timeout(Stage::Render), std::time::Duration::from_secs(1800));
        for stage in Stage::ALL {
            assert!(c.orchestrator.stage_timeouts_sec.0.contains_key(&stage), "{stage:?} has no shipped timeout");
        }
        let mut v = shipped();
        v["orchestrator"]["stageTimeoutsSec"]["technicalQa"] = 7.5.into();
        let c = Config::from_json(&v.to_string()).unwrap();
        assert_eq!(c.orchestrator.timeout(Stage::TechnicalQa), std::time::Duration::from_secs_f64(7.5));
        let mut v = shipped();
        v["orchestrator"]["stageTimeoutsSec"]["technical_qa"] = 7.5.into();
        let e = error_for(v);
        assert!(e.contains("orchestrator.stageTimeoutsSec") && e.contains("technical_qa"), "{e}");
    }

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let mut v = shipped();
        v["render"]["tiers"]["standard"]["fsp"] = 30.into();
        let e = error_for(v);
        assert!(e.contains("render.tiers.standard"), "{e}");
        assert!(e.contains("fsp"), "{e}");
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let mut v = shipped();
        v["orchestrator"]["retryPolicy"]["maxRetries"] = "three".into();
        let e = error_for(v);
        assert!(e.contains("orchestrator.retryPolicy.maxRetries"), "{e}");
    }

    #[test]
    fn models_section_is_validated_by_key() {
        let c = Config::builtin();
        assert_eq!((c.models.threads, c.models.director_candidates), (1, 3));
        let mut v = shipped();
        v["models"]["threads"] = 0.into();
        assert!(error_for(v).contains("models.threads"));
        let mut v = shipped();
        v["models"]["directorCandidates"] = 9.into();
        assert!(error_for(v).contains("models.directorCandidates"));
        let mut v = shipped();
        v["models"]["translationMinChrf"] = 120.0.into();
        assert!(error_for(v).contains("models.translationMinChrf"));
        let mut v = shipped();
        v["models"]["marian"] = serde_json::json!({"english-french": "/x"});
        assert!(error_for(v).contains("models.marian.english-french"));
    }

    #[test]
    fn semantic_weights_must_add_up() {
        let mut v = shipped();
        v["semanticQa"]["criteria"]["styleCoherence"]["weight"] = 0.5.into();
        assert!(error_for(v).contains("semanticQa.criteria"));
    }

    #[test]
    fn preset_must_name_an_existing_tier() {
        let mut v = shipped();
        v["presets"]["quick_social"]["defaultTier"] = "ultra".into();
        assert!(error_for(v).contains("presets.quick_social.defaultTier"));
    }

    #[test]
    fn pricing_section_is_typed_and_validated() {
        let c = Config::builtin();
        assert_eq!(c.pricing.table.currency, "USD");
        assert!(c.pricing.table.cpu_second > 0.0);
        assert!(c.pricing.source.is_none());
        let mut v = shipped();
        v["pricing"]["table"]["cpuSecond"] = (-1.0).into();
        assert!(error_for(v).contains("pricing.table.cpuSecond"));
        let mut v = shipped();
        v["pricing"]["table"]["remoteBackends"] =
            serde_json::json!({"cloud": {"pricePerOutputSecond": 0.01, "quality": 1.5}});
        assert!(error_for(v).contains("pricing.table.remoteBackends.cloud.quality"));
        let mut v = shipped();
        v["pricing"]["table"]["currency"] = "EUR".into();
        assert!(error_for(v).contains("pricing.table.currency"));
    }

    #[test]
    fn bad_x264_preset_and_aspect_ratio_are_rejected() {
        let mut v = shipped();
        v["render"]["tiers"]["premium"]["x264Preset"] = "turbo".into();
        assert!(error_for(v).contains("render.tiers.premium.x264Preset"));
        let mut v = shipped();
        v["inputSanitizer"]["aspectRatios"][0] = "7:3".into();
        assert!(error_for(v).contains("inputSanitizer.aspectRatios[0]"));
    }
}
