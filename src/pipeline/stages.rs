//! One function per stage: read what the stage needs from the job's memory snapshot, run the
//! agent or deterministic function, and return a [`StageOutcome`]: the event, the memory
//! sections to write and the side effects (audit entries, cache entries, files to promote)
//! as data. Stages hold no store handle — the driver commits the whole outcome in the step's
//! transaction — and are idempotent: the seed comes from the job id, outputs overwrite their
//! own files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agents::director::{CreativeDirector, DirectorSettings};
use agents::domain::{ProductionManifest, RenderPlan, VideoSettings};
use agents::models;
use agents::planner::{self, PlanLimits, PlanRequest, Planner};
use agents::render::{self, PreviewSettings, RenderRequest};
use agents::semantic::{self, CriterionConfig, NarrativeSimilarities, SemanticReport, SemanticRequest};
use agents::supervisor::{self, Inputs, Thresholds};
use agents::translate::apertium::ApertiumTranslator;
use agents::translate::marian::MarianTranslator;
use agents::translate::{self, LlmTranslator, Translator};
use agents::visual::{TranslateRequest, TranslatedCaptions, Translation, VisualTranslator};
use agents::voice::narrate::{self, Narration, NarrationRequest, NarrationStatus, NarrationTrack, SceneText};
use agents::{Agent, AgentContext, AgentMetadata};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::blocking;
use super::brief_cap::{self, PlanningBrief};
use super::machine::{Event, Stage, State};
use super::retry::StageError;
use crate::config::{Config, PipelineKind};
use crate::finance::audit::AuditKind;
use crate::finance::certificate::{self, Certificate, CostKey};
use crate::finance::daily::DailyStatus;
use crate::finance::model::Calibration;
use crate::finance::pricing::PricingTable;
use crate::finance::{self, FastTrackCheck, Reconciliation, routing};
pub use crate::memory::sections::{
    BackendSelection, CostCertification, Deliverable, DeliveryCost, DeliveryManifest, GeneratedAssets, Routing,
};
use crate::memory::{Memory, MemoryWrite, Section, SectionDoc, decode};
use crate::qa_gate::{self, Expectations, TechnicalReport};
use crate::sanitize::{self, BriefRequest, SanitizedInput};
use crate::store::cache::{self, CacheEntry, ConsistencyCache};
use crate::store::{AuditAppend, HistoryEvent, JobRecord};

/// Everything a stage may read: typed values the driver read before the stage started. A
/// stage never reaches the store; what it wants written comes back in its [`StageOutcome`].
pub struct StageInput<'a> {
    /// Configuration.
    pub config: &'a Config,
    /// The job, as read at the start of the stage.
    pub job: &'a JobRecord,
    /// The job's memory at the start of the stage.
    pub memory: &'a Memory,
    /// The job's history at the start of the costing and delivering stages (empty for the
    /// others): the CPU time already spent is priced as measured, then reconciled.
    pub history: &'a [HistoryEvent],
    /// The job's local working directory: stages read and write their files here.
    pub job_dir: &'a Path,
    /// Where the job's finished files are published for every node (a directory, or an
    /// `s3://` URL): the delivery manifest records it. The driver uploads the files; a stage
    /// only names the location.
    pub artifact_location: &'a str,
    /// The data directory (calibration file, signing key).
    pub data_dir: &'a Path,
    /// The pricing table in force.
    pub prices: &'a PricingTable,
    /// Whether the driver records cost decisions in an audit trail (stages then return
    /// [`Effect::Audit`] entries; without one they say in memory that nothing was audited).
    pub audited: bool,
    /// Today's spend, read by the driver for the costing stage (`None` for the others).
    pub daily: Option<&'a DailyStatus>,
    /// The process's consistency cache, when the driver has one (read-only here).
    pub cache: Option<&'a ConsistencyCache>,
    /// Seed, cancellation and progress for agents.
    pub agent: AgentContext,
}

/// A side effect of a stage, carried as data so the driver can commit it with the step — or
/// not at all.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Append an entry to the cost audit trail (in the step's transaction).
    Audit(AuditAppend),
    /// Write a consistency-cache entry (in the step's transaction; mirrored into the
    /// in-memory cache after the commit).
    Cache(CacheEntry),
    /// Rename a finished file into place after the step committed (a `.partial` the stage
    /// wrote, so a step that never commits leaves no final file behind).
    Promote {
        /// The file the stage wrote.
        from: PathBuf,
        /// Its final name.
        to: PathBuf,
    },
}

/// What a stage produced: everything the driver commits for it, in one transaction.
#[derive(Debug)]
pub struct StageOutcome {
    /// The event to feed the machine.
    pub event: Event,
    /// Memory sections to write.
    pub writes: Vec<MemoryWrite>,
    /// Side effects to commit with the step.
    pub effects: Vec<Effect>,
    /// Extra detail for the history line.
    pub detail: Option<Value>,
}

impl StageOutcome {
    /// An outcome with writes and detail but no side effects.
    pub fn new(event: Event, writes: Vec<MemoryWrite>, detail: Option<Value>) -> Self {
        Self { event, writes, effects: Vec::new(), detail }
    }
}

