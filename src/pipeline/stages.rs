//! One function per stage: read what the stage needs from the job's memory, run the agent or
//! deterministic function, and return the event plus the memory sections to write. Stages
//! never write to the store themselves — the driver commits their output atomically — and
//! are idempotent: the seed comes from the job id, outputs overwrite their own files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agents::director::{CreativeDirector, DirectorSettings};
use agents::domain::{ProductionManifest, RenderPlan, VideoSettings};
use agents::models;
use agents::planner::{self, PlanLimits, PlanRequest, Planner};
use agents::render::{self, PreviewSettings, RenderOutput, RenderRequest};
use agents::semantic::{self, CriterionConfig, NarrativeSimilarities, SemanticReport, SemanticRequest};
use agents::supervisor::{self, Inputs, Thresholds};
use agents::translate::marian::MarianTranslator;
use agents::translate::{self, LlmTranslator, Translator};
use agents::visual::{TranslateRequest, TranslatedCaptions, Translation, VisualTranslator};
use agents::voice::narrate::{self, Narration, NarrationRequest, NarrationStatus, SceneText};
use agents::{Agent, AgentContext, AgentMetadata};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::machine::{Event, Stage, State};
use super::retry::StageError;
use crate::config::{Config, PipelineKind};
use crate::finance::audit::{AuditKind, CostLedger};
use crate::finance::certificate::{self, Certificate, CostKey};
use crate::finance::model::Calibration;
use crate::finance::{self, FastTrackCheck, Orchestration, Reconciliation, daily, pricing, routing};
use crate::memory::{MemoryWrite, Section};
use crate::qa_gate::{self, Expectations, TechnicalReport};
use crate::sanitize::{self, BriefRequest, SanitizedInput};
use crate::store::cache::ConsistencyCache;
use crate::store::{JobRecord, Store};

/// Everything a stage may read.
pub struct StageInput<'a> {
    /// Configuration.
    pub config: &'a Config,
    /// Where memory is read from.
    pub store: &'a dyn Store,
    /// The job, as read at the start of the stage.
    pub job: &'a JobRecord,
    /// The job's artifact directory.
    pub job_dir: &'a Path,
    /// The data directory (calibration file, signing key).
    pub data_dir: &'a Path,
    /// The cost audit trail, when the driver has one.
    pub ledger: Option<&'a dyn CostLedger>,
    /// Seed, cancellation and progress for agents.
    pub agent: AgentContext,
}

/// What a stage produced.
#[derive(Debug)]
pub struct StageOutput {
    /// The event to feed the machine.
    pub event: Event,
    /// Memory sections to write.
    pub writes: Vec<MemoryWrite>,
    /// Extra detail for the history line.
    pub detail: Option<Value>,
}

impl<'a> StageInput<'a> {
    fn read<T: DeserializeOwned>(&self, section: Section) -> Result<T, StageError> {
        let entry = self
            .store
            .section(&self.job.id, section)
            .map_err(|e| StageError::Transient(format!("reading {section}: {e}")))?
            .ok_or_else(|| StageError::Permanent(format!("memory section {section} has not been written")))?;
        serde_json::from_value(entry.content)
            .map_err(|e| StageError::Permanent(format!("memory section {section} is malformed: {e}")))
    }

    /// A section that may legitimately be absent (jobs journaled before it existed).
    fn read_optional<T: DeserializeOwned>(&self, section: Section) -> Result<Option<T>, StageError> {
        match self.store.section(&self.job.id, section) {
            Ok(Some(entry)) => serde_json::from_value(entry.content)
                .map(Some)
                .map_err(|e| StageError::Permanent(format!("memory section {section} is malformed: {e}"))),
            Ok(None) => Ok(None),
            Err(e) => Err(StageError::Transient(format!("reading {section}: {e}"))),
        }
    }

    fn write(
        &self,
        section: Section,
        stage: Stage,
        content: &impl Serialize,
        metadata: Option<&AgentMetadata>,
    ) -> Result<MemoryWrite, StageError> {
        let content =
            serde_json::to_value(content).map_err(|e| StageError::Permanent(format!("serialising {section}: {e}")))?;
        let metadata = metadata.map(|m| serde_json::to_value(m).unwrap_or(Value::Null));
        Ok(MemoryWrite::by_stage(section, stage.name(), content, metadata))
    }
}

/// Run the stage for `state`.
pub async fn run(state: &State, input: &StageInput<'_>) -> Result<StageOutput, StageError> {
    match state {
        State::Init {} => sanitize_stage(input),
        State::Sanitized {} => route(input),
        State::Planning { fast_track } => plan(input, *fast_track).await,
        State::Translating {} => translate(input).await,
        State::Costing {} => cost(input),
        State::Voicing {} => voice_stage(input).await,
        State::Rendering { attempt } => render_stage(input, *attempt).await,
        State::TechnicalQa { .. } => technical_qa(input).await,
        State::SemanticQa {} => semantic_qa(input).await,
        State::Supervising {} => supervise(input),
        State::Delivering {} => deliver(input),
        other => Err(StageError::Permanent(format!("state '{}' has no stage", other.name()))),
    }
}

fn sanitize_stage(input: &StageInput<'_>) -> Result<StageOutput, StageError> {
    let request: BriefRequest = serde_json::from_value(input.job.request.clone())
        .map_err(|e| StageError::Permanent(format!("stored request is not a brief: {e}")))?;
    let clean = sanitize::sanitize(&request, input.config).map_err(|e| StageError::Permanent(e.to_string()))?;
    Ok(StageOutput {
        event: Event::InputAccepted,
        writes: vec![input.write(Section::SanitizedInput, Stage::Sanitize, &clean, None)?],
        detail: None,
    })
}

/// The routing decision, journaled in the `routing` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Routing {
    /// The complexity score and its parts.
    pub complexity: planner::Complexity,
    /// Whether the fast track was chosen.
    pub fast_track: bool,
    /// Why, in words.
    pub reason: String,
    /// The `forceFastTrackIfCostExceeds` check on the brief's estimate.
    #[serde(default)]
    pub cost_check: Option<FastTrackCheck>,
}

/// The brief's estimate on its requested tier, checked against
/// `financial.forceFastTrackIfCostExceeds`. Done here, before planning, because the fast track
/// is a planning decision; the costing stage records the same check on the final plan.
fn fast_track_cost_check(input: &StageInput<'_>, brief: &SanitizedInput) -> Option<FastTrackCheck> {
    let prices = pricing::current(input.config, input.ledger);
    let calibration = Calibration::load_or_default(input.data_dir);
    finance::orchestrate(
        input.config,
        &prices,
        &calibration,
        brief,
        brief.duration_sec as f64,
        routing::DailyLevel::Normal,
    )
    .ok()
    .map(|o| o.fast_track_check)
}

fn route(input: &StageInput<'_>) -> Result<StageOutput, StageError> {
    let brief: SanitizedInput = input.read(Section::SanitizedInput)?;
    let c = planner::complexity(&brief.content, brief.duration_sec);
    let ft = &input.config.fast_track;
    let preset_fast = input.config.presets.get(&brief.preset).is_some_and(|p| p.pipeline == PipelineKind::Fast);
    let cost_check = fast_track_cost_check(input, &brief);
    let (fast_track, reason) = if let Some(check) = cost_check.as_ref().filter(|c| c.exceeded) {
        (
            true,
            format!(
                "fast track forced by financial.forceFastTrackIfCostExceeds: estimate ${:.4} > ${} (both paths use the \
                 deterministic planner in this build, so this caps the scene count rather than the render cost)",
                check.estimate, check.threshold
            ),
        )
    } else if !preset_fast {
        (false, format!("preset '{}' always takes the full path", brief.preset))
    } else if c.score >= ft.activation_complexity_max {
        (false, format!("complexity {:.3} ≥ {}", c.score, ft.activation_complexity_max))
    } else if brief.duration_sec > ft.max_duration_sec {
        (false, format!("duration {} s > fast-track limit {} s", brief.duration_sec, ft.max_duration_sec))
    } else if c.dialogue_marker_count > 0 {
        (false, "the brief contains dialogue".to_owned())
    } else {
        (true, format!("complexity {:.3} < {}", c.score, ft.activation_complexity_max))
    };
    let routing = Routing { complexity: c, fast_track, reason, cost_check };
    Ok(StageOutput {
        event: Event::Routed { fast_track },
        detail: Some(
            json!({"complexity": routing.complexity.score, "fast_track": fast_track, "reason": routing.reason}),
        ),
        writes: vec![input.write(Section::Routing, Stage::Route, &routing, None)?],
    })
}

/// The storyboard limits for a brief: the fast track's scene cap or eight, captions short
/// enough to read in their scene, scenes of at least 3 s.
pub fn plan_limits(config: &Config, duration_s: u32, fast_track: bool) -> PlanLimits {
    let max_scenes = if fast_track { config.fast_track.max_scenes } else { 8 };
    PlanLimits {
        max_scenes,
        max_caption_chars: readable_caption_chars(duration_s, max_scenes.min(3)),
        min_scene_s: 3.0,
    }
}

/// Longest caption that can be read in a scene: ~15 characters per second, capped at 72.
fn readable_caption_chars(duration_s: u32, scenes: usize) -> usize {
    ((duration_s as usize * 15) / scenes.max(1)).clamp(24, 72)
}

/// Whether a memory entry was written by a person (plan review) rather than a stage.
pub fn is_human_author(author: &str) -> bool {
    !author.starts_with("stage:")
}

/// The process-wide consistency cache for a data directory (opened on first use).
pub(crate) async fn consistency_cache(config: &Config) -> Option<ConsistencyCache> {
    static ALL: std::sync::Mutex<BTreeMap<PathBuf, ConsistencyCache>> = std::sync::Mutex::new(BTreeMap::new());
    let dir = config.storage.data_dir.clone();
    if let Some(c) = ALL.lock().unwrap_or_else(|p| p.into_inner()).get(&dir) {
        return Some(c.clone());
    }
    let ttl = std::time::Duration::from_secs(config.consistency_cache.ttl_hours * 3600);
    match ConsistencyCache::open_at(&dir, ttl, config.consistency_cache.similarity_threshold as f32).await {
        Ok(c) => Some(ALL.lock().unwrap_or_else(|p| p.into_inner()).entry(dir).or_insert(c).clone()),
        Err(e) => {
            tracing::warn!("consistency cache unavailable: {e}");
            None
        }
    }
}