impl<'a> StageInput<'a> {
    fn read<T: SectionDoc>(&self) -> Result<T, StageError> {
        self.memory.read::<T>().map_err(|e| StageError::Permanent(e.to_string()))
    }

    fn write<T: SectionDoc>(
        &self,
        stage: Stage,
        content: &T,
        metadata: Option<&AgentMetadata>,
    ) -> Result<MemoryWrite, StageError> {
        let metadata = metadata.map(|m| serde_json::to_value(m).unwrap_or(Value::Null));
        write_doc(stage, content, metadata)
    }
}

/// A stage's typed write with free-form metadata.
fn write_doc<T: SectionDoc>(stage: Stage, content: &T, metadata: Option<Value>) -> Result<MemoryWrite, StageError> {
    MemoryWrite::of(stage.name(), content, metadata)
        .map_err(|e| StageError::Permanent(format!("serialising {}: {e}", T::SECTION)))
}

/// Run the stage for `state`.
pub async fn run(state: &State, input: &StageInput<'_>) -> Result<StageOutcome, StageError> {
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
        State::Delivering {} => deliver(input).await,
        other => Err(StageError::Permanent(format!("state '{}' has no stage", other.name()))),
    }
}

fn sanitize_stage(input: &StageInput<'_>) -> Result<StageOutcome, StageError> {
    let request: BriefRequest = serde_json::from_value(input.job.request.clone())
        .map_err(|e| StageError::Permanent(format!("stored request is not a brief: {e}")))?;
    let clean = sanitize::sanitize(&request, input.config).map_err(|e| StageError::Permanent(e.to_string()))?;
    Ok(StageOutcome::new(Event::InputAccepted, vec![input.write(Stage::Sanitize, &clean, None)?], None))
}

/// The brief's estimate on its requested tier, checked against
/// `financial.forceFastTrackIfCostExceeds`. Done here, before planning, because the fast track
/// is a planning decision; the costing stage records the same check on the final plan.
fn fast_track_cost_check(input: &StageInput<'_>, brief: &SanitizedInput) -> Option<FastTrackCheck> {
    let calibration = Calibration::load_or_default(input.data_dir);
    finance::orchestrate(
        input.config,
        input.prices,
        &calibration,
        brief,
        brief.duration_sec as f64,
        routing::DailyLevel::Normal,
    )
    .ok()
    .map(|o| o.fast_track_check)
}

/// The route stage's decision, a pure function of what it measured: whether the brief takes
/// the fast track, and why in words.
fn fast_track_decision(
    c: &planner::Complexity,
    brief: &SanitizedInput,
    ft: &crate::config::FastTrack,
    preset_fast: bool,
    cost_check: Option<&FastTrackCheck>,
) -> (bool, String) {
    if let Some(check) = cost_check.filter(|c| c.exceeded) {
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
    } else if let Some(check) = cost_check.filter(|c| c.estimate > ft.cost_ceiling) {
        (false, format!("fast-track estimate ${:.4} > fastTrack.costCeiling ${}", check.estimate, ft.cost_ceiling))
    } else if let Some(check) = cost_check.filter(|c| c.cpu_s > ft.max_latency_sec as f64) {
        (
            false,
            format!(
                "predicted {:.1} CPU-s > fastTrack.maxLatencySec {} s: the fast track would miss its latency target",
                check.cpu_s, ft.max_latency_sec
            ),
        )
    } else if c.dialogue_marker_count > 0 {
        (false, "the brief contains dialogue".to_owned())
    } else {
        (true, format!("complexity {:.3} < {}", c.score, ft.activation_complexity_max))
    }
}