async fn plan(input: &StageInput<'_>, fast_track: bool) -> Result<StageOutput, StageError> {
    // A reviewer's edited manifest is the plan: keep it instead of planning again (the
    // job comes back here after "request changes" with edits).
    let latest = input
        .store
        .section(&input.job.id, Section::ProductionManifest)
        .map_err(|e| StageError::Transient(format!("reading {}: {e}", Section::ProductionManifest)))?;
    if let Some(entry) = latest.filter(|e| is_human_author(&e.author)) {
        let manifest: ProductionManifest = serde_json::from_value(entry.content).map_err(|e| {
            StageError::Permanent(format!("the human-edited {} is malformed: {e}", Section::ProductionManifest))
        })?;
        return Ok(StageOutput {
            event: Event::Planned,
            detail: Some(json!({
                "kept_human_manifest": {"version": entry.version, "author": entry.author},
                "scenes": manifest.scenes.len(),
            })),
            writes: vec![input.write(Section::ConsistencyMarkers, Stage::Plan, &manifest.markers, None)?],
        });
    }
    let brief: SanitizedInput = input.read(Section::SanitizedInput)?;
    let mut request = PlanRequest {
        brief: brief.content.clone(),
        duration_s: brief.duration_sec,
        language: brief.languages.first().cloned().unwrap_or_else(|| "en".into()),
        fast_track,
        limits: plan_limits(input.config, brief.duration_sec, fast_track),
        reuse_markers: None,
    };
    let registry = models::Registry::shared(&input.config.models.settings());

    // Consistency cache: a similar earlier brief of the same brand lends its markers.
    let mut cache_note = json!(null);
    let mut brief_embedding = None;
    let cache_wanted = input.config.consistency_cache.reuse_across_jobs
        && input.config.presets.get(&brief.preset).is_none_or(|p| p.cache);
    let cache = match (&brief.brand_id, cache_wanted) {
        (Some(_), true) => consistency_cache(input.config).await,
        _ => None,
    };
    if let (Some(brand), Some(cache)) = (&brief.brand_id, &cache) {
        match registry.embedder().and_then(|(e, _)| e.embed(&[brief.content.as_str()])) {
            Ok(mut v) => {
                let emb = v.remove(0);
                match cache.find_markers(brand, &emb, &input.job.id) {
                    Some(hit) => {
                        cache_note = json!({"hit": true, "source_job": hit.source_key, "similarity": hit.similarity});
                        request.reuse_markers = Some(hit.markers);
                    }
                    None => cache_note = json!({"hit": false}),
                }
                brief_embedding = Some(emb);
            }
            Err(e) => cache_note = json!({"hit": false, "skipped": e.to_string()}),
        }
    }

    let mut director_report = None;
    let (manifest, metadata, note) = if fast_track {
        let out = Planner.run(request.clone(), &input.agent).await?;
        (out.value, out.metadata, "fast track: deterministic planner (no model needed)".to_owned())
    } else {
        let missing = [models::SMOLLM2_ID, models::MINILM_ID]
            .into_iter()
            .find_map(|m| models::check_installed(&registry.settings().dir, m).err());
        let directed = match missing {
            Some(e) => Err(format!("the creative director's model is not installed ({e})")),
            None => {
                let director = CreativeDirector {
                    registry: registry.clone(),
                    settings: DirectorSettings {
                        candidates: input.config.models.director_candidates,
                        temperature: input.config.models.director_temperature,
                        repair_rounds: input.config.models.director_repair_rounds,
                    },
                };
                let (req, ctx) = (request.clone(), input.agent.clone());
                match tokio::task::spawn_blocking(move || {
                    let started = std::time::Instant::now();
                    director.direct(&req, &ctx).map(|d| (d, started.elapsed()))
                })
                .await
                {
                    Ok(Ok(d)) => Ok(d),
                    Ok(Err(agents::AgentError::Cancelled)) => return Err(StageError::Cancelled),
                    Ok(Err(e)) => Err(format!("the creative director produced no valid storyboard: {e}")),
                    Err(e) => Err(format!("the creative director's task failed: {e}")),
                }
            }
        };
        match directed {
            Ok((d, took)) => {
                let metadata = AgentMetadata {
                    model_used: models::SMOLLM2_ID.into(),
                    processing_ms: took.as_millis() as u64,
                    version: agents::director::DIRECTOR_VERSION.into(),
                };
                let note = format!(
                    "full path: the local model wrote this storyboard ({} scenes chosen from {} sampled lines, \
                     mean brief similarity {:.3}); markers {}",
                    d.report.chosen.len(),
                    d.report.candidates.len(),
                    d.report.relevance,
                    d.report.markers_source
                );
                director_report = Some(d.report);
                (d.manifest, metadata, note)
            }
            Err(why) => {
                let out = Planner.run(request.clone(), &input.agent).await?;
                (
                    out.value,
                    out.metadata,
                    format!("full path: the deterministic planner wrote this manifest because {why}"),
                )
            }
        }
    };
    if let (Some(brand), Some(cache), Some(emb)) = (&brief.brand_id, &cache, brief_embedding)
        && request.reuse_markers.is_none()
        && let Err(e) = cache.put_markers(brand, &input.job.id, emb, &manifest.markers).await
    {
        tracing::warn!("consistency cache write failed: {e}");
    }
    let mut meta = serde_json::to_value(&metadata).unwrap_or(Value::Null);
    meta["note"] = Value::String(note);
    meta["consistency_cache"] = cache_note.clone();
    if let Some(r) = &director_report {
        meta["director"] = to_value(r)?;
    }
    Ok(StageOutput {
        event: Event::Planned,
        detail: Some(
            json!({"model_used": metadata.model_used, "scenes": manifest.scenes.len(), "consistency_cache": cache_note}),
        ),
        writes: vec![
            input.write(Section::ConsistencyMarkers, Stage::Plan, &manifest.markers, Some(&metadata))?,
            MemoryWrite::by_stage(Section::ProductionManifest, Stage::Plan.name(), to_value(&manifest)?, Some(meta)),
        ],
    })
}

fn to_value(v: &impl Serialize) -> Result<Value, StageError> {
    serde_json::to_value(v).map_err(|e| StageError::Permanent(format!("serialising: {e}")))
}

/// Encoder settings for a sanitised brief: its tier from config, sized for its aspect ratio.
pub fn video_settings(config: &Config, brief: &SanitizedInput) -> Result<VideoSettings, StageError> {
    let tier = config
        .render
        .tiers
        .get(&brief.tier)
        .ok_or_else(|| StageError::Permanent(format!("tier '{}' is not configured", brief.tier)))?;
    let (width, height) = brief.aspect_ratio.frame_size(tier.short_side);
    Ok(VideoSettings {
        width,
        height,
        fps: tier.fps,
        x264_preset: tier.x264_preset.clone(),
        crf: tier.crf,
        audio_bitrate: tier.audio_bitrate,
    })
}

/// The visual translator's render plan and subtitles for `manifest`: the translating
/// stage's work (caption translation through the backends that passed the quality bar, then
/// layout), also run when a reviewer edits the manifest during plan review so the approved
/// plan is the one rendered.
pub async fn translation_for(
    config: &Config,
    brief: &SanitizedInput,
    manifest: ProductionManifest,
    ctx: &AgentContext,
) -> Result<agents::AgentOutput<Translation>, StageError> {
    let source = brief.languages.first().cloned().unwrap_or_else(|| manifest.language.clone());
    let targets: Vec<String> = brief.languages.iter().skip(1).filter(|l| **l != source).cloned().collect();
    let captions: Vec<String> = manifest.scenes.iter().map(|s| s.caption.clone()).collect();
    let owned = config.clone();
    let src = source.clone();
    let (translations, unavailable) =
        tokio::task::spawn_blocking(move || translate_captions(&owned, &captions, &src, &targets))
            .await
            .map_err(|e| StageError::Transient(format!("translation task failed: {e}")))?;
    let request = TranslateRequest {
        manifest,
        video: video_settings(config, brief)?,
        transition_s: config.render.transition_sec,
        languages: brief.languages.clone(),
        translations,
        unavailable,
    };
    Ok(VisualTranslator.run(request, ctx).await?)
}

/// The translation backends this configuration offers, in preference order: Marian models
/// configured per pair, then the local LLM when installed. Load failures are reasons.
pub fn translation_backends(config: &Config) -> (Vec<Arc<dyn Translator>>, Vec<String>) {
    let mut backends: Vec<Arc<dyn Translator>> = Vec::new();
    let mut problems = Vec::new();
    for (pair, dir) in &config.models.marian {
        let (from, to) = pair.split_once('-').unwrap_or((pair.as_str(), ""));
        match MarianTranslator::load(dir, from, to) {
            Ok(t) => backends.push(Arc::new(t)),
            Err(e) => problems.push(e.to_string()),
        }
    }
    let settings = config.models.settings();
    let registry = models::Registry::shared(&settings);
    if registry.installed(models::SMOLLM2_ID) {
        backends.push(Arc::new(LlmTranslator { registry, max_tokens: 48 }));
    }
    (backends, problems)
}

/// Translate the captions into every extra language whose best backend passed the quality
/// bar; the others get the reason they are unavailable.
fn translate_captions(
    config: &Config,
    captions: &[String],
    source: &str,
    targets: &[String],
) -> (BTreeMap<String, TranslatedCaptions>, BTreeMap<String, String>) {
    let (mut done, mut missing) = (BTreeMap::new(), BTreeMap::new());
    if targets.is_empty() {
        return (done, missing);
    }
    let (backends, problems) = translation_backends(config);
    let table = match translate::load_quality(&config.models.dir) {
        Ok(t) => t,
        Err(e) => {
            for l in targets {
                missing.insert(l.clone(), format!("translation quality scores unreadable ({e})"));
            }
            return (done, missing);
        }
    };
    let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
    for lang in targets {
        match translate::choose(&backends, &table, source, lang, config.models.translation_min_chrf) {
            Ok((backend, chrf)) => match backend.translate(&refs, source, lang) {
                Ok(out) if out.iter().all(|t| !t.trim().is_empty()) => {
                    done.insert(lang.clone(), TranslatedCaptions { backend: backend.id(), chrf, captions: out });
                }
                Ok(_) => {
                    missing.insert(lang.clone(), format!("{} returned an empty caption", backend.id()));
                }
                Err(e) => {
                    missing.insert(lang.clone(), e.to_string());
                }
            },
            Err(why) => {
                let why = if problems.is_empty() { why } else { format!("{why}; {}", problems.join("; ")) };
                missing.insert(lang.clone(), why);
            }
        }
    }
    (done, missing)
}

async fn translate(input: &StageInput<'_>) -> Result<StageOutput, StageError> {
    let brief: SanitizedInput = input.read(Section::SanitizedInput)?;
    let manifest: ProductionManifest = input.read(Section::ProductionManifest)?;
    let out = translation_for(input.config, &brief, manifest, &input.agent).await?;
    let unavailable: Vec<&str> =
        out.value.languages.iter().filter(|l| l.status == "unavailable").map(|l| l.lang.as_str()).collect();
    Ok(StageOutput {
        event: Event::Translated,
        detail: Some(json!({"subtitles_unavailable": unavailable})),
        writes: vec![input.write(Section::PromptBundle, Stage::Translate, &out.value, Some(&out.metadata))?],
    })
}