fn route(input: &StageInput<'_>) -> Result<StageOutcome, StageError> {
    let brief: SanitizedInput = input.read()?;
    let c = planner::complexity(&brief_cap::planning_brief(&brief.content).text, brief.duration_sec);
    let ft = &input.config.fast_track;
    let preset_fast = input.config.presets.get(&brief.preset).is_some_and(|p| p.pipeline == PipelineKind::Fast);
    let cost_check = fast_track_cost_check(input, &brief);
    let (fast_track, reason) = fast_track_decision(&c, &brief, ft, preset_fast, cost_check.as_ref());
    let routing = Routing { complexity: c, fast_track, reason, cost_check };
    Ok(StageOutcome::new(
        Event::Routed { fast_track },
        vec![input.write(Stage::Route, &routing, None)?],
        Some(json!({"complexity": routing.complexity.score, "fast_track": fast_track, "reason": routing.reason})),
    ))
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

pub use crate::memory::is_human_author;

async fn plan(input: &StageInput<'_>, fast_track: bool) -> Result<StageOutcome, StageError> {
    // A reviewer's edited manifest is the plan: keep it instead of planning again (the
    // job comes back here after "request changes" with edits).
    let latest = input.memory.entry(Section::ProductionManifest);
    if let Some(entry) = latest.filter(|e| is_human_author(&e.author)) {
        let manifest: ProductionManifest =
            decode(entry).map_err(|e| StageError::Permanent(format!("the human-edited manifest: {e}")))?;
        return Ok(StageOutcome::new(
            Event::Planned,
            vec![input.write(Stage::Plan, &manifest.markers, None)?],
            Some(json!({
                "kept_human_manifest": {"version": entry.version, "author": entry.author},
                "scenes": manifest.scenes.len(),
            })),
        ));
    }
    let brief: SanitizedInput = input.read()?;
    // The planner, the director and the embedder see a bounded text (brief_cap).
    let capped = brief_cap::planning_brief(&brief.content);
    let mut request = PlanRequest {
        brief: capped.text.clone(),
        duration_s: brief.duration_sec,
        language: brief.languages.first().cloned().unwrap_or_else(|| "en".into()),
        fast_track,
        limits: plan_limits(input.config, brief.duration_sec, fast_track),
        reuse_markers: None,
        speech: input.config.voice.fit(),
    };
    let registry = models::Registry::shared(&input.config.models.settings());

    // Consistency cache: a similar earlier brief of the same brand lends its markers.
    let mut cache_note = json!(null);
    let mut brief_embedding = None;
    let cache_wanted = input.config.consistency_cache.reuse_across_jobs
        && input.config.presets.get(&brief.preset).is_none_or(|p| p.cache);
    let cache = match (&brief.brand_id, cache_wanted) {
        (Some(_), true) => input.cache,
        _ => None,
    };
    if let (Some(brand), Some(cache)) = (&brief.brand_id, &cache) {
        let (reg, content) = (registry.clone(), capped.text.clone());
        let embedded = blocking::run("brief embedding", &input.agent, move |_| {
            reg.embedder().and_then(|(e, _)| e.embed(&[content.as_str()]))
        })
        .await?;
        match embedded {
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
    let planner_run = |request: &PlanRequest| {
        let started = std::time::Instant::now();
        planner::plan_with_report(request).map_err(StageError::from).map(|p| {
            let metadata = AgentMetadata {
                model_used: Planner::NAME.into(),
                processing_ms: started.elapsed().as_millis() as u64,
                version: planner::PLANNER_VERSION.into(),
            };
            (p, metadata)
        })
    };
    let (manifest, metadata, note, script_report, analysis) = if fast_track {
        let (p, metadata) = planner_run(&request)?;
        (p.manifest, metadata, "fast track: deterministic planner (no model needed)".to_owned(), p.script, p.analysis)
    } else {
        let missing = [models::SMOLLM2_ID, models::MINILM_ID]
            .into_iter()
            .find_map(|m| models::check_installed(&registry.settings().dir, m).err());
        let thin =
            agents::script::analysis::too_thin_for_a_writer(&agents::script::analyze(&capped.text, &request.language));
        let directed = match (missing, thin) {
            (Some(e), _) => Err(format!("the creative director's model is not installed ({e})")),
            (None, Some(why)) => Err(why),
            (None, None) => {
                let director = CreativeDirector {
                    registry: registry.clone(),
                    settings: DirectorSettings {
                        candidates: input.config.models.director_candidates,
                        temperature: input.config.models.director_temperature,
                        repair_rounds: input.config.models.director_repair_rounds,
                    },
                };
                let req = request.clone();
                let directed = blocking::run("the creative director", &input.agent, move |ctx| {
                    let started = std::time::Instant::now();
                    director.direct(&req, ctx).map(|d| (d, started.elapsed()))
                })
                .await;
                match directed {
                    Ok(Ok(d)) => Ok(d),
                    Ok(Err(agents::AgentError::Cancelled)) => return Err(StageError::Cancelled),
                    Ok(Err(e)) => Err(format!("the creative director produced no valid storyboard: {e}")),
                    Err(e) => Err(e.to_string()),
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
                let count = |a: agents::script::LineAction| d.script.scenes.iter().filter(|v| v.action == a).count();
                let note = format!(
                    "full path: the local model wrote this storyboard ({} scenes chosen from {} sampled lines, \
                     mean brief similarity {:.3}); markers {}; script checks: {} line(s) kept, {} trimmed, {} \
                     replaced by the planner's",
                    d.report.chosen.len(),
                    d.report.candidates.len(),
                    d.report.relevance,
                    d.report.markers_source,
                    count(agents::script::LineAction::Kept),
                    count(agents::script::LineAction::Trimmed),
                    count(agents::script::LineAction::Replaced),
                );
                director_report = Some(d.report);
                (d.manifest, metadata, note, d.script, d.analysis)
            }
            Err(why) => {
                let (p, metadata) = planner_run(&request)?;
                (
                    p.manifest,
                    metadata,
                    format!("full path: the deterministic planner wrote this manifest because {why}"),
                    p.script,
                    p.analysis,
                )
            }
        }
    };
    let mut effects = Vec::new();
    if let (Some(brand), Some(_), Some(emb)) = (&brief.brand_id, &cache, brief_embedding)
        && request.reuse_markers.is_none()
    {
        match cache::markers_entry(brand, &input.job.id, emb, &manifest.markers) {
            Ok(entry) => effects.push(Effect::Cache(entry)),
            Err(e) => tracing::warn!("consistency cache entry not built: {e}"),
        }
    }
    let mut meta = serde_json::to_value(&metadata).unwrap_or(Value::Null);
    meta["note"] = Value::String(note);
    meta["consistency_cache"] = cache_note.clone();
    if !capped.unchanged() {
        let PlanningBrief { text: _, chars_in, chars_used, collapsed_chars, truncated, estimated_tokens } = capped;
        meta["planning_brief"] = json!({"chars_in": chars_in, "chars_used": chars_used,
            "collapsed_chars": collapsed_chars, "truncated": truncated, "estimated_tokens": estimated_tokens});
    }
    if let Some(r) = &director_report {
        meta["director"] = to_value(r)?;
    }
    // What the script checks found and repaired, and what of the brief was direction.
    meta["script"] = to_value(&script_report)?;
    meta["direction"] = to_value(&analysis.direction)?;
    // Sentences of the brief that tried to steer the system: neither obeyed nor spoken.
    meta["suspicious_instructions"] = to_value(&analysis.suspicious)?;
    Ok(StageOutcome {
        event: Event::Planned,
        detail: Some(
            json!({"model_used": metadata.model_used, "scenes": manifest.scenes.len(), "consistency_cache": cache_note}),
        ),
        writes: vec![
            input.write(Stage::Plan, &manifest.markers, Some(&metadata))?,
            write_doc(Stage::Plan, &manifest, Some(meta))?,
        ],
        effects,
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
        x264_preset: tier.x264_preset,
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
    let narration: Vec<String> = manifest.scenes.iter().map(|s| s.narration.clone()).collect();
    let owned = config.clone();
    let src = source.clone();
    let (translations, unavailable) =
        blocking::run("translation", ctx, move |_| translate_captions(&owned, &captions, &narration, &src, &targets))
            .await?;
    let request = TranslateRequest {
        manifest,
        video: video_settings(config, brief)?,
        transition_s: config.render.transition_sec,
        languages: brief.languages.clone(),
        translations,
        unavailable,
    };
    let descriptions: Vec<String> = request.manifest.scenes.iter().map(|s| s.description.clone()).collect();
    let mut out = VisualTranslator.run(request, ctx).await?;
    let mut plan = out.value.plan.clone();
    let owned = config.clone();
    let content = brief.content.clone();
    let (plan, note) = blocking::run("illustration", ctx, move |_| {
        let note = illustrate(&owned, &mut plan, &descriptions, &source, &content);
        (plan, note)
    })
    .await?;
    out.value.plan = plan;
    out.value.illustration_note = Some(note);
    Ok(out)
}

/// Chooses the scenes' illustrations (see `agents::illustrate`), building the index on first
/// use; the note says what ran or why no pictures were chosen.
fn illustrate(config: &Config, plan: &mut RenderPlan, descriptions: &[String], lang: &str, brief: &str) -> String {
    let registry = models::Registry::shared(&config.models.settings());
    let embedder = match registry.embedder() {
        Ok((e, _)) => e,
        Err(e) => return format!("no illustrations: the embedding model is unavailable ({e})"),
    };
    let index = match illustration_index(&config.render.assets_dir, &embedder) {
        Ok(i) => i,
        Err(e) => return format!("no illustrations: {e}"),
    };
    let requested = index.requested_by(brief);
    match agents::illustrate::illustrate_plan(plan, descriptions, lang, &requested, &index, &embedder) {
        Ok(note) => note,
        Err(e) => format!("no illustrations: {e}"),
    }
}

/// The illustration index for an assets directory, loaded (or built) once per process.
fn illustration_index(
    assets_dir: &std::path::Path,
    embedder: &agents::models::embed::Embedder,
) -> Result<Arc<agents::illustrate::IllustrationIndex>, agents::AgentError> {
    static CACHE: std::sync::OnceLock<
        std::sync::Mutex<BTreeMap<std::path::PathBuf, Arc<agents::illustrate::IllustrationIndex>>>,
    > = std::sync::OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(index) = cache.get(assets_dir) {
        return Ok(index.clone());
    }
    let index = Arc::new(agents::illustrate::IllustrationIndex::load_or_build(assets_dir, embedder)?);
    cache.insert(assets_dir.to_path_buf(), index.clone());
    Ok(index)
}

/// The translation backends this configuration offers, in preference order: Marian models
/// configured per pair, Apertium when the tool and a language pair are installed, then the
/// local LLM when installed. Load failures are reasons.
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
    let apertium = ApertiumTranslator::default();
    if apertium.available() {
        backends.push(Arc::new(apertium));
    }
    let settings = config.models.settings();
    let registry = models::Registry::shared(&settings);
    if registry.installed(models::SMOLLM2_ID) {
        backends.push(Arc::new(LlmTranslator { registry, max_tokens: 48 }));
    }
    (backends, problems)
}

/// Translate the captions and the narration lines into every extra language whose best
/// backend passed the quality bar; the others get the reason they are unavailable.
fn translate_captions(
    config: &Config,
    captions: &[String],
    narration: &[String],
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
    // One call per language: the captions, then the scenes' non-empty narration lines.
    let spoken: Vec<usize> = (0..narration.len()).filter(|&i| !narration[i].trim().is_empty()).collect();
    let refs: Vec<&str> =
        captions.iter().map(String::as_str).chain(spoken.iter().map(|&i| narration[i].as_str())).collect();
    for lang in targets {
        match translate::choose(&backends, &table, source, lang, config.models.translation_min_chrf) {
            Ok((backend, chrf)) => match backend.translate(&refs, source, lang) {
                Ok(mut out) if out.len() == refs.len() && out.iter().all(|t| !t.trim().is_empty()) => {
                    let lines = out.split_off(captions.len());
                    let mut translated = vec![String::new(); narration.len()];
                    for (&i, line) in spoken.iter().zip(lines) {
                        translated[i] = line;
                    }
                    done.insert(
                        lang.clone(),
                        TranslatedCaptions { backend: backend.id(), chrf, captions: out, narration: translated },
                    );
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

async fn translate(input: &StageInput<'_>) -> Result<StageOutcome, StageError> {
    let brief: SanitizedInput = input.read()?;
    let manifest: ProductionManifest = input.read()?;
    let out = translation_for(input.config, &brief, manifest, &input.agent).await?;
    let unavailable: Vec<&str> =
        out.value.languages.iter().filter(|l| l.status == "unavailable").map(|l| l.lang.as_str()).collect();
    Ok(StageOutcome::new(
        Event::Translated,
        vec![input.write(Stage::Translate, &out.value, Some(&out.metadata))?],
        Some(json!({"subtitles_unavailable": unavailable})),
    ))
}

fn cost(input: &StageInput<'_>) -> Result<StageOutcome, StageError> {
    let brief: SanitizedInput = input.read()?;
    let translation: Translation = input.read()?;
    let prices = input.prices;
    let calibration = Calibration::load_or_default(input.data_dir);
    let day = input
        .daily
        .cloned()
        .ok_or_else(|| StageError::Transient("the driver did not read today's spend for the costing stage".into()))?;
    let duration_s = translation.plan.duration_s();
    // The stages that already ran (sanitize … translating) are priced as measured.
    let measured: BTreeMap<String, f64> = finance::daily::stage_cpu(input.history).into_iter().collect();
    // What the voices will say: the first language's narration as planned, and each
    // translation that brought a narration to speak.
    let translated: Vec<&agents::visual::LanguageStatus> =
        translation.languages.iter().filter(|l| l.status != "source" && !l.narration.is_empty()).collect();
    let lines = translation.plan.scenes.iter().map(|s| s.narration.as_str());
    let translated_lines = translated.iter().flat_map(|l| &l.narration).map(String::as_str);
    let speech_s =
        if brief.narration { agents::script::speech::total_seconds(lines.chain(translated_lines)) } else { 0.0 };
    let spoken = finance::model::Spoken { languages: 1 + translated.len() as u32, speech_s: Some(speech_s) };
    let orch = finance::orchestrate_measured(
        input.config,
        prices,
        &calibration,
        &brief,
        duration_s,
        spoken,
        day.level,
        &measured,
    )
    .map_err(|e| StageError::Permanent(e.to_string()))?;
    let chosen = &orch.decision.chosen;
    let tier_brief = SanitizedInput { tier: chosen.tier.clone(), ..brief.clone() };
    let video = video_settings(input.config, &tier_brief)?;
    let backend = finance::Backend::of_candidate(&chosen.name);

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
    // Written under a partial name and promoted by the driver once the step committed.
    let (partial, certificate_file) =
        (input.job_dir.join(".cost_certificate.json.partial"), input.job_dir.join("cost_certificate.json"));
    cert.write(&partial).map_err(|e| StageError::Transient(format!("writing cost_certificate.json: {e}")))?;
    let mut effects = vec![Effect::Promote { from: partial, to: certificate_file }];

    let audit = match input.audited {
        true => {
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
            effects.push(Effect::Audit(AuditAppend { kind: AuditKind::CostDecision, payload }));
            json!({"kind": AuditKind::CostDecision.as_str(),
                   "note": "appended in the costing step's transaction; the step's history line names its seq and hash"})
        }
        false => json!({"seq": null, "note": "no audit trail attached to this driver; the decision was not audited"}),
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
    Ok(StageOutcome {
        event: Event::Costed { plan_review },
        detail: Some(detail),
        writes: vec![input.write(Stage::Cost, &certification, None)?, input.write(Stage::Cost, &selection, None)?],
        effects,
    })
}

/// The encoder settings to render with: the costing stage's choice when it made one, else the
/// render plan's own (jobs costed before tier selection existed).

fn relative(job_dir: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(job_dir).map(Path::to_path_buf).unwrap_or_else(|_| p.to_path_buf())
}

/// The voicing stage: the narrator speaks each scene of the approved plan (source language),
/// scene durations are fitted to the speech, clips go to `narration/`, and the `narration`
/// section records voice, engine, timings and real-time factor — or why the video has music
/// only. A narration that cannot fit even after giving up sentences, clauses or speaking the
/// caption instead fails the job with the numbers.
async fn voice_stage(input: &StageInput<'_>) -> Result<StageOutcome, StageError> {
    let brief: SanitizedInput = input.read()?;
    let translation: Translation = input.read()?;
    let cfg = &input.config.voice;
    let request = NarrationRequest {
        scenes: translation
            .plan
            .scenes
            .iter()
            .map(|s| SceneText { text: s.narration.clone(), planned_s: s.duration_s, caption: s.caption.clone() })
            .collect(),
        languages: brief.languages.clone(),
        requested_s: brief.duration_sec as f64,
        choice: brief.voice,
        disabled: (!brief.narration)
            .then(|| format!("narration is off for this brief (preset '{}' or \"narration\": false)", brief.preset)),
        job_dir: input.job_dir.to_path_buf(),
        fit: cfg.fit(),
        voices: cfg.settings(&input.config.models.dir),
        translated: translation
            .languages
            .iter()
            .skip(1)
            .filter(|l| !l.narration.is_empty())
            .map(|l| (l.lang.clone(), l.narration.clone()))
            .collect(),
        untranslated: translation
            .languages
            .iter()
            .skip(1)
            .filter(|l| l.narration.is_empty())
            .map(|l| {
                let why = match l.status.as_str() {
                    "translated" => "the translation has no narration lines".to_owned(),
                    _ => l.reason.clone().unwrap_or_else(|| "no translation".into()),
                };
                (l.lang.clone(), why)
            })
            .collect(),
    };
    let started = std::time::Instant::now();
    let narration = blocking::run("voicing", &input.agent, move |ctx| narrate::narrate(&request, ctx)).await??;
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
        "languages": narration.tracks.iter().skip(1).map(|t| json!({
            "lang": t.lang, "status": t.status, "voice": t.voice, "reason": t.reason,
        })).collect::<Vec<_>>(),
    });
    Ok(StageOutcome::new(Event::Voiced, vec![input.write(Stage::Voice, &narration, Some(&metadata))?], Some(detail)))
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

/// Credits for what the picture shows: each illustration used (Fluent Emoji Flat, MIT, which
/// asks for its copyright notice) and each font that drew a caption, with its version and
/// licence as the font states them.
fn picture_credits(plan: &RenderPlan, output: &render::RenderOutput) -> Vec<String> {
    let mut used: Vec<&str> =
        plan.scenes.iter().flat_map(|s| s.illustrations.iter().map(|i| i.name.as_str())).collect();
    used.sort_unstable();
    used.dedup();
    let mut credits = Vec::new();
    if !used.is_empty() {
        credits.push(format!(
            "Illustrations: Fluent Emoji Flat by Microsoft Corporation (MIT License, Copyright (c) Microsoft \
             Corporation), via @iconify-json/fluent-emoji-flat 1.2.6: {}",
            used.join(", ")
        ));
    }
    for font in &output.fonts {
        let license = if font.license.is_empty() { "licence not stated in the font" } else { font.license.as_str() };
        credits.push(format!("Font: {} ({}); {license}", font.family, font.version));
    }
    credits
}

/// The credit a narration's voice asks for in the delivery manifest.
fn voice_credit(track: &NarrationTrack) -> String {
    let voice = track.voice.as_deref().unwrap_or("?");
    match track.engine {
        Some(agents::voice::VoiceEngine::Piper) if voice == "piper:en_US-joe-medium" => format!(
            "Narration: {voice}, a Piper voice (rhasspy/piper-voices v1.0.0; dataset CC0, fine-tuned from the lessac \
             voice) run with ONNX Runtime (MIT)"
        ),
        Some(agents::voice::VoiceEngine::Piper) => {
            format!("Narration: {voice}, a Piper voice run with ONNX Runtime (MIT)")
        }
        _ => format!("Narration: {voice}, espeak-ng formant synthesis (GPL-3.0, run as a separate program)"),
    }
}

/// The plan as rendered and checked: the translator's plan with the costing stage's encoder
/// settings, the configured mix, and the narration applied (scene timings that follow the
/// speech, word timings, the clips, subtitles cut from the words). The translator's section
/// itself is never rewritten.
pub fn rendered_plan(input: &StageInput<'_>) -> Result<RenderPlan, StageError> {
    plan_as_rendered(input.memory, input.job_dir, input.config)
}

/// [`rendered_plan`] from a job's memory and directory, for QA of a finished job's files.
pub fn plan_as_rendered(memory: &Memory, job_dir: &Path, config: &Config) -> Result<RenderPlan, StageError> {
    let translation: Translation = memory.read().map_err(|e| StageError::Permanent(e.to_string()))?;
    let mut plan = translation.plan;
    // A selection that does not decode (written before tier selection existed) is the same
    // as none: the plan's own settings.
    plan.video = memory.get::<BackendSelection>().ok().flatten().map(|s| s.video).unwrap_or_else(|| plan.video.clone());
    plan.mix = config.voice.mix();
    // Jobs voiced before the section existed simply have none.
    let narration = memory.get::<Narration>().map_err(|e| StageError::Permanent(e.to_string()))?;
    if let Some(n) = narration.filter(|n| n.status == NarrationStatus::Narrated) {
        n.apply(&mut plan, job_dir, &config.voice.cue_rules());
    }
    Ok(plan)
}

async fn render_stage(input: &StageInput<'_>, attempt: u32) -> Result<StageOutcome, StageError> {
    let mut plan = rendered_plan(input)?;
    if attempt > 1 {
        // A re-render after a failed technical check: trade speed for robustness.
        plan.video.x264_preset = agents::domain::X264Preset::Medium;
    }
    let request = RenderRequest {
        out_dir: input.job_dir.to_path_buf(),
        font_path: input.config.render.font_path.clone(),
        assets_dir: Some(input.config.render.assets_dir.clone()),
        preview: PreviewSettings {
            max_seconds: input.config.render.preview_max_sec,
            short_side: input.config.render.preview_short_side,
        },
    };
    let started = std::time::Instant::now();
    let mut output = blocking::run("render", &input.agent, move |ctx| render::render(&plan, &request, ctx)).await??;
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
    let detail = json!({"frames": output.frames, "encode_fps": output.encode_fps, "attempt": attempt});
    Ok(StageOutcome::new(
        Event::Rendered,
        vec![input.write(Stage::Render, &GeneratedAssets { attempt, output }, Some(&metadata))?],
        Some(detail),
    ))
}

async fn technical_qa(input: &StageInput<'_>) -> Result<StageOutcome, StageError> {
    let assets: GeneratedAssets = input.read()?;
    let plan = rendered_plan(input)?;
    let expect = Expectations::from_plan(&plan);
    let path = input.job_dir.join(&assets.output.video);
    let cfg = input.config.technical_qa.clone();
    let gate = input.config.quality_gates.technical;
    let report: TechnicalReport =
        blocking::run("QA", &input.agent, move |_| qa_gate::inspect(&path, &expect, &cfg, gate)).await?;
    let failed: Vec<String> =
        report.checks.iter().filter(|c| !c.passed).map(|c| format!("{}: {}", c.name, c.detail)).collect();
    let event =
        if report.passed { Event::TechnicalPassed } else { Event::TechnicalFailed { reason: failed.join("; ") } };
    let detail = json!({"technical_score": report.technical_score, "failed_checks": failed});
    Ok(StageOutcome::new(event, vec![input.write(Stage::TechnicalQa, &report, None)?], Some(detail)))
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

async fn semantic_qa(input: &StageInput<'_>) -> Result<StageOutcome, StageError> {
    let brief: SanitizedInput = input.read()?;
    let manifest: ProductionManifest = input.read()?;
    let plan = rendered_plan(input)?;
    let assets: GeneratedAssets = input.read()?;
    let registry = models::Registry::shared(&input.config.models.settings());
    let captions: Vec<String> = plan.scenes.iter().map(|s| s.caption.clone()).collect();
    let (b, m) = (brief_cap::planning_brief(&brief.content).text, manifest.clone());
    let started = std::time::Instant::now();
    let embedded =
        blocking::run("embedding", &input.agent, move |_| narrative_similarities(&registry, &b, &m, &captions)).await?;
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
        video: Some(input.job_dir.join(&assets.output.video)),
        caption_boxes: assets.output.caption_boxes.clone(),
        narration_engine: narration_engine(input.memory),
    };
    // Decoding and scoring keyframes is CPU work: off the runtime like every other.
    let mut out = blocking::run("semantic QA", &input.agent, move |ctx| {
        tokio::runtime::Handle::current().block_on(semantic::SemanticQa.run(request, ctx))
    })
    .await??;
    if embedding_note["model"].is_string() {
        out.metadata.model_used = format!("signal-heuristics+{}", models::MINILM_ID);
    }
    let mut metadata = serde_json::to_value(&out.metadata).unwrap_or(Value::Null);
    metadata["embeddings"] = embedding_note;
    Ok(StageOutcome::new(
        Event::SemanticScored,
        vec![write_doc(Stage::SemanticQa, &out.value, Some(metadata))?],
        Some(json!({"semantic_score": out.value.score, "weakest_scenes": out.value.weakest_scenes})),
    ))
}

/// The engine that spoke the narrated track, if the job was narrated.
pub fn narration_engine(memory: &Memory) -> Option<agents::voice::VoiceEngine> {
    let narration = memory.get::<Narration>().ok().flatten()?;
    if narration.status != NarrationStatus::Narrated {
        return None;
    }
    narration.tracks.first().and_then(|t| t.engine)
}

fn supervise(input: &StageInput<'_>) -> Result<StageOutcome, StageError> {
    let brief: SanitizedInput = input.read()?;
    let technical: TechnicalReport = input.read()?;
    let semantic: SemanticReport = input.read()?;
    let cost: CostCertification = input.read()?;
    let s = &input.config.supervisor;
    let verdict = supervisor::decide(
        &Inputs {
            quality: semantic.score,
            technical: technical.technical_score,
            cost: cost.certificate.estimate.total,
            budget: brief.budget,
            failed_checks: semantic.failed_checks(),
        },
        &Thresholds {
            // Both keys bound automatic approval; the stricter one holds.
            approve_min_quality: s.approve_min_quality.max(input.config.quality_gates.final_approval),
            reject_below_quality: s.reject_below_quality,
            reject_below_technical: s.reject_below_technical,
        },
    );
    Ok(StageOutcome::new(
        Event::Decided { decision: verdict.decision.clone() },
        vec![input.write(Stage::Supervise, &verdict, None)?],
        Some(json!({"reasons": verdict.reasons})),
    ))
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

/// Actual cost against the certified estimate, with its audit entry; a note for a job costed
/// before certificates existed.
fn reconcile(input: &StageInput<'_>, bytes: u64) -> (DeliveryCost, Option<Effect>) {
    let cert = match input.memory.get::<CostCertification>() {
        Ok(Some(cert)) => cert,
        Ok(None) => {
            return (DeliveryCost::NotReconciled { note: "no cost certificate: nothing to reconcile".into() }, None);
        }
        Err(_) => {
            let note = "the cost certification predates the cost model: nothing to reconcile".into();
            return (DeliveryCost::NotReconciled { note }, None);
        }
    };
    let prices = input.prices;
    let r: Reconciliation = finance::reconcile(input.config, prices, &cert.certificate.estimate, input.history, bytes);
    let audit = input.audited.then(|| {
        let payload = json!({
            "estimate": r.estimate, "actual": r.actual.total, "variance_pct": r.variance_pct,
            "overrun_flagged": r.overrun_flagged, "pricing_version": prices.version,
        });
        Effect::Audit(AuditAppend { kind: AuditKind::CostReconciled, payload })
    });
    (DeliveryCost::Reconciled(Box::new(r)), audit)
}

async fn deliver(input: &StageInput<'_>) -> Result<StageOutcome, StageError> {
    let translation: Translation = input.read()?;
    // Hashing every deliverable is blocking IO: off the runtime.
    let dir = input.job_dir.to_path_buf();
    let files = blocking::run("delivery listing", &input.agent, move |_| {
        let mut files = Vec::new();
        list_files(&dir, &dir, &mut files).map(|()| files)
    })
    .await?
    .map_err(|e| StageError::Transient(format!("listing {}: {e}", input.job_dir.display())))?;
    if !files.iter().any(|f| f.path == "video.mp4") {
        return Err(StageError::Permanent(format!("{} has no video.mp4 to deliver", input.job_dir.display())));
    }
    let (cost, audit) = reconcile(input, files.iter().map(|f| f.bytes).sum());
    let mut effects: Vec<Effect> = audit.into_iter().collect();
    // Identical requests may reuse this delivery: recorded in the delivering step's
    // transaction, so a job is reusable exactly when it is delivered.
    if input.config.consistency_cache.reuse_across_jobs && input.cache.is_some() {
        let brief: SanitizedInput = input.read()?;
        let key = super::reuse::request_key(input.config, &brief);
        effects.push(Effect::Cache(cache::delivered_entry(&key, &input.job.id)));
    }
    let narration = input.memory.get::<Narration>().map_err(|e| StageError::Permanent(e.to_string()))?;
    let mut credits: Vec<String> = match narration.as_ref().filter(|n| n.spoken().is_some()) {
        Some(n) => n.tracks.iter().filter(|t| t.status == NarrationStatus::Narrated).map(voice_credit).collect(),
        None => Vec::new(),
    };
    let assets: Option<GeneratedAssets> = input.memory.get().map_err(|e| StageError::Permanent(e.to_string()))?;
    credits.extend(assets.map(|a| picture_credits(&translation.plan, &a.output)).unwrap_or_default());
    let manifest = DeliveryManifest {
        job_id: input.job.id.clone(),
        directory: input.job_dir.to_path_buf(),
        location: Some(input.artifact_location.to_owned()),
        files,
        subtitles: translation.languages,
        cost,
        credits,
        extra: Default::default(),
    };
    Ok(StageOutcome {
        event: Event::DeliveryPacked,
        detail: Some(json!({"files": manifest.files.len()})),
        writes: vec![input.write(Stage::Deliver, &manifest, None)?],
        effects,
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

    #[test]
    fn the_fast_track_keeps_its_cost_and_latency_promises_or_is_not_taken() {
        let config = Config::builtin();
        let req = crate::sanitize::BriefRequest {
            content: "Fresh bread at dawn, warm light, the shop opening its doors.".into(),
            duration_sec: Some(15),
            preset: Some("quick_social".into()),
            ..Default::default()
        };
        let brief = crate::sanitize::sanitize(&req, &config).unwrap();
        let c = planner::complexity(&brief.content, brief.duration_sec);
        let mut ft = config.fast_track.clone();
        let check = FastTrackCheck { threshold: 0.8, estimate: 0.02, exceeded: false, cpu_s: 6.0 };
        let (fast, why) = fast_track_decision(&c, &brief, &ft, true, Some(&check));
        assert!(fast, "{why}");
        ft.cost_ceiling = 0.01;
        let (fast, why) = fast_track_decision(&c, &brief, &ft, true, Some(&check));
        assert!(!fast && why.contains("fastTrack.costCeiling $0.01"), "{why}");
        ft.cost_ceiling = 0.3;
        ft.max_latency_sec = 5;
        let (fast, why) = fast_track_decision(&c, &brief, &ft, true, Some(&check));
        assert!(!fast && why.contains("fastTrack.maxLatencySec 5 s"), "{why}");
        // The financial rule that forces the fast track outranks both.
        let forced = FastTrackCheck { exceeded: true, ..check };
        assert!(fast_track_decision(&c, &brief, &ft, true, Some(&forced)).0);
    }
}