/// What the costing stage journals in `optimized_backend_selection`: the tier and backend
/// chosen, the render settings that follow from them (the render and technical QA stages
/// read `video` from here, so a tier change re-sizes the render), and the whole decision with
/// the alternatives it rejected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendSelection {
    /// The tier rendered.
    pub tier: String,
    /// `local-cpu` or `remote:<name>`.
    pub backend: String,
    /// The tier the brief asked for.
    pub requested_tier: String,
    /// Encoder settings of the chosen tier, sized for the brief's aspect ratio.
    pub video: VideoSettings,
    /// The FinancialOrchestrator's decision, every option priced, the rules applied.
    pub orchestration: Orchestration,
    /// Sequence number of the audit entry recording the decision, or why there is none.
    pub audit: Value,
}

/// What the costing stage journals in `cost_certification`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostCertification {
    /// The signed certificate (also written to `cost_certificate.json`).
    pub certificate: Certificate,
    /// The brief's budget.
    pub budget: Option<f64>,
    /// The chosen option breaks a money rule (the supervisor reviews it).
    pub over_budget: bool,
    /// The day's spend when the job was costed.
    pub daily: daily::DailyStatus,
    /// Where the signing key came from.
    pub signing_key: String,
}

fn cost(input: &StageInput<'_>) -> Result<StageOutput, StageError> {
    let brief: SanitizedInput = input.read(Section::SanitizedInput)?;
    let translation: Translation = input.read(Section::PromptBundle)?;
    let prices = pricing::current(input.config, input.ledger);
    let calibration = Calibration::load_or_default(input.data_dir);
    let day = daily::status(input.store, input.config, &prices, chrono::Utc::now())
        .map_err(|e| StageError::Transient(format!("reading today's spend: {e}")))?;
    let duration_s = translation.plan.duration_s();
    let orch = finance::orchestrate(input.config, &prices, &calibration, &brief, duration_s, day.level)
        .map_err(|e| StageError::Permanent(e.to_string()))?;
    let chosen = &orch.decision.chosen;
    let tier_brief = SanitizedInput { tier: chosen.tier.clone(), ..brief.clone() };
    let video = video_settings(input.config, &tier_brief)?;
    let backend = if chosen.name.starts_with("remote:") { chosen.name.clone() } else { finance::LOCAL_BACKEND.into() };

    let key = CostKey::load(input.data_dir).map_err(|e| StageError::Permanent(e.to_string()))?;
    let inputs = json!({
        "brief": brief, "duration_s": duration_s, "scenes": translation.plan.scenes.len(),
        "video": video, "pricing": prices, "calibration": calibration,
    });
    let cert = Certificate {
        job: input.job.id.clone(),
        inputs_hash: certificate::inputs_hash(&inputs),
        pricing_version: prices.version.clone(),
        estimate: orch.estimate.clone(),
        chosen_tier: chosen.tier.clone(),
        backend: backend.clone(),
        calibration: orch.calibration.clone(),
        issued_at: finance::audit::timestamp(chrono::Utc::now()),
        key_id: String::new(),
        signature: String::new(),
    }
    .sign(&key)
    .map_err(|e| StageError::Permanent(e.to_string()))?;
    cert.write(&input.job_dir.join("cost_certificate.json"))
        .map_err(|e| StageError::Transient(format!("writing cost_certificate.json: {e}")))?;

    let audit = match input.ledger {
        Some(ledger) => {
            let payload = json!({
                "requested_tier": brief.tier, "chosen": chosen.name, "tier": chosen.tier, "backend": backend,
                "estimate": orch.estimate.total, "cost_per_minute": orch.estimate.cost_per_minute,
                "reason": orch.decision.reason, "downgraded": orch.decision.downgraded,
                "over_budget": orch.decision.over_budget,
                "warnings": orch.decision.warnings,
                "rejected": orch.decision.alternatives.iter()
                    .map(|a| json!({"name": a.candidate.name, "estimate": a.candidate.estimate, "reasons": a.reasons}))
                    .collect::<Vec<_>>(),
                "fast_track_check": orch.fast_track_check,
                "daily": {"spent": day.spent, "limit": day.limit, "level": day.level},
                "pricing_version": prices.version, "inputs_hash": cert.inputs_hash, "signature": cert.signature,
            });
            let entry = ledger
                .append(AuditKind::CostDecision, Some(&input.job.id), &payload)
                .map_err(|e| StageError::Transient(format!("audit trail: {e}")))?;
            json!({"seq": entry.seq, "hash": entry.hash})
        }
        None => json!({"seq": null, "note": "no audit trail attached to this driver; the decision was not audited"}),
    };
    let preset = input.config.presets.get(&brief.preset);
    let plan_review = preset.is_some_and(|p| p.plan_review) && !input.job.auto_approve;
    let detail = json!({
        "estimate": orch.estimate.total, "cost_per_minute": orch.estimate.cost_per_minute,
        "tier": chosen.tier, "requested_tier": brief.tier, "downgraded": orch.decision.downgraded,
        "over_budget": orch.decision.over_budget, "calibrated": orch.calibrated,
    });
    let certification = CostCertification {
        certificate: cert,
        budget: brief.budget,
        over_budget: orch.decision.over_budget,
        daily: day,
        signing_key: format!("{} (key id {})", key.origin, key.id()),
    };
    let selection = BackendSelection {
        tier: chosen.tier.clone(),
        backend,
        requested_tier: brief.tier.clone(),
        video,
        orchestration: orch,
        audit,
    };
    Ok(StageOutput {
        event: Event::Costed { plan_review },
        detail: Some(detail),
        writes: vec![
            input.write(Section::CostCertification, Stage::Cost, &certification, None)?,
            input.write(Section::OptimizedBackendSelection, Stage::Cost, &selection, None)?,
        ],
    })
}

/// The encoder settings to render with: the costing stage's choice when it made one, else the
/// render plan's own (jobs costed before tier selection existed).
fn selected_video(input: &StageInput<'_>, plan_video: &VideoSettings) -> Result<VideoSettings, StageError> {
    let entry = input
        .store
        .section(&input.job.id, Section::OptimizedBackendSelection)
        .map_err(|e| StageError::Transient(format!("reading optimized_backend_selection: {e}")))?;
    Ok(entry
        .and_then(|e| serde_json::from_value::<VideoSettings>(e.content["video"].clone()).ok())
        .unwrap_or_else(|| plan_video.clone()))
}

/// The voicing stage: the narrator speaks each scene of the approved plan (source language),
/// scene durations are fitted to the speech, clips go to `narration/`, and the `narration`
/// section records voice, engine, timings and real-time factor — or why the video has music
/// only. A narration that cannot fit even after dropping whole sentences fails the job with
/// the numbers.
async fn voice_stage(input: &StageInput<'_>) -> Result<StageOutput, StageError> {
    let brief: SanitizedInput = input.read(Section::SanitizedInput)?;
    let translation: Translation = input.read(Section::PromptBundle)?;
    let cfg = &input.config.voice;
    let request = NarrationRequest {
        scenes: translation
            .plan
            .scenes
            .iter()
            .map(|s| SceneText { text: s.narration.clone(), planned_s: s.duration_s })
            .collect(),
        languages: brief.languages.clone(),
        requested_s: brief.duration_sec as f64,
        choice: brief.voice,
        disabled: (!brief.narration)
            .then(|| format!("narration is off for this brief (preset '{}' or \"narration\": false)", brief.preset)),
        job_dir: input.job_dir.to_path_buf(),
        fit: cfg.fit(),
        voices: cfg.settings(&input.config.models.dir),
    };
    let ctx = input.agent.clone();
    let started = std::time::Instant::now();
    let narration = tokio::task::spawn_blocking(move || narrate::narrate(&request, &ctx))
        .await
        .map_err(|e| StageError::Transient(format!("voicing task failed: {e}")))??;
    let track = narration.tracks.first();
    let metadata = AgentMetadata {
        model_used: track.and_then(|t| t.voice.clone()).unwrap_or_else(|| "none".into()),
        processing_ms: started.elapsed().as_millis() as u64,
        version: narrate::NARRATION_VERSION.into(),
    };
    let detail = json!({
        "status": narration.status,
        "voice": track.and_then(|t| t.voice.clone()),
        "engine": track.and_then(|t| t.engine),
        "rate": narration.rate,
        "total_duration_s": narration.total_duration_s,
        "real_time_factor": narration.real_time_factor,
        "reason": narration.reason,
    });
    Ok(StageOutput {
        event: Event::Voiced,
        detail: Some(detail),
        writes: vec![input.write(Section::Narration, Stage::Voice, &narration, Some(&metadata))?],
    })
}

/// Loads the narrator's voice on a background thread so its one-off load (about a second for
/// the neural voice) overlaps the stages before voicing; the voicing stage then finds it
/// loaded (or waits for the load in progress — never loads it twice).
pub fn prewarm_voice(config: &Config, brief: &SanitizedInput) {
    let Some(lang) = brief.languages.first().cloned() else { return };
    if !brief.narration {
        return;
    }
    let settings = config.voice.settings(&config.models.dir);
    let choice = brief.voice;
    std::thread::spawn(move || {
        let _ = agents::voice::resolve(&lang, choice, &settings);
    });
}

/// The credit a narration's voice asks for in the delivery manifest.
fn voice_credit(track: &agents::voice::narrate::NarrationTrack) -> String {
    let voice = track.voice.as_deref().unwrap_or("?");
    match track.engine {
        Some(agents::voice::VoiceEngine::Piper) if voice == "piper:en_US-joe-medium" => format!(
            "Narration: {voice}, a Piper voice (rhasspy/piper-voices v1.0.0; dataset CC0, fine-tuned from the lessac \
             voice) run with ONNX Runtime (MIT)"
        ),
        Some(agents::voice::VoiceEngine::Piper) => format!("Narration: {voice}, a Piper voice run with ONNX Runtime (MIT)"),
        _ => format!("Narration: {voice}, espeak-ng formant synthesis (GPL-3.0, run as a separate program)"),
    }
}

/// The plan as rendered and checked: the translator's plan with the costing stage's encoder
/// settings, the configured mix, and the narration applied (scene timings that follow the
/// speech, word timings, the clips, subtitles cut from the words). The translator's section
/// itself is never rewritten.
pub fn rendered_plan(input: &StageInput<'_>) -> Result<RenderPlan, StageError> {
    let translation: Translation = input.read(Section::PromptBundle)?;
    let mut plan = translation.plan;
    plan.video = selected_video(input, &plan.video)?;
    plan.mix = input.config.voice.mix();
    if let Some(narration) = input.read_optional::<Narration>(Section::Narration)?
        && narration.status == NarrationStatus::Narrated
    {
        narration.apply(&mut plan, input.job_dir, &input.config.voice.cue_rules());
    }
    Ok(plan)
}

/// What the render stage journals: the render's output with paths relative to the job
/// directory, so a data directory can be moved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratedAssets {
    /// Which render of the job this is (1 = first).
    pub attempt: u32,
    /// The renderer's report, paths relative to the job directory.
    pub output: RenderOutput,
}

fn relative(job_dir: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(job_dir).map(Path::to_path_buf).unwrap_or_else(|_| p.to_path_buf())
}

async fn render_stage(input: &StageInput<'_>, attempt: u32) -> Result<StageOutput, StageError> {
    let mut plan = rendered_plan(input)?;
    if attempt > 1 {
        // A re-render after a failed technical check: trade speed for robustness.
        plan.video.x264_preset = "medium".into();
    }
    let request = RenderRequest {
        out_dir: input.job_dir.to_path_buf(),
        font_path: input.config.render.font_path.clone(),
        preview: PreviewSettings {
            max_seconds: input.config.render.preview_max_sec,
            short_side: input.config.render.preview_short_side,
        },
    };
    let ctx = input.agent.clone();
    let started = std::time::Instant::now();
    let mut output = tokio::task::spawn_blocking(move || render::render(&plan, &request, &ctx))
        .await
        .map_err(|e| StageError::Transient(format!("render task failed: {e}")))??;
    let job_dir = input.job_dir;
    output.video = relative(job_dir, &output.video);
    output.preview = relative(job_dir, &output.preview);
    output.keyframes = output.keyframes.iter().map(|k| relative(job_dir, k)).collect();
    output.subtitles = output.subtitles.iter().map(|(l, p)| (l.clone(), relative(job_dir, p))).collect();
    let metadata = AgentMetadata {
        model_used: "compositor+libx264".into(),
        processing_ms: started.elapsed().as_millis() as u64,
        version: "1.0.0".into(),
    };
    Ok(StageOutput {
        event: Event::Rendered,
        detail: Some(json!({"frames": output.frames, "encode_fps": output.encode_fps, "attempt": attempt})),
        writes: vec![input.write(
            Section::GeneratedAssets,
            Stage::Render,
            &GeneratedAssets { attempt, output },
            Some(&metadata),
        )?],
    })
}

async fn technical_qa(input: &StageInput<'_>) -> Result<StageOutput, StageError> {
    let assets: GeneratedAssets = input.read(Section::GeneratedAssets)?;
    let plan = rendered_plan(input)?;
    let expect = Expectations::from_plan(&plan);
    let path = input.job_dir.join(&assets.output.video);
    let cfg = input.config.technical_qa.clone();
    let gate = input.config.quality_gates.technical;
    let report: TechnicalReport = tokio::task::spawn_blocking(move || qa_gate::inspect(&path, &expect, &cfg, gate))
        .await
        .map_err(|e| StageError::Transient(format!("QA task failed: {e}")))?;
    let failed: Vec<String> =
        report.checks.iter().filter(|c| !c.passed).map(|c| format!("{}: {}", c.name, c.detail)).collect();
    let event =
        if report.passed { Event::TechnicalPassed } else { Event::TechnicalFailed { reason: failed.join("; ") } };
    Ok(StageOutput {
        event,
        detail: Some(json!({"technical_score": report.technical_score, "failed_checks": failed})),
        writes: vec![input.write(Section::TechnicalValidationReport, Stage::TechnicalQa, &report, None)?],
    })
}

/// Embedding similarities for narrativeAdherence, or why they are unavailable.
fn narrative_similarities(
    registry: &models::Registry,
    brief: &str,
    manifest: &ProductionManifest,
    captions: &[String],
) -> Result<(NarrativeSimilarities, u64), String> {
    let (embedder, load) = registry.embedder().map_err(|e| e.to_string())?;
    let mut texts: Vec<&str> = vec![brief, manifest.script.as_str()];
    texts.extend(captions.iter().map(String::as_str));
    texts.extend(manifest.scenes.iter().map(|s| s.description.as_str()));
    let e = embedder.embed(&texts).map_err(|e| e.to_string())?;
    let n = captions.len();
    let cos = models::embed::cosine;
    Ok((
        NarrativeSimilarities {
            model: models::MINILM_ID.into(),
            brief_script: cos(&e[0], &e[1]),
            brief_caption: (0..n).map(|i| cos(&e[0], &e[2 + i])).collect(),
            brief_description: (0..manifest.scenes.len()).map(|i| cos(&e[0], &e[2 + n + i])).collect(),
            script_caption: (0..n).map(|i| cos(&e[1], &e[2 + i])).collect(),
        },
        load.as_millis() as u64,
    ))
}

async fn semantic_qa(input: &StageInput<'_>) -> Result<StageOutput, StageError> {
    let brief: SanitizedInput = input.read(Section::SanitizedInput)?;
    let manifest: ProductionManifest = input.read(Section::ProductionManifest)?;
    let plan = rendered_plan(input)?;
    let assets: GeneratedAssets = input.read(Section::GeneratedAssets)?;
    let registry = models::Registry::shared(&input.config.models.settings());
    let captions: Vec<String> = plan.scenes.iter().map(|s| s.caption.clone()).collect();
    let (b, m) = (brief.content.clone(), manifest.clone());
    let started = std::time::Instant::now();
    let embedded = tokio::task::spawn_blocking(move || narrative_similarities(&registry, &b, &m, &captions))
        .await
        .map_err(|e| StageError::Transient(format!("embedding task failed: {e}")))?;
    let embed_ms = started.elapsed().as_millis() as u64;
    let (narrative_embeddings, embedding_note) = match embedded {
        Ok((sims, load_ms)) => (
            Some(sims),
            json!({"model": models::MINILM_ID, "load_ms": load_ms, "embed_ms": embed_ms - load_ms.min(embed_ms)}),
        ),
        Err(why) => (None, json!({"model": null, "fallback": "lexical", "reason": why})),
    };
    let request = SemanticRequest {
        brief: brief.content,
        manifest,
        plan,
        keyframes: assets.output.keyframes.iter().map(|k| input.job_dir.join(k)).collect(),
        criteria: input
            .config
            .semantic_qa
            .criteria
            .iter()
            .map(|(k, c)| (k.clone(), CriterionConfig { weight: c.weight, threshold: c.threshold }))
            .collect(),
        gate: input.config.quality_gates.semantic,
        narrative_embeddings,
    };
    let mut out = semantic::SemanticQa.run(request, &input.agent).await?;
    if embedding_note["model"].is_string() {
        out.metadata.model_used = format!("signal-heuristics+{}", models::MINILM_ID);
    }
    let mut metadata = serde_json::to_value(&out.metadata).unwrap_or(Value::Null);
    metadata["embeddings"] = embedding_note;
    Ok(StageOutput {
        event: Event::SemanticScored,
        detail: Some(json!({"semantic_score": out.value.score, "weakest_scenes": out.value.weakest_scenes})),
        writes: vec![MemoryWrite::by_stage(
            Section::ConsistencyReport,
            Stage::SemanticQa.name(),
            to_value(&out.value)?,
            Some(metadata),
        )],
    })
}

fn supervise(input: &StageInput<'_>) -> Result<StageOutput, StageError> {
    let brief: SanitizedInput = input.read(Section::SanitizedInput)?;
    let technical: TechnicalReport = input.read(Section::TechnicalValidationReport)?;
    let semantic: SemanticReport = input.read(Section::ConsistencyReport)?;
    let cost: CostCertification = input.read(Section::CostCertification)?;
    let s = &input.config.supervisor;
    let verdict = supervisor::decide(
        &Inputs {
            quality: semantic.score,
            technical: technical.technical_score,
            cost: cost.certificate.estimate.total,
            budget: brief.budget,
        },
        &Thresholds {
            approve_min_quality: s.approve_min_quality,
            reject_below_quality: s.reject_below_quality,
            reject_below_technical: s.reject_below_technical,
        },
    );
    Ok(StageOutput {
        event: Event::Decided { decision: verdict.decision.clone() },
        detail: Some(json!({"reasons": verdict.reasons})),
        writes: vec![input.write(Section::FinalApproval, Stage::Supervise, &verdict, None)?],
    })
}

/// One deliverable in the delivery manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deliverable {
    /// Path relative to the job directory.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn list_files(dir: &Path, root: &Path, out: &mut Vec<Deliverable>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".tmp") || name.contains(".partial") {
            continue;
        }
        if entry.file_type()?.is_dir() {
            list_files(&path, root, out)?;
        } else {
            out.push(Deliverable {
                path: relative(root, &path).to_string_lossy().into_owned(),
                bytes: entry.metadata()?.len(),
                sha256: sha256_file(&path)?,
            });
        }
    }
    Ok(())
}

/// Actual cost against the certified estimate; `Null` (with a note) for a job costed before
/// certificates existed.
fn reconcile(input: &StageInput<'_>, bytes: u64) -> Result<Value, StageError> {
    let Some(entry) = input
        .store
        .section(&input.job.id, Section::CostCertification)
        .map_err(|e| StageError::Transient(format!("reading cost_certification: {e}")))?
    else {
        return Ok(json!({"note": "no cost certificate: nothing to reconcile"}));
    };
    let Ok(cert) = serde_json::from_value::<CostCertification>(entry.content) else {
        return Ok(json!({"note": "the cost certification predates the cost model: nothing to reconcile"}));
    };
    let history = input.store.history(&input.job.id).map_err(|e| StageError::Transient(format!("history: {e}")))?;
    let prices = pricing::current(input.config, input.ledger);
    let r: Reconciliation = finance::reconcile(input.config, &prices, &cert.certificate.estimate, &history, bytes);
    if let Some(ledger) = input.ledger {
        let payload = json!({
            "estimate": r.estimate, "actual": r.actual.total, "variance_pct": r.variance_pct,
            "overrun_flagged": r.overrun_flagged, "pricing_version": prices.version,
        });
        ledger
            .append(AuditKind::CostReconciled, Some(&input.job.id), &payload)
            .map_err(|e| StageError::Transient(format!("audit trail: {e}")))?;
    }
    to_value(&r)
}

fn deliver(input: &StageInput<'_>) -> Result<StageOutput, StageError> {
    let translation: Translation = input.read(Section::PromptBundle)?;
    let mut files = Vec::new();
    list_files(input.job_dir, input.job_dir, &mut files)
        .map_err(|e| StageError::Transient(format!("listing {}: {e}", input.job_dir.display())))?;
    if !files.iter().any(|f| f.path == "video.mp4") {
        return Err(StageError::Permanent(format!("{} has no video.mp4 to deliver", input.job_dir.display())));
    }
    let reconciliation = reconcile(input, files.iter().map(|f| f.bytes).sum())?;
    let narration: Option<Narration> = input.read_optional(Section::Narration)?;
    let credits: Vec<String> = narration.as_ref().and_then(Narration::spoken).map(voice_credit).into_iter().collect();
    let manifest = json!({
        "job_id": input.job.id,
        "directory": input.job_dir,
        "files": files,
        "subtitles": translation.languages,
        "credits": credits,
        "cost": reconciliation,
    });
    Ok(StageOutput {
        event: Event::DeliveryPacked,
        detail: Some(json!({"files": files.len()})),
        writes: vec![MemoryWrite::by_stage(Section::DeliveryManifest, Stage::Deliver.name(), manifest, None)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caption_length_follows_reading_speed() {
        assert_eq!(readable_caption_chars(6, 3), 30);
        assert_eq!(readable_caption_chars(2, 3), 24);
        assert_eq!(readable_caption_chars(60, 3), 72);
    }
}
