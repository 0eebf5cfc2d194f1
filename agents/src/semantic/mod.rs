//! SemanticQA, first version: scores a rendered video against its brief, manifest and plan
//! from signals measured on the per-scene keyframes and the plan — no model is involved yet,
//! and every score below is computed from a measurement, never assumed.
//!
//! | criterion            | signal measured                                                        |
//! |----------------------|------------------------------------------------------------------------|
//! | `visualQuality`      | luma spread and mean of each keyframe; WCAG contrast between a high and a low luminance percentile inside the caption box, found around where the plan's typography places it |
//! | `styleCoherence`     | RGB distance from each sampled pixel to the nearest mix of palette colours (with black, white and the lighting tint), and its spread across scenes |
//! | `emotionalSync`      | keyframe brightness, colourfulness and warm/cool bias against a band per mood ([`MOOD_BANDS`]), and the plan's music tempo/energy against the same mood |
//! | `narrativeAdherence` | **embeddings** (all-MiniLM-L6-v2, computed by the caller) of brief ↔ script ↔ captions/descriptions; **lexical fallback** when the model is not installed: recall of the brief's content words in captions + descriptions, and each caption's overlap with the brief |
//!
//! On top of these, the [`checks`] look at the rendered file the way a viewer does: each
//! caption cropped from the decoded video ([`frames`]) and read back with OCR ([`ocr`]),
//! black and frozen scenes found on the same frames, the soundtrack transcribed ([`asr`]),
//! the planned narration found in it word by word ([`presence`]), the mix metered ([`mix`]).
//! A failed check caps the criterion it belongs to (caption read-back, black and frozen
//! scenes → `visualQuality`, narration heard or present → `narrativeAdherence`, the mix and
//! the voice over the music → `emotionalSync`) at the check's measured score, is named in the scene's issues and fails
//! the report; a check that could not apply or measure says so and never counts as a pass.
//!
//! The overall score is `Σ weight · score` over the configured criteria; the video passes
//! when that score reaches the gate, every criterion reaches its own threshold and no
//! perception check failed.

pub mod asr;
pub mod checks;
pub mod frames;
pub mod mix;
pub mod ocr;
pub mod presence;
pub mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::agent::{Agent, AgentContext, AgentError, AgentMetadata, AgentOutput};
use crate::domain::{CaptionPosition, ProductionManifest, RenderPlan, Rgb, Typography};
use crate::render::CaptionBox;
use crate::voice::VoiceEngine;
use checks::{BLACK_SCENE, CAPTION_READBACK, Check, FROZEN_SCENE, NARRATION_HEARD, Perception};

/// Config key of the palette-adherence criterion.
pub const STYLE_COHERENCE: &str = "styleCoherence";
/// Config key of the lexical brief-coverage criterion.
pub const NARRATIVE_ADHERENCE: &str = "narrativeAdherence";
/// Config key of the mood-match criterion.
pub const EMOTIONAL_SYNC: &str = "emotionalSync";
/// Config key of the per-keyframe image-quality criterion.
pub const VISUAL_QUALITY: &str = "visualQuality";
/// Every criterion this agent scores, in report order.
pub const CRITERIA: [&str; 4] = [STYLE_COHERENCE, NARRATIVE_ADHERENCE, EMOTIONAL_SYNC, VISUAL_QUALITY];
/// The agent's version; bump when its scores for the same input change.
pub const SEMANTIC_VERSION: &str = "2.0.0";

/// Keyframes are sampled on a grid of every `SAMPLE_STEP`-th pixel in both directions.
const SAMPLE_STEP: usize = 4;
/// WCAG AA contrast for captions; at or above it the contrast part scores 1.0.
const CONTRAST_GOOD: f64 = 4.5;
/// At or below this contrast the caption is unreadable and the contrast part scores 0.0.
const CONTRAST_UNREADABLE: f64 = 1.5;
/// Luma standard deviation (0–1) below which a keyframe counts as blank …
const BLANK_SD: f64 = 0.01;
/// … and above which it has full variation.
const VARIED_SD: f64 = 0.05;
/// Mean luma band (0–1) a keyframe should sit in; it scores 0 at the outer limits.
const EXPOSURE_OK: (f64, f64) = (0.05, 0.92);
/// Mean luma at which a frame is fully black / fully washed out.
const EXPOSURE_LIMIT: (f64, f64) = (0.015, 0.985);
/// Mean RGB distance (0–441) to the nearest palette mix at which palette adherence reaches 0.
const PALETTE_DISTANCE_SCALE: f64 = 96.0;
/// Standard deviation of per-scene palette distances at which cross-scene consistency reaches 0.
const PALETTE_SPREAD_SCALE: f64 = 32.0;

/// Weight and pass threshold of one criterion, from `semanticQa.criteria` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CriterionConfig {
    /// Share of the overall score (the four weights normally add up to 1).
    pub weight: f64,
    /// The criterion fails below this score, whatever the overall score.
    pub threshold: f64,
}

/// Everything SemanticQA looks at for one rendered job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemanticRequest {
    /// The sanitised brief the video was made from.
    pub brief: String,
    /// The production manifest (scenes, descriptions, moods, markers).
    pub manifest: ProductionManifest,
    /// The render plan that was drawn.
    pub plan: RenderPlan,
    /// One full-resolution PNG keyframe per scene, in scene order (taken mid-scene).
    pub keyframes: Vec<PathBuf>,
    /// Weight and threshold per criterion, keyed `styleCoherence`, `narrativeAdherence`,
    /// `emotionalSync`, `visualQuality`.
    pub criteria: BTreeMap<String, CriterionConfig>,
    /// The semantic quality gate the weighted score must reach (0.7 in v33).
    pub gate: f64,
    /// Embedding similarities for `narrativeAdherence`, computed by the caller with the
    /// sentence-embedding model; `None` when the model is not installed (the criterion then
    /// falls back to lexical overlap and says so).
    #[serde(default)]
    pub narrative_embeddings: Option<NarrativeSimilarities>,
    /// The rendered MP4 the perception checks inspect; `None` skips them (each says "not
    /// applicable").
    #[serde(default)]
    pub video: Option<PathBuf>,
    /// The caption rectangles the renderer recorded (empty for renders that predate them).
    #[serde(default)]
    pub caption_boxes: Vec<CaptionBox>,
    /// The synthesiser that spoke the narration, when known: speech recognition is only
    /// measured for voices the recogniser can follow.
    #[serde(default)]
    pub narration_engine: Option<VoiceEngine>,
}

/// Cosine similarities between the brief, the script and each scene's caption and
/// description, from a sentence-embedding model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NarrativeSimilarities {
    /// The embedding model's id.
    pub model: String,
    /// Brief ↔ script.
    pub brief_script: f32,
    /// Brief ↔ each scene's caption, in scene order.
    pub brief_caption: Vec<f32>,
    /// Brief ↔ each scene's description, in scene order.
    pub brief_description: Vec<f32>,
    /// Script ↔ each scene's caption, in scene order.
    pub script_caption: Vec<f32>,
}

/// Similarity at or below which a text is judged unrelated to the brief (score 0).
pub const SIM_UNRELATED: f32 = 0.10;
/// Similarity at or above which a text is judged fully on topic (score 1); all-MiniLM-L6-v2
/// scores paraphrases around 0.7–0.9 and clearly related sentences around 0.5.
pub const SIM_ON_TOPIC: f32 = 0.50;

fn sim_score(s: f32) -> f64 {
    (((s - SIM_UNRELATED) / (SIM_ON_TOPIC - SIM_UNRELATED)).clamp(0.0, 1.0)) as f64
}

/// `narrativeAdherence` from embeddings: `0.25 · brief↔script + 0.75 · mean over scenes of
/// (0.5 · brief↔caption + 0.25 · brief↔description + 0.25 · script↔caption)`, each
/// similarity mapped linearly from [`SIM_UNRELATED`] (0) to [`SIM_ON_TOPIC`] (1).
fn narrative_by_embeddings(req: &SemanticRequest, e: &NarrativeSimilarities, scenes: &mut [SceneScore]) -> Criterion {
    let mut per_scene = Vec::with_capacity(scenes.len());
    let mut detail_scenes = Vec::with_capacity(scenes.len());
    for (i, scene) in scenes.iter_mut().enumerate() {
        let (bc, bd, sc) = (e.brief_caption[i], e.brief_description[i], e.script_caption[i]);
        let v = 0.5 * sim_score(bc) + 0.25 * sim_score(bd) + 0.25 * sim_score(sc);
        per_scene.push(v);
        if req.plan.scenes[i].caption.trim().is_empty() {
            scene.issues.push("caption is empty".into());
            scene.suggestions.push(format!("write a caption for scene {i} from the brief"));
        } else if bc < 0.2 {
            scene
                .issues
                .push(format!("caption \"{}\" is far from the brief (similarity {bc:.2})", req.plan.scenes[i].caption));
            scene.suggestions.push(format!("rewrite scene {i}'s caption about the brief's subject"));
        }
        detail_scenes
            .push(json!({"scene": i, "brief_caption": round4(bc as f64), "brief_description": round4(bd as f64),
            "script_caption": round4(sc as f64), "score": round4(v)}));
    }
    let mean = per_scene.iter().sum::<f64>() / per_scene.len().max(1) as f64;
    let score = 0.25 * sim_score(e.brief_script) + 0.75 * mean;
    let method = format!(
        "EMBEDDINGS ({}): cosine similarity brief↔script, brief↔caption, brief↔description, script↔caption, mapped          linearly from {SIM_UNRELATED} (unrelated) to {SIM_ON_TOPIC} (on topic); 0.25·script + 0.75·mean scene",
        e.model
    );
    let detail =
        json!({"brief_script": round4(e.brief_script as f64), "mean_scene": round4(mean), "scenes": detail_scenes});
    (score, per_scene, method, detail)
}

/// One criterion's score and how it was obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionScore {
    /// The criterion's config key.
    pub name: String,
    /// Score, 0.0–1.0.
    pub score: f64,
    /// Its weight in the overall score.
    pub weight: f64,
    /// The score it must reach.
    pub threshold: f64,
    /// Whether `score ≥ threshold`.
    pub passed: bool,
    /// One line naming the signal that was measured.
    pub method: String,
    /// The measurements behind the score.
    pub detail: serde_json::Value,
}

/// How one scene fared, and what to change when it did not fare well.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneScore {
    /// Scene index, from 0.
    pub index: usize,
    /// The scene's caption.
    pub caption: String,
    /// The scene's criteria scores combined with the configured weights, 0.0–1.0.
    pub score: f64,
    /// What was found wrong, with the measured values.
    pub issues: Vec<String>,
    /// What to change, one per issue where a fix is known.
    pub suggestions: Vec<String>,
}

/// SemanticQA's verdict on a render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemanticReport {
    /// Weighted score, `Σ weight · score`, 0.0–1.0.
    pub score: f64,
    /// Whether the score reaches the gate and every criterion its threshold.
    pub passed: bool,
    /// One entry per criterion, in [`CRITERIA`] order.
    pub criteria: Vec<CriterionScore>,
    /// One entry per scene, in order.
    pub scenes: Vec<SceneScore>,
    /// Indices of the lowest-scoring scenes that have issues, lowest first, at most two:
    /// where a re-render should look first.
    pub weakest_scenes: Vec<usize>,
    /// Observations that belong to no single scene (audio, config, method caveats).
    pub notes: Vec<String>,
    /// What the perception checks saw and heard in the rendered file.
    #[serde(default)]
    pub checks: Vec<Check>,
}

impl SemanticReport {
    /// One line per failed perception check, with its measured value: what a decision
    /// quotes.
    pub fn failed_checks(&self) -> Vec<String> {
        self.checks.iter().filter(|c| c.failed()).map(Check::summary).collect()
    }
}

/// Score a render. Fails permanently when a keyframe is missing or unreadable (naming the
/// path), when keyframes, plan and manifest disagree on the scene count, or when the
/// criteria config is incomplete.
pub fn assess(req: &SemanticRequest) -> Result<SemanticReport, AgentError> {
    assess_with(req, None)
}

/// [`assess`], polling the context's cancel token and reporting progress per keyframe.
fn assess_with(req: &SemanticRequest, ctx: Option<&AgentContext>) -> Result<SemanticReport, AgentError> {
    let n = req.plan.scenes.len();
    if n == 0 {
        return Err(AgentError::Permanent("semantic QA: the render plan has no scenes".into()));
    }
    if req.manifest.scenes.len() != n {
        return Err(AgentError::Permanent(format!(
            "semantic QA: the manifest has {} scenes but the render plan has {n}",
            req.manifest.scenes.len()
        )));
    }
    if req.keyframes.len() != n {
        return Err(AgentError::Permanent(format!(
            "semantic QA: expected {n} keyframes (one per scene), got {}",
            req.keyframes.len()
        )));
    }
    let mut notes = Vec::new();
    let configs = criteria_configs(req, &mut notes)?;

    let mut frames = Vec::with_capacity(n);
    for (i, path) in req.keyframes.iter().enumerate() {
        if let Some(ctx) = ctx {
            if ctx.cancel.is_cancelled() {
                return Err(AgentError::Cancelled);
            }
            ctx.progress.report(i as f32 / (n as f32 + 1.0));
        }
        let frame = load_keyframe(path)?;
        frames.push(FrameMeasure::measure(&frame, &req.plan.scenes[i].caption, &req.plan.scenes[i].typography));
    }
    if let Some(ctx) = ctx {
        ctx.progress.report(n as f32 / (n as f32 + 1.0));
    }

    let mut scenes: Vec<SceneScore> = req
        .plan
        .scenes
        .iter()
        .enumerate()
        .map(|(index, s)| SceneScore {
            index,
            caption: s.caption.clone(),
            score: 0.0,
            issues: vec![],
            suggestions: vec![],
        })
        .collect();

    let style = style_coherence(req, &frames, &configs[0], &mut scenes, &mut notes);
    let narrative = match &req.narrative_embeddings {
        Some(e) if [e.brief_caption.len(), e.brief_description.len(), e.script_caption.len()] == [n, n, n] => {
            narrative_by_embeddings(req, e, &mut scenes)
        }
        Some(_) => {
            notes.push("narrative embeddings did not match the scene count; lexical fallback used".into());
            narrative_adherence(req, &mut scenes)
        }
        None => narrative_adherence(req, &mut scenes),
    };
    let mut emotion = emotional_sync(req, &frames, &mut scenes, &mut notes);
    let mut visual = visual_quality(req, &frames, &mut scenes);
    let mut narrative = narrative;

    let checks = perceive(req);
    apply_checks(&checks, &mut visual, &mut narrative, &mut emotion, &mut scenes, &mut notes);
    let per_scene = [style.1.clone(), narrative.1.clone(), emotion.1.clone(), visual.1.clone()];

    let weight_sum: f64 = configs.iter().map(|c| c.weight).sum();
    let norm = if weight_sum > 0.0 && (weight_sum - 1.0).abs() > 1e-6 {
        notes.push(format!(
            "criterion weights add up to {weight_sum:.3}, not 1; the overall score is divided by that sum"
        ));
        weight_sum
    } else {
        1.0
    };

    let mut criteria = Vec::with_capacity(4);
    for (k, (name, (score, _, method, detail))) in CRITERIA.iter().zip([style, narrative, emotion, visual]).enumerate()
    {
        let cfg = configs[k];
        let score = round4(score);
        let passed = score >= cfg.threshold;
        if !passed {
            notes.push(format!("{name} {score:.2} is below its threshold {:.2}", cfg.threshold));
        }
        criteria.push(CriterionScore {
            name: (*name).to_owned(),
            score,
            weight: cfg.weight,
            threshold: cfg.threshold,
            passed,
            method,
            detail,
        });
    }
    let score =
        if weight_sum > 0.0 { round4(criteria.iter().map(|c| c.weight * c.score).sum::<f64>() / norm) } else { 0.0 };
    if score < req.gate {
        notes.push(format!("weighted score {score:.2} is below the semantic gate {:.2}", req.gate));
    }
    let passed = score >= req.gate && criteria.iter().all(|c| c.passed) && !checks.iter().any(Check::failed);

    for (i, scene) in scenes.iter_mut().enumerate() {
        let s: f64 = configs.iter().zip(per_scene.iter()).map(|(c, v)| c.weight * v[i]).sum();
        scene.score = if weight_sum > 0.0 { round4(s / weight_sum) } else { 0.0 };
    }
    let mut weakest: Vec<&SceneScore> = scenes.iter().filter(|s| !s.issues.is_empty()).collect();
    weakest.sort_by(|a, b| a.score.total_cmp(&b.score).then(a.index.cmp(&b.index)));
    let weakest_scenes = weakest.iter().take(2).map(|s| s.index).collect();

    Ok(SemanticReport { score, passed, criteria, scenes, weakest_scenes, notes, checks })
}

/// Runs the perception checks on the request's video, in a hidden scratch directory next to
/// it that is removed afterwards.
fn perceive(req: &SemanticRequest) -> Vec<Check> {
    let scratch = match &req.video {
        Some(v) => v.parent().unwrap_or(Path::new(".")).join(".semantic_qa"),
        None => std::env::temp_dir(),
    };
    let checks = checks::run(&Perception {
        video: req.video.as_deref(),
        plan: &req.plan,
        caption_boxes: &req.caption_boxes,
        narration_engine: req.narration_engine,
        scratch: scratch.clone(),
    });
    if req.video.is_some() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    checks
}

/// Caps each criterion at the measured score of its failed checks and names the failures
/// in the scenes' issues (per-scene checks) or the notes (whole-video checks).
fn apply_checks(
    checks: &[Check],
    visual: &mut Criterion,
    narrative: &mut Criterion,
    emotion: &mut Criterion,
    scenes: &mut [SceneScore],
    notes: &mut Vec<String>,
) {
    for c in checks {
        match c.status {
            checks::CheckStatus::Failed => {}
            checks::CheckStatus::NotMeasured => {
                notes.push(format!("{} not measured: {}", c.name, c.reason));
                continue;
            }
            _ => continue,
        }
        let target: &mut Criterion = match c.name.as_str() {
            CAPTION_READBACK | BLACK_SCENE | FROZEN_SCENE => &mut *visual,
            NARRATION_HEARD | presence::NARRATION_PRESENT => &mut *narrative,
            _ => &mut *emotion,
        };
        match c.scene.filter(|s| *s < scenes.len()) {
            Some(s) => {
                target.1[s] = target.1[s].min(c.score);
                // A scene whose caption cannot be read costs the criterion that scene's share.
                let n = target.1.len().max(1) as f64;
                target.0 = (target.0 - (1.0 - c.score) / n).max(0.0).min(target.0);
                scenes[s].issues.push(c.summary());
                scenes[s].suggestions.push(match c.name.as_str() {
                    CAPTION_READBACK => format!(
                        "use a font that has every glyph of scene {s}'s caption, keep it inside the safe area and clear of \
                         illustrations"
                    ),
                    BLACK_SCENE => format!("re-render scene {s}: its picture is missing"),
                    FROZEN_SCENE => format!("re-render scene {s}: its picture does not move"),
                    presence::NARRATION_PRESENT => format!("re-voice and re-mix scene {s}: its narration is not all heard"),
                    presence::VOICE_OVER_MUSIC => format!("duck the music further under the voice in scene {s}"),
                    _ => format!("re-render scene {s}"),
                });
            }
            None => {
                target.0 = target.0.min(c.score);
                for v in target.1.iter_mut() {
                    *v = v.min(c.score);
                }
                notes.push(c.summary());
            }
        }
        target.2.push_str(&format!("; capped by failed check {}", c.name));
    }
}

/// The four criterion configs in [`CRITERIA`] order; unknown keys are noted and ignored.
fn criteria_configs(req: &SemanticRequest, notes: &mut Vec<String>) -> Result<[CriterionConfig; 4], AgentError> {
    let mut out = [CriterionConfig { weight: 0.0, threshold: 0.0 }; 4];
    for (k, name) in CRITERIA.iter().enumerate() {
        let cfg = req.criteria.get(*name).ok_or_else(|| {
            AgentError::Permanent(format!("semantic QA: criterion '{name}' is missing from semanticQa.criteria"))
        })?;
        if !(cfg.weight.is_finite() && cfg.weight >= 0.0 && cfg.threshold.is_finite()) {
            return Err(AgentError::Permanent(format!(
                "semantic QA: criterion '{name}' has an invalid weight {} or threshold {}",
                cfg.weight, cfg.threshold
            )));
        }
        out[k] = *cfg;
    }
    for key in req.criteria.keys().filter(|k| !CRITERIA.contains(&k.as_str())) {
        notes.push(format!("criterion '{key}' is not one this agent scores; ignored"));
    }
    if !req.gate.is_finite() {
        return Err(AgentError::Permanent(format!("semantic QA: the gate {} is not a number", req.gate)));
    }
    Ok(out)
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Linear ramp: 0 at `lo`, 1 at `hi` (either order), clamped.
fn ramp(v: f64, lo: f64, hi: f64) -> f64 {
    ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
}

// ---------------------------------------------------------------------------------------------
// Keyframe decoding and measurement
// ---------------------------------------------------------------------------------------------

/// A decoded keyframe as packed 8-bit RGB (alpha, if any, composited over black).
struct Frame {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Frame {
    fn px(&self, x: usize, y: usize) -> [u8; 3] {
        let o = (y * self.width + x) * 3;
        [self.rgb[o], self.rgb[o + 1], self.rgb[o + 2]]
    }
}

fn load_keyframe(path: &Path) -> Result<Frame, AgentError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        AgentError::Permanent(format!("semantic QA: keyframe {} {what}: {e}", path.display()))
    };
    let file = File::open(path).map_err(|e| bad("cannot be opened", &e))?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| bad("is not a readable PNG", &e))?;
    let size = reader.output_buffer_size().ok_or_else(|| bad("is too large to decode", &"size overflow"))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| bad("cannot be decoded", &e))?;
    let (width, height) = (info.width as usize, info.height as usize);
    if width == 0 || height == 0 {
        return Err(bad("is empty", &format!("{width}×{height}")));
    }
    if info.bit_depth != png::BitDepth::Eight {
        return Err(bad("has an unsupported bit depth", &format!("{:?}", info.bit_depth)));
    }
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        other => return Err(bad("has an unsupported colour type", &format!("{other:?}"))),
    };
    if info.line_size < width * channels || buf.len() < info.line_size * (height - 1) + width * channels {
        return Err(bad("decoded to a short buffer", &format!("{} bytes", buf.len())));
    }
    let mut rgb = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        let row = &buf[y * info.line_size..y * info.line_size + width * channels];
        for p in row.chunks_exact(channels) {
            let over_black = |c: u8, a: u8| ((c as u16 * a as u16 + 127) / 255) as u8;
            match channels {
                3 => rgb.extend_from_slice(p),
                4 => rgb.extend_from_slice(&[over_black(p[0], p[3]), over_black(p[1], p[3]), over_black(p[2], p[3])]),
                1 => rgb.extend_from_slice(&[p[0], p[0], p[0]]),
                _ => {
                    let g = over_black(p[0], p[1]);
                    rgb.extend_from_slice(&[g, g, g]);
                }
            }
        }
    }
    Ok(Frame { width, height, rgb })
}

/// sRGB 8-bit → linear light, as WCAG's relative luminance defines it.
fn linear(c: u8) -> f64 {
    static LUT: OnceLock<[f64; 256]> = OnceLock::new();
    LUT.get_or_init(|| {
        let mut t = [0.0; 256];
        for (i, v) in t.iter_mut().enumerate() {
            let c = i as f64 / 255.0;
            *v = if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) };
        }
        t
    })[c as usize]
}

/// WCAG relative luminance of a pixel (same as [`Rgb::luminance`], table-driven).
fn rel_luminance(p: [u8; 3]) -> f64 {
    0.2126 * linear(p[0]) + 0.7152 * linear(p[1]) + 0.0722 * linear(p[2])
}

/// Perceived brightness: Rec. 709 luma of the gamma-encoded values, 0–1.
fn luma(p: [u8; 3]) -> f64 {
    (0.2126 * p[0] as f64 + 0.7152 * p[1] as f64 + 0.0722 * p[2] as f64) / 255.0
}

/// A rectangle of pixels, half-open: `x0..x1` × `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
struct Region {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
}

impl Region {
    /// From fractional bounds, clamped to a `w`×`h` frame; `None` when under 2×2 pixels.
    fn clamped(x0: f64, y0: f64, x1: f64, y1: f64, w: usize, h: usize) -> Option<Region> {
        let cx = |v: f64| v.round().clamp(0.0, w as f64) as usize;
        let cy = |v: f64| v.round().clamp(0.0, h as f64) as usize;
        let r = Region { x0: cx(x0), y0: cy(y0), x1: cx(x1), y1: cy(y1) };
        (r.x1 >= r.x0 + 2 && r.y1 >= r.y0 + 2).then_some(r)
    }
}

/// Characters set about one em wide (CJK ideographs, kana, Hangul, full-width forms).
fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF |
        0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 |
        0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD)
}

/// Where to look for the caption box, from the plan's typography and the renderer's layout
/// rules: font size (= line height) = `size` × short side, box = lines × line height + 0.35
/// line height of padding on every side, centred horizontally; `Bottom` puts the box's lower
/// edge on the bottom safe margin, `Center` centres it.
///
/// Text width is only estimated (0.4–0.6 line heights per narrow character, 0.5–1.0 per wide
/// one, where real fonts measure about 0.44 and 0.5–0.9), so the box is not trusted to that
/// estimate: the agent searches a `window` sized for the wide bound, anchored on a `reference`
/// patch that is box whatever the text width (the bottom padding strip for `Bottom`, the centre
/// for `Center`), with `core` columns that lie inside the box for the narrow bound.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CaptionGeometry {
    window: Region,
    core: Region,
    reference: Region,
    /// Whether the reference patch holds no text (the bottom padding strip).
    reference_is_pure_box: bool,
}

fn caption_geometry(caption: &str, t: &Typography, w: usize, h: usize) -> Option<CaptionGeometry> {
    if caption.trim().is_empty() {
        return None;
    }
    let (wf, hf) = (w as f64, h as f64);
    let margin = (t.safe_margin as f64).clamp(0.0, 0.45);
    let px = (t.size.max(0.0) as f64 * wf.min(hf)).max(8.0);
    let pad = px * 0.35;
    let avail = (wf * (1.0 - 2.0 * margin) - 2.0 * pad).max(px);
    let chars = caption.chars().filter(|c| !c.is_control());
    let (lo, hi) =
        chars.fold((0.0, 0.0), |(lo, hi), c| if is_wide(c) { (lo + 0.5, hi + 1.0) } else { (lo + 0.4, hi + 0.6) });
    // Greedy word wrap leaves slack at line ends: allow for lines 15 % short of the width.
    let lines_hi = (hi * px / (avail * 0.85)).ceil().clamp(1.0, t.max_lines.max(1) as f64);
    let box_h_hi = lines_hi * px + 2.0 * pad;
    let box_w_hi = (hi * px).min(avail) + 2.0 * pad;
    let core_half = ((lo * px).min(avail) * 0.45).max(pad);
    let cx = wf / 2.0;
    let (bottom, top, ref_y0, ref_y1, pure) = match t.position {
        CaptionPosition::Bottom => {
            let b = (hf * (1.0 - margin)).round();
            (b, b - box_h_hi, b - 0.65 * pad, b - 0.2 * pad, true)
        }
        CaptionPosition::Center => {
            let c = hf / 2.0;
            (c + box_h_hi / 2.0, c - box_h_hi / 2.0, c - (0.1 * px).max(1.0), c + (0.1 * px).max(1.0), false)
        }
    };
    Some(CaptionGeometry {
        window: Region::clamped(cx - box_w_hi / 2.0, top, cx + box_w_hi / 2.0, bottom, w, h)?,
        core: Region::clamped(cx - core_half, top, cx + core_half, bottom, w, h)?,
        reference: Region::clamped(cx - pad, ref_y0, cx + pad, ref_y1.max(ref_y0 + 2.0), w, h)?,
        reference_is_pure_box: pure,
    })
}

/// The caption's measured legibility.
#[derive(Debug, Clone, Serialize)]
struct CaptionMeasure {
    /// Where the box was found (what the percentiles were taken over).
    region: Region,
    /// Whether the plan sets light text on a darker box (text = high percentile).
    light_text: bool,
    /// Relative luminance of the box measured at the reference patch.
    box_luminance: f64,
    /// Relative luminance at the 3rd, 30th, 70th and 97th percentiles of the region.
    percentiles: [f64; 4],
    /// WCAG contrast between the text percentile and the box percentile.
    contrast: f64,
    /// The contrast the plan intends (text colour against the box blended over the background).
    planned_contrast: f64,
}

/// Everything measured on one keyframe.
struct FrameMeasure {
    /// Mean Rec. 709 luma, 0–1.
    mean_luma: f64,
    /// Its standard deviation.
    luma_sd: f64,
    /// Mean colourfulness (max − min channel), 0–1.
    chroma: f64,
    /// Mean (R − B) / 255: > 0 warm bias, < 0 cool bias.
    warmth: f64,
    /// Quantised colour histogram: (5-bit-per-channel bin, sample count).
    histogram: Vec<(u16, u32)>,
    /// Total samples in the histogram.
    samples: u32,
    /// The caption's measured contrast; `None` for a scene without caption.
    caption: Option<CaptionMeasure>,
}

impl FrameMeasure {
    fn measure(frame: &Frame, caption: &str, typo: &Typography) -> FrameMeasure {
        let mut bins = vec![0u32; 1 << 15];
        let (mut n, mut sum, mut sum2, mut chroma, mut warmth) = (0u32, 0.0, 0.0, 0.0, 0.0);
        for y in (SAMPLE_STEP / 2..frame.height).step_by(SAMPLE_STEP) {
            for x in (SAMPLE_STEP / 2..frame.width).step_by(SAMPLE_STEP) {
                let p = frame.px(x, y);
                let l = luma(p);
                sum += l;
                sum2 += l * l;
                let (mx, mn) = (p[0].max(p[1]).max(p[2]), p[0].min(p[1]).min(p[2]));
                chroma += (mx - mn) as f64 / 255.0;
                warmth += (p[0] as f64 - p[2] as f64) / 255.0;
                bins[((p[0] as usize >> 3) << 10) | ((p[1] as usize >> 3) << 5) | (p[2] as usize >> 3)] += 1;
                n += 1;
            }
        }
        if n == 0 {
            // Frames smaller than the grid: take the single centre pixel.
            let p = frame.px(frame.width / 2, frame.height / 2);
            let l = luma(p);
            sum = l;
            sum2 = l * l;
            chroma = (p[0].max(p[1]).max(p[2]) - p[0].min(p[1]).min(p[2])) as f64 / 255.0;
            warmth = (p[0] as f64 - p[2] as f64) / 255.0;
            bins[((p[0] as usize >> 3) << 10) | ((p[1] as usize >> 3) << 5) | (p[2] as usize >> 3)] += 1;
            n = 1;
        }
        let nf = n as f64;
        let mean_luma = sum / nf;
        let luma_sd = (sum2 / nf - mean_luma * mean_luma).max(0.0).sqrt();
        let histogram = bins.iter().enumerate().filter(|(_, c)| **c > 0).map(|(b, c)| (b as u16, *c)).collect();
        FrameMeasure {
            mean_luma,
            luma_sd,
            chroma: chroma / nf,
            warmth: warmth / nf,
            histogram,
            samples: n,
            caption: measure_caption(frame, caption, typo),
        }
    }
}

/// WCAG-style ratio of two luminances, ≥ 1.
fn lum_ratio(a: f64, b: f64) -> f64 {
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

/// Rows and columns whose box-level luminance differs from the box's by more than this ratio
/// are background, and are trimmed off the search window.
const BOX_MATCH: f64 = 1.2;

/// The `q`-quantile of `v` (sorted in place); `v` must not be empty.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Finds the caption box and measures the contrast of the text on it.
///
/// The box's luminance is read at the reference patch (the median of the text-free padding
/// strip, or the box-side quantile at the centre). The search window is then trimmed from the
/// outside in: rows whose box-side quantile over the core columns differs from the box by more
/// than [`BOX_MATCH`], then columns likewise over the remaining rows — what is left is the box.
/// The text is the minority there, so its luminance is read at the 97th percentile (light
/// text) or the 3rd (dark text), the box's at the 30th or 70th; their WCAG ratio is the
/// measured contrast. Text polarity comes from the plan: the text colour against the box
/// blended over the pixels just above the window.
fn measure_caption(frame: &Frame, caption: &str, typo: &Typography) -> Option<CaptionMeasure> {
    let g = caption_geometry(caption, typo, frame.width, frame.height)?;
    let lum = |x: usize, y: usize| rel_luminance(frame.px(x, y));
    let behind = mean_above(frame, g.window);
    let under = behind.mix(typo.box_color, typo.box_alpha);
    let light_text = typo.color.luminance() >= under.luminance();
    let q = if light_text { 0.30 } else { 0.70 };

    let mut patch: Vec<f64> = Vec::new();
    for y in g.reference.y0..g.reference.y1 {
        patch.extend((g.reference.x0..g.reference.x1).map(|x| lum(x, y)));
    }
    let box_lum = quantile(&mut patch, if g.reference_is_pure_box { 0.5 } else { q });
    let is_box = |v: f64| lum_ratio(v, box_lum) <= BOX_MATCH;

    let row_value = |y: usize| {
        let mut v: Vec<f64> = (g.core.x0..g.core.x1).step_by(2).map(|x| lum(x, y)).collect();
        quantile(&mut v, q)
    };
    let (mut y0, mut y1) = (g.window.y0, g.window.y1);
    while y0 < y1 && !is_box(row_value(y0)) {
        y0 += 1;
    }
    while y1 > y0 && !is_box(row_value(y1 - 1)) {
        y1 -= 1;
    }
    if y1 < y0 + 2 {
        (y0, y1) = (g.reference.y0, g.reference.y1);
    }
    let col_value = |x: usize| {
        let mut v: Vec<f64> = (y0..y1).step_by(2).map(|y| lum(x, y)).collect();
        quantile(&mut v, q)
    };
    let (mut x0, mut x1) = (g.window.x0, g.window.x1);
    while x0 < x1 && !is_box(col_value(x0)) {
        x0 += 1;
    }
    while x1 > x0 && !is_box(col_value(x1 - 1)) {
        x1 -= 1;
    }
    if x1 < x0 + 2 {
        (x0, x1) = (g.reference.x0, g.reference.x1);
    }
    let region = Region { x0, y0, x1, y1 };

    let mut values: Vec<f64> = Vec::with_capacity((x1 - x0) * (y1 - y0));
    for y in y0..y1 {
        values.extend((x0..x1).map(|x| lum(x, y)));
    }
    values.sort_by(f64::total_cmp);
    let pct = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
    let percentiles = [pct(0.03), pct(0.30), pct(0.70), pct(0.97)];
    let contrast =
        if light_text { lum_ratio(percentiles[3], percentiles[1]) } else { lum_ratio(percentiles[2], percentiles[0]) };
    Some(CaptionMeasure {
        region,
        light_text,
        box_luminance: box_lum,
        percentiles,
        contrast,
        planned_contrast: typo.color.contrast(under),
    })
}

/// Mean colour of a strip just above `r` (what the caption box sits on), as tall as `r` or as
/// the frame allows; `r` itself when it touches the top of the frame.
fn mean_above(frame: &Frame, r: Region) -> Rgb {
    let strip = (r.y1 - r.y0).min(r.y0);
    let (y0, y1) = if strip >= 1 { (r.y0 - strip, r.y0) } else { (r.y0, r.y1) };
    let mut acc = [0u64; 3];
    let mut n = 0u64;
    for y in (y0..y1).step_by(2) {
        for x in (r.x0..r.x1).step_by(2) {
            let p = frame.px(x, y);
            for (a, c) in acc.iter_mut().zip(p) {
                *a += c as u64;
            }
            n += 1;
        }
    }
    let n = n.max(1);
    Rgb((acc[0] / n) as u8, (acc[1] / n) as u8, (acc[2] / n) as u8)
}

// ---------------------------------------------------------------------------------------------
// visualQuality
// ---------------------------------------------------------------------------------------------

type Criterion = (f64, Vec<f64>, String, serde_json::Value);

/// Per scene: `variation × exposure × (0.4 + 0.6 × contrast)` (just `variation × exposure`
/// without a caption), where each part ramps linearly between the constants above. The
/// criterion is `0.5 · mean + 0.5 · min` over scenes: a video is only as legible as its worst
/// caption.
fn visual_quality(req: &SemanticRequest, frames: &[FrameMeasure], scenes: &mut [SceneScore]) -> Criterion {
    let mut per_scene = Vec::with_capacity(frames.len());
    let mut details = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let variation = ramp(f.luma_sd, BLANK_SD, VARIED_SD);
        let exposure = if f.mean_luma < EXPOSURE_OK.0 {
            ramp(f.mean_luma, EXPOSURE_LIMIT.0, EXPOSURE_OK.0)
        } else if f.mean_luma > EXPOSURE_OK.1 {
            ramp(f.mean_luma, EXPOSURE_LIMIT.1, EXPOSURE_OK.1)
        } else {
            1.0
        };
        let contrast_score = f.caption.as_ref().map(|c| ramp(c.contrast, CONTRAST_UNREADABLE, CONTRAST_GOOD));
        let score = variation * exposure * contrast_score.map_or(1.0, |c| 0.4 + 0.6 * c);
        per_scene.push(score);

        let scene = &mut scenes[i];
        if f.luma_sd < 2.0 * BLANK_SD {
            scene.issues.push(format!("keyframe is blank (luma std-dev {:.3})", f.luma_sd));
            scene
                .suggestions
                .push(format!("check the render of scene {i}: no background gradient, shapes or caption are visible"));
        }
        if f.mean_luma < EXPOSURE_OK.0 {
            scene.issues.push(format!("keyframe is nearly black (mean luma {:.3})", f.mean_luma));
            scene.suggestions.push("lighten the background gradient or check that the scene was drawn".into());
        } else if f.mean_luma > EXPOSURE_OK.1 {
            scene.issues.push(format!("keyframe is washed out (mean luma {:.3})", f.mean_luma));
            scene.suggestions.push("darken the background gradient so shapes and caption stand out".into());
        }
        if let Some(c) = &f.caption
            && c.contrast < CONTRAST_GOOD
        {
            scene.issues.push(format!("caption contrast {:.1}:1 below {CONTRAST_GOOD}:1", c.contrast));
            let typo = &req.plan.scenes[i].typography;
            scene.suggestions.push(if c.light_text {
                format!(
                    "darken the caption box or raise its opacity (box {} at {:.2}), or set the text lighter",
                    typo.box_color, typo.box_alpha
                )
            } else {
                format!(
                    "lighten the caption box or raise its opacity (box {} at {:.2}), or set the text darker",
                    typo.box_color, typo.box_alpha
                )
            });
        }
        details.push(json!({
            "scene": i,
            "score": round4(score),
            "mean_luma": round4(f.mean_luma),
            "luma_sd": round4(f.luma_sd),
            "variation": round4(variation),
            "exposure": round4(exposure),
            "caption": f.caption.as_ref().map(|c| json!({
                "contrast": round2(c.contrast),
                "planned_contrast": round2(c.planned_contrast),
                "contrast_score": round4(ramp(c.contrast, CONTRAST_UNREADABLE, CONTRAST_GOOD)),
                "light_text": c.light_text,
                "box_luminance": round4(c.box_luminance),
                "luminance_p3_p30_p70_p97": c.percentiles.map(round4),
                "region": c.region,
            })),
        }));
    }
    let mean = per_scene.iter().sum::<f64>() / per_scene.len() as f64;
    let min = per_scene.iter().cloned().fold(f64::INFINITY, f64::min);
    let score = 0.5 * mean + 0.5 * min;
    let method = format!(
        "per keyframe: luma spread (blank < {BLANK_SD}), mean luma in {:.2}–{:.2}, and WCAG contrast between the 97th/3rd and \
         30th/70th luminance percentiles inside the caption box found where the plan's typography puts it; \
         0.5·mean + 0.5·worst scene",
        EXPOSURE_OK.0, EXPOSURE_OK.1
    );
    (score, per_scene, method, json!({ "mean": round4(mean), "worst": round4(min), "scenes": details }))
}

// ---------------------------------------------------------------------------------------------
// styleCoherence
// ---------------------------------------------------------------------------------------------

type V3 = [f64; 3];

fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn add_scaled(a: V3, d: V3, t: f64) -> V3 {
    [a[0] + d[0] * t, a[1] + d[1] * t, a[2] + d[2] * t]
}
fn dist(a: V3, b: V3) -> f64 {
    dot(sub(a, b), sub(a, b)).sqrt()
}

/// Closest point on triangle `abc` to `p` (Ericson, Real-Time Collision Detection §5.1.5).
fn closest_on_triangle(p: V3, a: V3, b: V3, c: V3) -> V3 {
    let (ab, ac, ap) = (sub(b, a), sub(c, a), sub(p, a));
    let (d1, d2) = (dot(ab, ap), dot(ac, ap));
    if d1 <= 0.0 && d2 <= 0.0 {
        return a;
    }
    let bp = sub(p, b);
    let (d3, d4) = (dot(ab, bp), dot(ac, bp));
    if d3 >= 0.0 && d4 <= d3 {
        return b;
    }
    let vc = d1 * d4 - d3 * d2;
    if vc <= 0.0 && d1 >= 0.0 && d3 <= 0.0 {
        return add_scaled(a, ab, d1 / (d1 - d3));
    }
    let cp = sub(p, c);
    let (d5, d6) = (dot(ab, cp), dot(ac, cp));
    if d6 >= 0.0 && d5 <= d6 {
        return c;
    }
    let vb = d5 * d2 - d1 * d6;
    if vb <= 0.0 && d2 >= 0.0 && d6 <= 0.0 {
        return add_scaled(a, ac, d2 / (d2 - d6));
    }
    let va = d3 * d6 - d5 * d4;
    if va <= 0.0 && (d4 - d3) >= 0.0 && (d5 - d6) >= 0.0 {
        return add_scaled(b, sub(c, b), (d4 - d3) / ((d4 - d3) + (d5 - d6)));
    }
    let denom = 1.0 / (va + vb + vc);
    add_scaled(add_scaled(a, ab, vb * denom), ac, vc * denom)
}

fn closest_on_segment(p: V3, a: V3, b: V3) -> V3 {
    let ab = sub(b, a);
    let len2 = dot(ab, ab);
    if len2 <= f64::EPSILON {
        return a;
    }
    add_scaled(a, ab, (dot(sub(p, a), ab) / len2).clamp(0.0, 1.0))
}

/// The colours a render in this palette may legitimately show: every palette colour, black and
/// white (shading, caption text), and the tint the lighting word applies in the translator
/// (warm/golden → #ffaa5a, cold/blue → #466ebe); mixes of any two or three of them (gradients
/// and translucent shapes) are on-palette too.
struct PaletteGamut {
    refs: Vec<V3>,
    triangles: Vec<[V3; 3]>,
}

impl PaletteGamut {
    fn new(palette: &[Rgb], lighting: &str) -> PaletteGamut {
        let v = |c: Rgb| [c.0 as f64, c.1 as f64, c.2 as f64];
        let mut refs: Vec<V3> = palette.iter().map(|c| v(*c)).collect();
        refs.push([0.0; 3]);
        refs.push([255.0; 3]);
        let lighting = lighting.to_lowercase();
        if lighting.contains("warm") || lighting.contains("golden") {
            refs.push(v(Rgb(255, 170, 90)));
        } else if lighting.contains("cold") || lighting.contains("blue") {
            refs.push(v(Rgb(70, 110, 190)));
        }
        refs.dedup();
        let mut triangles = Vec::new();
        for i in 0..refs.len() {
            for j in i + 1..refs.len() {
                for k in j + 1..refs.len() {
                    let (ab, ac) = (sub(refs[j], refs[i]), sub(refs[k], refs[i]));
                    let cross =
                        [ab[1] * ac[2] - ab[2] * ac[1], ab[2] * ac[0] - ab[0] * ac[2], ab[0] * ac[1] - ab[1] * ac[0]];
                    if dot(cross, cross) > 1.0 {
                        triangles.push([refs[i], refs[j], refs[k]]);
                    }
                }
            }
        }
        PaletteGamut { refs, triangles }
    }

    /// RGB distance from `p` to the nearest allowed mix.
    fn distance(&self, p: V3) -> f64 {
        let mut best = f64::INFINITY;
        for i in 0..self.refs.len() {
            for j in i + 1..self.refs.len() {
                best = best.min(dist(p, closest_on_segment(p, self.refs[i], self.refs[j])));
            }
        }
        for t in &self.triangles {
            best = best.min(dist(p, closest_on_triangle(p, t[0], t[1], t[2])));
        }
        if self.refs.len() == 1 { dist(p, self.refs[0]) } else { best }
    }

    /// Sample-weighted mean distance over a keyframe's colour histogram (bin centres).
    fn mean_distance(&self, f: &FrameMeasure) -> f64 {
        let centre = |q: u16| (q as f64) * 8.0 + 3.5;
        let total: f64 = f
            .histogram
            .iter()
            .map(|&(bin, count)| {
                let p = [centre(bin >> 10), centre((bin >> 5) & 31), centre(bin & 31)];
                self.distance(p) * count as f64
            })
            .sum();
        total / f.samples.max(1) as f64
    }
}

/// Palette adherence per scene = 1 − mean distance / [`PALETTE_DISTANCE_SCALE`]; consistency =
/// 1 − std-dev of the per-scene distances / [`PALETTE_SPREAD_SCALE`]; the criterion is
/// `0.75 · mean adherence + 0.25 · consistency`.
fn style_coherence(
    req: &SemanticRequest,
    frames: &[FrameMeasure],
    cfg: &CriterionConfig,
    scenes: &mut [SceneScore],
    notes: &mut Vec<String>,
) -> Criterion {
    let markers = &req.manifest.markers;
    let gamut = PaletteGamut::new(&markers.palette, &markers.lighting);
    let distances: Vec<f64> = frames.iter().map(|f| gamut.mean_distance(f)).collect();
    let adherence: Vec<f64> = distances.iter().map(|d| (1.0 - d / PALETTE_DISTANCE_SCALE).clamp(0.0, 1.0)).collect();
    let n = distances.len() as f64;
    let mean_d = distances.iter().sum::<f64>() / n;
    let spread = (distances.iter().map(|d| (d - mean_d).powi(2)).sum::<f64>() / n).sqrt();
    let consistency = (1.0 - spread / PALETTE_SPREAD_SCALE).clamp(0.0, 1.0);
    let mean_adherence = adherence.iter().sum::<f64>() / n;
    let score = 0.75 * mean_adherence + 0.25 * consistency;

    let palette_list = markers.palette.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");
    for (i, a) in adherence.iter().enumerate() {
        if *a < cfg.threshold {
            scenes[i].issues.push(format!(
                "colours drift off the palette (mean distance {:.0} RGB units to the nearest palette mix)",
                distances[i]
            ));
            scenes[i]
                .suggestions
                .push(format!("recolour scene {i}'s background and shapes from the palette ({palette_list})"));
        }
    }
    if frames.len() > 1
        && let Some((worst, d)) = distances.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))
        && *d > mean_d + spread.max(4.0) * 0.5
        && adherence[worst] < cfg.threshold.max(0.8)
    {
        notes.push(format!(
            "scene {worst} is the furthest off-palette ({d:.0} RGB units vs {mean_d:.0} on average); recolour it from the palette"
        ));
    }
    let method = format!(
        "RGB distance of every {SAMPLE_STEP}th pixel to the nearest mix of the palette with black, white and the lighting tint \
         (1 − mean/{PALETTE_DISTANCE_SCALE:.0}), plus consistency of that distance across scenes; 0.75·adherence + 0.25·consistency"
    );
    let detail = json!({
        "palette": markers.palette,
        "lighting": markers.lighting,
        "mean_distance_per_scene": distances.iter().map(|d| round2(*d)).collect::<Vec<_>>(),
        "adherence_per_scene": adherence.iter().map(|a| round4(*a)).collect::<Vec<_>>(),
        "mean_adherence": round4(mean_adherence),
        "distance_spread": round2(spread),
        "consistency": round4(consistency),
    });
    (score, adherence, method, detail)
}

// ---------------------------------------------------------------------------------------------
// emotionalSync
// ---------------------------------------------------------------------------------------------

/// What a mood should look and sound like. Ranges are inclusive; outside them a signal's score
/// falls linearly to 0 over [`MoodBand::TOLERANCE`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MoodBand {
    /// The mood word, as the planner writes it.
    pub mood: &'static str,
    /// Mean Rec. 709 luma of the keyframes, 0–1.
    pub brightness: (f64, f64),
    /// Mean colourfulness (max − min channel) of the keyframes, 0–1.
    pub chroma: (f64, f64),
    /// Mean (R − B)/255 of the keyframes: > 0 warm, < 0 cool.
    pub warmth: (f64, f64),
    /// Music tempo in BPM (the translator's table ± its neighbours).
    pub tempo_bpm: (f64, f64),
    /// Music energy, 0–1.
    pub energy: (f64, f64),
}

impl MoodBand {
    /// How far outside each range (brightness, chroma, warmth, tempo, energy) a value may be
    /// before its score reaches 0.
    pub const TOLERANCE: [f64; 5] = [0.25, 0.2, 0.2, 25.0, 0.3];
}

/// The expected look and sound per mood.
///
/// | mood         | brightness | colourfulness | warmth (R−B)   | tempo BPM | energy    |
/// |--------------|-----------:|--------------:|---------------:|----------:|----------:|
/// | calm         | 0.25–0.75  | 0.00–0.35     | any            | 55–85     | 0.00–0.35 |
/// | energetic    | 0.20–0.85  | 0.25–1.00     | any            | 110–150   | 0.70–1.00 |
/// | warm         | 0.25–0.80  | 0.10–0.50     | ≥ 0.05 (R > B) | 75–100    | 0.25–0.55 |
/// | dramatic     | 0.00–0.40  | 0.00–0.45     | any            | 80–110    | 0.55–0.85 |
/// | melancholic  | 0.10–0.50  | 0.00–0.25     | ≤ 0.00 (B ≥ R) | 50–75     | 0.00–0.30 |
/// | cold         | 0.10–0.60  | 0.00–0.35     | ≤ −0.02 (B > R)| 50–100    | 0.00–0.50 |
/// | educational  | 0.30–0.85  | 0.05–0.45     | any            | 90–115    | 0.35–0.65 |
/// | hopeful      | 0.30–0.85  | 0.10–0.50     | any            | 85–110    | 0.35–0.65 |
/// | serious      | 0.15–0.65  | 0.00–0.55     | any            | 85–110    | 0.35–0.65 |
/// | (other)      | 0.15–0.85  | 0.00–0.60     | any            | 80–115    | 0.30–0.70 |
///
/// The tempo and energy ranges bracket what the VisualTranslator's mood → music table picks;
/// the visual ranges bracket the planner's palettes for the mood (a dark, muted palette for
/// melancholic, a saturated one for energetic, …).
#[rustfmt::skip]
pub const MOOD_BANDS: [MoodBand; 9] = [
    MoodBand { mood: "calm", brightness: (0.25, 0.75), chroma: (0.0, 0.35), warmth: (-1.0, 1.0), tempo_bpm: (55.0, 85.0), energy: (0.0, 0.35) },
    MoodBand { mood: "energetic", brightness: (0.2, 0.85), chroma: (0.25, 1.0), warmth: (-1.0, 1.0), tempo_bpm: (110.0, 150.0), energy: (0.7, 1.0) },
    MoodBand { mood: "warm", brightness: (0.25, 0.8), chroma: (0.1, 0.5), warmth: (0.05, 1.0), tempo_bpm: (75.0, 100.0), energy: (0.25, 0.55) },
    MoodBand { mood: "dramatic", brightness: (0.0, 0.4), chroma: (0.0, 0.45), warmth: (-1.0, 1.0), tempo_bpm: (80.0, 110.0), energy: (0.55, 0.85) },
    MoodBand { mood: "melancholic", brightness: (0.1, 0.5), chroma: (0.0, 0.25), warmth: (-1.0, 0.0), tempo_bpm: (50.0, 75.0), energy: (0.0, 0.3) },
    MoodBand { mood: "cold", brightness: (0.1, 0.6), chroma: (0.0, 0.35), warmth: (-1.0, -0.02), tempo_bpm: (50.0, 100.0), energy: (0.0, 0.5) },
    MoodBand { mood: "educational", brightness: (0.3, 0.85), chroma: (0.05, 0.45), warmth: (-1.0, 1.0), tempo_bpm: (90.0, 115.0), energy: (0.35, 0.65) },
    MoodBand { mood: "hopeful", brightness: (0.3, 0.85), chroma: (0.1, 0.5), warmth: (-1.0, 1.0), tempo_bpm: (85.0, 110.0), energy: (0.35, 0.65) },
    MoodBand { mood: "serious", brightness: (0.15, 0.65), chroma: (0.0, 0.55), warmth: (-1.0, 1.0), tempo_bpm: (85.0, 110.0), energy: (0.35, 0.65) },
];

/// The band used for a mood word not in [`MOOD_BANDS`].
pub const NEUTRAL_BAND: MoodBand = MoodBand {
    mood: "neutral",
    brightness: (0.15, 0.85),
    chroma: (0.0, 0.6),
    warmth: (-1.0, 1.0),
    tempo_bpm: (80.0, 115.0),
    energy: (0.3, 0.7),
};

/// The band for a mood word (case-insensitive), and whether it was known.
pub fn mood_band(mood: &str) -> (MoodBand, bool) {
    let m = mood.trim().to_lowercase();
    match MOOD_BANDS.iter().find(|b| b.mood == m) {
        Some(b) => (*b, true),
        None => (NEUTRAL_BAND, false),
    }
}

/// 1 inside `range`, falling linearly to 0 at `tol` outside it.
fn band_score(v: f64, range: (f64, f64), tol: f64) -> f64 {
    let off = if v < range.0 {
        range.0 - v
    } else if v > range.1 {
        v - range.1
    } else {
        0.0
    };
    (1.0 - off / tol).clamp(0.0, 1.0)
}

/// Scores of brightness, chroma and warmth against a band.
fn look_scores(b: &MoodBand, brightness: f64, chroma: f64, warmth: f64) -> [f64; 3] {
    let t = MoodBand::TOLERANCE;
    [band_score(brightness, b.brightness, t[0]), band_score(chroma, b.chroma, t[1]), band_score(warmth, b.warmth, t[2])]
}

/// Visual mood match = 0.5 · (whole video vs the markers' mood) + 0.5 · (mean of each scene vs
/// its own mood), each the mean of the brightness, colourfulness and warmth scores; audio match
/// = mean of the tempo and energy scores of the plan's music bed vs the markers' mood; the
/// criterion is `0.6 · visual + 0.4 · audio`.
fn emotional_sync(
    req: &SemanticRequest,
    frames: &[FrameMeasure],
    scenes: &mut [SceneScore],
    notes: &mut Vec<String>,
) -> Criterion {
    let n = frames.len() as f64;
    let (overall_band, known) = mood_band(&req.manifest.markers.mood);
    if !known {
        notes.push(format!(
            "mood '{}' has no band of its own; emotionalSync used the neutral band",
            req.manifest.markers.mood
        ));
    }
    let avg = |f: fn(&FrameMeasure) -> f64| frames.iter().map(f).sum::<f64>() / n;
    let (brightness, chroma, warmth) = (avg(|f| f.mean_luma), avg(|f| f.chroma), avg(|f| f.warmth));
    let overall = look_scores(&overall_band, brightness, chroma, warmth);
    let overall_visual = overall.iter().sum::<f64>() / 3.0;

    let mut per_scene = Vec::with_capacity(frames.len());
    let mut scene_detail = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let mood = &req.manifest.scenes[i].mood;
        let (band, _) = mood_band(mood);
        let s = look_scores(&band, f.mean_luma, f.chroma, f.warmth);
        per_scene.push(s.iter().sum::<f64>() / 3.0);
        let scene = &mut scenes[i];
        let fmt_range = |r: (f64, f64)| format!("{:.2}–{:.2}", r.0, r.1);
        if s[0] < 0.5 {
            let dark = f.mean_luma < band.brightness.0;
            scene.issues.push(format!(
                "looks too {} for a {mood} mood (brightness {:.2}, expected {})",
                if dark { "dark" } else { "bright" },
                f.mean_luma,
                fmt_range(band.brightness)
            ));
            scene
                .suggestions
                .push(format!("{} the background gradient to suit '{mood}'", if dark { "lighten" } else { "darken" }));
        }
        if s[1] < 0.5 {
            let dull = f.chroma < band.chroma.0;
            scene.issues.push(format!(
                "colours too {} for a {mood} mood (colourfulness {:.2}, expected {})",
                if dull { "muted" } else { "saturated" },
                f.chroma,
                fmt_range(band.chroma)
            ));
            scene.suggestions.push(if dull {
                format!("use more saturated accent colours for '{mood}'")
            } else {
                format!("desaturate the palette towards greys for '{mood}'")
            });
        }
        if s[2] < 0.5 {
            let cool = f.warmth < band.warmth.0;
            scene.issues.push(format!(
                "{} hue bias for a {mood} mood (R−B {:+.2}, expected {})",
                if cool { "cool" } else { "warm" },
                f.warmth,
                fmt_range(band.warmth)
            ));
            scene.suggestions.push(format!(
                "shift the palette towards {} tones for '{mood}'",
                if cool { "warmer (red/orange)" } else { "cooler (blue)" }
            ));
        }
        scene_detail.push(json!({
            "scene": i, "mood": mood,
            "brightness": round4(f.mean_luma), "chroma": round4(f.chroma), "warmth": round4(f.warmth),
            "scores": s.map(round4),
        }));
    }
    let scene_visual = per_scene.iter().sum::<f64>() / n;
    let visual = 0.5 * overall_visual + 0.5 * scene_visual;

    let t = MoodBand::TOLERANCE;
    let audio = &req.plan.audio;
    let tempo = band_score(audio.tempo_bpm as f64, overall_band.tempo_bpm, t[3]);
    let energy = band_score(audio.energy as f64, overall_band.energy, t[4]);
    let audio_score = (tempo + energy) / 2.0;
    let mood = &req.manifest.markers.mood;
    if tempo < 1.0 {
        notes.push(format!(
            "music tempo {:.0} BPM is outside {:.0}–{:.0} expected for '{mood}'",
            audio.tempo_bpm, overall_band.tempo_bpm.0, overall_band.tempo_bpm.1
        ));
    }
    if energy < 1.0 {
        notes.push(format!(
            "music energy {:.2} is outside {:.2}–{:.2} expected for '{mood}'",
            audio.energy, overall_band.energy.0, overall_band.energy.1
        ));
    }
    let score = 0.6 * visual + 0.4 * audio_score;
    let method =
        "keyframe brightness, colourfulness and R−B warmth against the mood's band (whole video and per scene), \
                  and the plan's music tempo/energy against the same mood (table MOOD_BANDS); 0.6·look + 0.4·music"
            .to_owned();
    let detail = json!({
        "mood": mood,
        "band_known": known,
        "video": {
            "brightness": round4(brightness), "chroma": round4(chroma), "warmth": round4(warmth),
            "expected": {
                "brightness": overall_band.brightness, "chroma": overall_band.chroma, "warmth": overall_band.warmth,
            },
            "scores": overall.map(round4),
        },
        "scenes": scene_detail,
        "look": round4(visual),
        "music": {
            "tempo_bpm": audio.tempo_bpm, "energy": audio.energy,
            "expected_tempo_bpm": overall_band.tempo_bpm, "expected_energy": overall_band.energy,
            "tempo_score": round4(tempo), "energy_score": round4(energy),
        },
    });
    (score, per_scene, method, detail)
}

// ---------------------------------------------------------------------------------------------
// narrativeAdherence (lexical)
// ---------------------------------------------------------------------------------------------

/// Function words that carry no narrative content (English, plus the commonest French,
/// Spanish and German ones).
const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
    "does", "doing", "down", "during", "each", "even", "every", "few", "for", "from", "further", "get", "gets", "had",
    "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it",
    "its", "itself", "just", "let", "me", "more", "most", "my", "no", "nor", "not", "now", "of", "off", "on", "once",
    "one", "only", "or", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such",
    "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those", "through",
    "to", "too", "under", "until", "up", "us", "very", "was", "we", "were", "what", "when", "where", "which", "while",
    "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "le", "la", "les", "un", "une", "des", "du",
    "de", "et", "est", "en", "au", "aux", "pour", "par", "sur", "dans", "avec", "el", "los", "las", "y", "del", "con",
    "por", "para", "una", "der", "die", "das", "und", "ein", "eine", "mit", "von", "zu", "ist", "im", "den", "dem",
];

/// Words that describe the production rather than the story; left out of the brief's key words.
const PRODUCTION_WORDS: &[&str] = &[
    "video",
    "clip",
    "teaser",
    "trailer",
    "ad",
    "advert",
    "scene",
    "shot",
    "second",
    "sec",
    "minute",
    "min",
    "style",
    "palette",
    "tone",
    "mood",
    "caption",
    "subtitle",
    "format",
    "vertical",
    "landscape",
    "square",
];

/// Scripts written without spaces between words: tokenised as character bigrams.
fn is_unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF | 0x1000..=0x109F | 0x1780..=0x17FF | 0x3040..=0x30FF | 0x31F0..=0x31FF |
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xFF66..=0xFF9F | 0x20000..=0x3FFFD)
}

/// Strip a simple English plural: -ies → -y, -sses/-xes/-ches/-shes → drop -es, -s → drop.
fn singular(w: &str) -> String {
    let n = w.chars().count();
    if n > 4 && w.ends_with("ies") {
        return format!("{}y", &w[..w.len() - 3]);
    }
    if n > 4 && ["sses", "xes", "zes", "ches", "shes"].iter().any(|s| w.ends_with(s)) {
        return w[..w.len() - 2].to_owned();
    }
    if n > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return w[..w.len() - 1].to_owned();
    }
    w.to_owned()
}

/// Content tokens of `text`: lowercase words without stopwords (and without production words
/// when `content_only`), plurals stripped; runs of an unspaced script become character bigrams.
fn tokens(text: &str, content_only: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let lower = text.to_lowercase();
    for run in lower.split(|c: char| !(c.is_alphanumeric() || c == '-')).map(|r| r.trim_matches('-')) {
        if run.is_empty() {
            continue;
        }
        if run.chars().any(is_unspaced) {
            let chars: Vec<char> = run.chars().collect();
            if chars.len() == 1 {
                out.insert(chars[0].to_string());
            }
            for w in chars.windows(2) {
                out.insert(w.iter().collect());
            }
            continue;
        }
        // Hyphenated words count as their parts ("15-second" → "15", "second").
        for part in run.split('-').filter(|p| !p.is_empty()) {
            if part.chars().count() < 2 || STOPWORDS.contains(&part) {
                continue;
            }
            let w = singular(part);
            if content_only && (PRODUCTION_WORDS.contains(&w.as_str()) || PRODUCTION_WORDS.contains(&part)) {
                continue;
            }
            out.insert(w);
        }
    }
    out
}

/// Recall of the brief's key words in captions + descriptions, and each caption's share of
/// key words found in the brief; the criterion is `0.5 · recall + 0.5 · mean caption overlap`.
/// Key words come from the brief's content: its direction ("a calm teaser", "cold blue
/// palette") is how to make the video, never something a caption should repeat.
fn narrative_adherence(req: &SemanticRequest, scenes: &mut [SceneScore]) -> Criterion {
    let content = crate::script::analyze(&req.brief, &req.manifest.language).content.text();
    let mut brief_keys = tokens(if content.trim().is_empty() { &req.brief } else { &content }, true);
    let mut fallback = false;
    if brief_keys.is_empty() {
        // A brief made only of function words: compare what is there.
        brief_keys = req.brief.to_lowercase().split_whitespace().map(str::to_owned).collect();
        fallback = true;
    }
    let mut covered_by: BTreeSet<String> = BTreeSet::new();
    for (i, s) in req.plan.scenes.iter().enumerate() {
        covered_by.extend(tokens(&s.caption, false));
        covered_by.extend(tokens(&req.manifest.scenes[i].description, false));
        if fallback {
            covered_by.extend(s.caption.to_lowercase().split_whitespace().map(str::to_owned));
            covered_by.extend(req.manifest.scenes[i].description.to_lowercase().split_whitespace().map(str::to_owned));
        }
    }
    let found: Vec<&String> = brief_keys.iter().filter(|k| covered_by.contains(*k)).collect();
    let missing: Vec<&String> = brief_keys.iter().filter(|k| !covered_by.contains(*k)).collect();
    let recall = if brief_keys.is_empty() { 0.0 } else { found.len() as f64 / brief_keys.len() as f64 };

    let mut per_scene = Vec::with_capacity(scenes.len());
    let mut scene_detail = Vec::with_capacity(scenes.len());
    for (i, s) in req.plan.scenes.iter().enumerate() {
        let mut cap = tokens(&s.caption, true);
        if cap.is_empty() {
            cap = tokens(&s.caption, false);
        }
        let shared: Vec<&String> = cap.iter().filter(|t| brief_keys.contains(*t)).collect();
        let overlap = if cap.is_empty() { 0.0 } else { shared.len() as f64 / cap.len() as f64 };
        per_scene.push(overlap);
        if s.caption.trim().is_empty() {
            scenes[i].issues.push("caption is empty".into());
            scenes[i].suggestions.push(format!("write a caption for scene {i} from the brief"));
        } else if shared.is_empty() {
            scenes[i].issues.push(format!("caption \"{}\" shares no key word with the brief", s.caption));
            scenes[i].suggestions.push(format!("rewrite scene {i}'s caption from the brief's words"));
        }
        scene_detail
            .push(json!({ "scene": i, "overlap": round4(overlap), "shared": shared, "caption_tokens": cap.len() }));
    }
    let mean_overlap = per_scene.iter().sum::<f64>() / per_scene.len().max(1) as f64;
    let score = 0.5 * recall + 0.5 * mean_overlap;
    let unspaced = req.brief.chars().any(is_unspaced);
    let method = format!(
        "LEXICAL fallback (the sentence-embedding model is not installed): recall of the brief's content words ({}; direction words left out) in captions + descriptions, and each caption's \
         share of words found in the brief; 0.5·recall + 0.5·mean caption overlap",
        if unspaced {
            "character bigrams for unspaced scripts"
        } else {
            "lowercase, stopwords removed, plurals stripped"
        }
    );
    let detail = json!({
        "brief_key_words": brief_keys.len(),
        "recall": round4(recall),
        "missing": missing.iter().take(12).collect::<Vec<_>>(),
        "mean_caption_overlap": round4(mean_overlap),
        "scenes": scene_detail,
        "stopword_fallback": fallback,
    });
    (score, per_scene, method, detail)
}

// ---------------------------------------------------------------------------------------------
// The agent
// ---------------------------------------------------------------------------------------------

/// SemanticQA as an agent: [`assess`] with cancellation and progress; no model is used.
#[derive(Debug, Clone, Default)]
pub struct SemanticQa;

impl Agent for SemanticQa {
    type Input = SemanticRequest;
    type Output = SemanticReport;
    const NAME: &'static str = "semantic_qa";

    async fn run(&self, input: SemanticRequest, ctx: &AgentContext) -> Result<AgentOutput<SemanticReport>, AgentError> {
        let started = Instant::now();
        let value = assess_with(&input, Some(ctx))?;
        ctx.progress.report(1.0);
        Ok(AgentOutput {
            value,
            metadata: AgentMetadata {
                model_used: "signal-heuristics".into(),
                processing_ms: started.elapsed().as_millis() as u64,
                version: SEMANTIC_VERSION.into(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::BufWriter;
    use std::path::Path;

    use super::*;
    use crate::domain::{ScenePlan, VideoSettings};
    use crate::planner::{PlanLimits, PlanRequest, plan};
    use crate::visual::{TranslateRequest, translate};

    const W: usize = 640;
    const H: usize = 360;
    const BRIEF: &str = "A quiet poem about an old lighthouse keeper. Cold blue palette, long pauses. He climbs the stairs at dusk. \
         The light goes out.";

    /// v33's `semanticQa.criteria`.
    fn v33_criteria() -> BTreeMap<String, CriterionConfig> {
        [
            (STYLE_COHERENCE, 0.3, 0.7),
            (NARRATIVE_ADHERENCE, 0.3, 0.8),
            (EMOTIONAL_SYNC, 0.2, 0.6),
            (VISUAL_QUALITY, 0.2, 0.7),
        ]
        .into_iter()
        .map(|(k, weight, threshold)| (k.to_owned(), CriterionConfig { weight, threshold }))
        .collect()
    }

    fn write_png(path: &Path, data: &[u8], rgba: bool) {
        let file = File::create(path).unwrap();
        let mut enc = png::Encoder::new(BufWriter::new(file), W as u32, H as u32);
        enc.set_color(if rgba { png::ColorType::Rgba } else { png::ColorType::Rgb });
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(data).unwrap();
    }

    fn blend(dst: &mut [u8], c: Rgb, a: f32) {
        let b = |d: u8, s: u8| (d as f32 + (s as f32 - d as f32) * a).round() as u8;
        dst[0] = b(dst[0], c.0);
        dst[1] = b(dst[1], c.1);
        dst[2] = b(dst[2], c.2);
    }

    /// A stand-in for the renderer's mid-scene keyframe: a vertical gradient, translucent
    /// discs, and the caption box laid out as the renderer does (font px = size × short side,
    /// 0.35 px padding, centred, bottom edge on the safe margin) with 2-px "glyph strokes"
    /// every 6 px across each line. Text width uses 0.55 em per character, a little wider
    /// than the agent's own estimate, as real fonts are.
    fn draw(scene: &ScenePlan, bg: (Rgb, Rgb), shape_colour: Option<Rgb>) -> Vec<u8> {
        let mut img = vec![0u8; W * H * 3];
        for y in 0..H {
            let c = bg.0.mix(bg.1, y as f32 / (H - 1) as f32);
            for x in 0..W {
                img[(y * W + x) * 3..(y * W + x) * 3 + 3].copy_from_slice(&[c.0, c.1, c.2]);
            }
        }
        let short = W.min(H) as f32;
        for s in &scene.shapes {
            let (cx, cy, r) = (s.x * W as f32, s.y * H as f32, s.size * short);
            for y in 0..H {
                for x in 0..W {
                    if (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) <= r * r {
                        blend(&mut img[(y * W + x) * 3..], shape_colour.unwrap_or(s.color), s.alpha);
                    }
                }
            }
        }
        let t = &scene.typography;
        if scene.caption.trim().is_empty() {
            return img;
        }
        let px = t.size * short;
        let pad = 0.35 * px;
        let avail = W as f32 * (1.0 - 2.0 * t.safe_margin) - 2.0 * pad;
        let text_w = scene.caption.chars().count() as f32 * 0.55 * px;
        let lines = (text_w / avail).ceil().clamp(1.0, t.max_lines as f32);
        let line_w = text_w.min(avail);
        let (bw, bh) = (line_w + 2.0 * pad, lines * px + 2.0 * pad);
        let top = match t.position {
            CaptionPosition::Bottom => H as f32 * (1.0 - t.safe_margin) - bh,
            CaptionPosition::Center => (H as f32 - bh) / 2.0,
        };
        let left = (W as f32 - bw) / 2.0;
        for y in top.round() as usize..(top + bh).round() as usize {
            for x in left.round() as usize..(left + bw).round() as usize {
                blend(&mut img[(y * W + x) * 3..], t.box_color, t.box_alpha);
                let (ly, lx) = (y as f32 - top - pad, x as f32 - left - pad);
                let in_line = ly >= 0.0 && ly < lines * px && (ly % px) >= 0.2 * px && (ly % px) < 0.8 * px;
                if in_line && lx >= 0.0 && lx < line_w && x % 6 < 2 {
                    blend(&mut img[(y * W + x) * 3..], t.color, 1.0);
                }
            }
        }
        img
    }

    /// Planner + translator output for [`BRIEF`], with keyframes drawn in the plan's own
    /// colours (scene 0's caption centred, to cover both positions).
    fn request(dir: &Path) -> SemanticRequest {
        let manifest = plan(&PlanRequest {
            brief: BRIEF.into(),
            duration_s: 20,
            language: "en".into(),
            fast_track: true,
            limits: PlanLimits { max_scenes: 3, max_caption_chars: 60, min_scene_s: 3.0 },
            reuse_markers: None,
            speech: Default::default(),
        })
        .unwrap();
        let video = VideoSettings {
            width: W as u32,
            height: H as u32,
            fps: 25,
            x264_preset: crate::domain::X264Preset::Veryfast,
            crf: 23,
            audio_bitrate: 128_000,
        };
        let mut p = translate(
            &TranslateRequest {
                manifest: manifest.clone(),
                video,
                transition_s: 0.5,
                languages: vec!["en".into()],
                translations: Default::default(),
                unavailable: Default::default(),
            },
            7,
        )
        .unwrap()
        .plan;
        p.scenes[0].typography.position = CaptionPosition::Center;
        let mut req = SemanticRequest {
            brief: BRIEF.into(),
            manifest,
            plan: p,
            keyframes: vec![],
            criteria: v33_criteria(),
            gate: 0.7,
            narrative_embeddings: None,
            video: None,
            caption_boxes: vec![],
            narration_engine: None,
        };
        redraw(&mut req, dir, |_, s| draw(s, (s.background.from, s.background.to), None));
        req
    }

    /// (Re)write every keyframe with `paint(index, scene)`.
    fn redraw(req: &mut SemanticRequest, dir: &Path, paint: impl Fn(usize, &ScenePlan) -> Vec<u8>) {
        req.keyframes = req
            .plan
            .scenes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let path = dir.join(format!("scene-{i}.png"));
                write_png(&path, &paint(i, s), false);
                path
            })
            .collect();
    }

    fn criterion<'a>(r: &'a SemanticReport, name: &str) -> &'a CriterionScore {
        r.criteria.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn on_plan_render_passes_every_criterion() {
        let dir = tempfile::tempdir().unwrap();
        let req = request(dir.path());
        assert_eq!(req.plan.scenes.len(), 3);
        let r = assess(&req).unwrap();
        let json = serde_json::to_string_pretty(&r).unwrap();
        for c in &r.criteria {
            assert!(c.passed, "{} failed: {json}", c.name);
            assert!(!c.method.is_empty() && !c.method.contains('\n'));
        }
        assert!(r.passed && r.score >= 0.85, "{json}");
        assert!(r.weakest_scenes.iter().all(|i| !r.scenes[*i].issues.is_empty()));
        assert!(criterion(&r, NARRATIVE_ADHERENCE).method.contains("LEXICAL"));
        let back: SemanticReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn high_contrast_caption_scores_well_and_grey_on_grey_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = request(dir.path());
        let good = assess(&req).unwrap();
        let vq = criterion(&good, VISUAL_QUALITY);
        assert!(vq.score >= 0.8, "{vq:?}");
        for s in vq.detail["scenes"].as_array().unwrap() {
            assert!(s["caption"]["contrast"].as_f64().unwrap() >= 4.5, "{s}");
        }

        // Scene 1 set grey on grey: the plan asks for it and the keyframe shows it.
        let t = &mut req.plan.scenes[1].typography;
        t.color = Rgb(150, 150, 150);
        t.box_color = Rgb(128, 128, 128);
        t.box_alpha = 1.0;
        redraw(&mut req, dir.path(), |_, s| draw(s, (s.background.from, s.background.to), None));
        let bad = assess(&req).unwrap();
        let vq = criterion(&bad, VISUAL_QUALITY);
        assert!(!vq.passed && vq.score < vq.threshold, "{vq:?}");
        assert!(!bad.passed);
        let measured = vq.detail["scenes"][1]["caption"]["contrast"].as_f64().unwrap();
        assert!(measured < 1.5, "grey 150 on grey 128 is about 1.3:1, measured {measured}");
        let scene = &bad.scenes[1];
        assert!(
            scene.issues.iter().any(|i| i.starts_with("caption contrast") && i.contains("below 4.5:1")),
            "{scene:?}"
        );
        assert!(
            scene.suggestions.iter().any(|s| s.contains("darken the caption box or raise its opacity")),
            "{scene:?}"
        );
        assert_eq!(bad.weakest_scenes.first(), Some(&1), "{bad:?}");
        assert!(bad.scenes[0].issues.iter().all(|i| !i.contains("contrast")), "{:?}", bad.scenes[0]);
    }

    #[test]
    fn all_black_keyframe_is_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = request(dir.path());
        redraw(&mut req, dir.path(), |i, s| {
            if i == 2 { vec![0; W * H * 3] } else { draw(s, (s.background.from, s.background.to), None) }
        });
        let r = assess(&req).unwrap();
        let scene = &r.scenes[2];
        assert!(scene.issues.iter().any(|i| i.contains("nearly black")), "{scene:?}");
        assert!(scene.issues.iter().any(|i| i.contains("blank")), "{scene:?}");
        assert_eq!(criterion(&r, VISUAL_QUALITY).detail["scenes"][2]["score"].as_f64(), Some(0.0));
        assert!(!criterion(&r, VISUAL_QUALITY).passed);
        assert_eq!(r.weakest_scenes.first(), Some(&2));
        assert!(!r.passed);
    }

    #[test]
    fn off_palette_colours_lower_style_coherence_and_name_the_scene() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = request(dir.path());
        let on = criterion(&assess(&req).unwrap(), STYLE_COHERENCE).clone();

        // Scene 1 in saturated green and magenta, far from the cold blue palette.
        redraw(&mut req, dir.path(), |i, s| {
            if i == 1 {
                draw(s, (Rgb(40, 220, 60), Rgb(230, 40, 200)), Some(Rgb(250, 240, 0)))
            } else {
                draw(s, (s.background.from, s.background.to), None)
            }
        });
        let r = assess(&req).unwrap();
        let off = criterion(&r, STYLE_COHERENCE);
        assert!(off.score < on.score - 0.15, "on {on:?}\noff {off:?}");
        assert!(!off.passed, "{off:?}");
        let d = off.detail["mean_distance_per_scene"].as_array().unwrap();
        assert!(d[1].as_f64().unwrap() > 3.0 * d[0].as_f64().unwrap(), "{d:?}");
        assert!(r.scenes[1].issues.iter().any(|i| i.contains("off the palette")), "{:?}", r.scenes[1]);
        assert!(r.scenes[1].suggestions.iter().any(|s| s.contains("recolour scene 1")));
        assert!(r.notes.iter().any(|n| n.starts_with("scene 1 is the furthest off-palette")), "{:?}", r.notes);

        // Every scene off-palette: the whole video fails style.
        redraw(&mut req, dir.path(), |_, s| draw(s, (Rgb(40, 220, 60), Rgb(230, 40, 200)), Some(Rgb(250, 240, 0))));
        let all_off = criterion(&assess(&req).unwrap(), STYLE_COHERENCE).score;
        assert!(all_off < 0.5, "{all_off}");
    }

    #[test]
    fn unrelated_captions_lower_narrative_adherence() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = request(dir.path());
        let on = criterion(&assess(&req).unwrap(), NARRATIVE_ADHERENCE).score;
        assert!(on >= 0.95, "captions drawn from the brief: {on}");

        let unrelated = ["Huge sneaker discounts today", "Download our banking app", "Fresh pizza delivered"];
        for (i, c) in unrelated.iter().enumerate() {
            req.plan.scenes[i].caption = (*c).into();
            req.manifest.scenes[i].caption = (*c).into();
            req.manifest.scenes[i].description = (*c).into();
        }
        redraw(&mut req, dir.path(), |_, s| draw(s, (s.background.from, s.background.to), None));
        let r = assess(&req).unwrap();
        let off = criterion(&r, NARRATIVE_ADHERENCE);
        assert!(off.score < 0.2 && !off.passed, "{off:?}");
        assert!(off.score < on);
        for (i, c) in unrelated.iter().enumerate() {
            assert!(
                r.scenes[i].issues.iter().any(|x| x.contains(c) && x.contains("shares no key word")),
                "{:?}",
                r.scenes[i]
            );
        }
        assert!(off.detail["missing"].as_array().unwrap().iter().any(|w| w == "lighthouse"), "{}", off.detail);
    }

    #[test]
    fn pass_needs_the_gate_and_every_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = request(dir.path());
        let r = assess(&req).unwrap();
        let weighted: f64 = r.criteria.iter().map(|c| c.weight * c.score).sum();
        assert!((r.score - weighted).abs() < 1e-3, "{} vs {weighted}", r.score);
        assert!(r.passed);

        // One criterion just under its threshold fails the report though the score clears the gate.
        let emo = criterion(&r, EMOTIONAL_SYNC).score;
        req.criteria.get_mut(EMOTIONAL_SYNC).unwrap().threshold = emo + 0.01;
        let r2 = assess(&req).unwrap();
        assert!(r2.score >= req.gate);
        assert!(!criterion(&r2, EMOTIONAL_SYNC).passed && !r2.passed);
        assert!(r2.notes.iter().any(|n| n.starts_with("emotionalSync") && n.contains("below its threshold")));

        // Every threshold met but the gate above the score: fails too.
        req.criteria = v33_criteria();
        req.gate = r.score + 0.01;
        let r3 = assess(&req).unwrap();
        assert!(r3.criteria.iter().all(|c| c.passed) && !r3.passed);

        // Weights that do not add up to 1 are normalised, and said so.
        req.gate = 0.7;
        for c in req.criteria.values_mut() {
            c.weight *= 2.0;
        }
        let r4 = assess(&req).unwrap();
        assert!((r4.score - r.score).abs() < 1e-3);
        assert!(r4.notes.iter().any(|n| n.contains("weights add up to 2.000")));

        req.criteria.remove(VISUAL_QUALITY);
        let err = assess(&req).unwrap_err();
        assert!(!err.is_transient() && err.to_string().contains("visualQuality"), "{err}");
    }

    #[test]
    fn mood_mismatch_lowers_emotional_sync() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = request(dir.path());
        let on = criterion(&assess(&req).unwrap(), EMOTIONAL_SYNC).score;
        // Bright, saturated, warm frames and a fast, loud bed for a melancholic manifest.
        redraw(&mut req, dir.path(), |_, s| draw(s, (Rgb(255, 190, 40), Rgb(255, 120, 20)), Some(Rgb(255, 60, 60))));
        req.plan.audio.tempo_bpm = 128.0;
        req.plan.audio.energy = 0.9;
        let r = assess(&req).unwrap();
        let off = criterion(&r, EMOTIONAL_SYNC);
        assert!(off.score < on - 0.3 && !off.passed, "on {on} off {off:?}");
        assert!(
            r.scenes[0].issues.iter().any(|i| i.contains("too bright for a melancholic mood")),
            "{:?}",
            r.scenes[0]
        );
        assert!(r.scenes[0].issues.iter().any(|i| i.contains("warm hue bias")), "{:?}", r.scenes[0]);
        assert!(r.notes.iter().any(|n| n.contains("music tempo 128 BPM")), "{:?}", r.notes);
    }

    #[test]
    fn missing_or_unreadable_keyframes_fail_permanently_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = request(dir.path());
        let missing = dir.path().join("nope.png");
        req.keyframes[1] = missing.clone();
        let err = assess(&req).unwrap_err();
        assert!(matches!(err, AgentError::Permanent(_)));
        assert!(err.to_string().contains(&missing.display().to_string()), "{err}");

        let junk = dir.path().join("junk.png");
        std::fs::write(&junk, b"not a png").unwrap();
        req.keyframes[1] = junk.clone();
        let err = assess(&req).unwrap_err();
        assert!(matches!(err, AgentError::Permanent(_)) && err.to_string().contains(&junk.display().to_string()));

        req.keyframes.pop();
        let err = assess(&req).unwrap_err();
        assert!(err.to_string().contains("expected 3 keyframes"), "{err}");
    }

    #[test]
    fn rgba_keyframes_measure_like_rgb() {
        let dir = tempfile::tempdir().unwrap();
        let req = request(dir.path());
        let rgb = assess(&req).unwrap();
        for (i, s) in req.plan.scenes.iter().enumerate() {
            let img = draw(s, (s.background.from, s.background.to), None);
            let rgba: Vec<u8> = img.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
            write_png(&req.keyframes[i], &rgba, true);
        }
        assert_eq!(assess(&req).unwrap(), rgb);
    }

    #[test]
    fn tokens_drop_stopwords_strip_plurals_and_bigram_cjk() {
        let t = tokens("The keepers watch the lighthouses and the stories", true);
        assert_eq!(t, ["keeper", "lighthouse", "story", "watch"].iter().map(|s| s.to_string()).collect());
        assert!(tokens("A 15-second teaser video", true).iter().all(|w| w == "15"));
        let cjk = tokens("東京の朝。パン屋が開く。", true);
        assert!(cjk.contains("東京") && cjk.contains("パン") && !cjk.contains("朝。"), "{cjk:?}");
    }

    #[test]
    fn cjk_captions_are_compared_by_bigrams() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = request(dir.path());
        req.brief = "東京の朝。パン屋が開く。温かい光。".into();
        let captions = ["東京の朝", "パン屋が開く", "猫が寝ている"];
        for (i, c) in captions.iter().enumerate() {
            req.plan.scenes[i].caption = (*c).into();
            req.manifest.scenes[i].caption = (*c).into();
            req.manifest.scenes[i].description = (*c).into();
        }
        redraw(&mut req, dir.path(), |_, s| draw(s, (s.background.from, s.background.to), None));
        let r = assess(&req).unwrap();
        let n = criterion(&r, NARRATIVE_ADHERENCE);
        assert!(n.method.contains("bigrams"), "{}", n.method);
        let overlap = |i: usize| n.detail["scenes"][i]["overlap"].as_f64().unwrap();
        assert!(overlap(0) == 1.0 && overlap(1) == 1.0 && overlap(2) == 0.0, "{}", n.detail);
        assert!(r.scenes[2].issues.iter().any(|x| x.contains("shares no key word")));
    }

    #[test]
    fn caption_search_window_sits_in_the_safe_area() {
        let t = Typography {
            size: 0.058,
            color: Rgb(255, 255, 255),
            box_color: Rgb(0, 0, 0),
            box_alpha: 0.6,
            position: CaptionPosition::Bottom,
            safe_margin: 0.08,
            max_lines: 3,
        };
        let g = caption_geometry("Hello world", &t, 1280, 720).unwrap();
        assert_eq!(g.window.y1, (720.0f64 * 0.92).round() as usize, "{g:?}");
        assert!(g.window.y0 as f64 > 720.0 * 0.75 && g.reference.y0 > g.window.y0, "{g:?}");
        assert!(g.window.x0 > 1280 / 4 && g.window.x1 < 1280 * 3 / 4, "{g:?}");
        assert!(g.core.x0 >= g.window.x0 && g.core.x1 <= g.window.x1, "{g:?}");
        let long = caption_geometry(&"word ".repeat(40), &t, 1280, 720).unwrap();
        assert!(long.window.y1 - long.window.y0 > 2 * (g.window.y1 - g.window.y0), "{long:?}");
        assert!(long.window.x0 as f64 >= 1280.0 * 0.08 - 1.0, "{long:?}");
        let c =
            caption_geometry("Hello world", &Typography { position: CaptionPosition::Center, ..t.clone() }, 1280, 720)
                .unwrap();
        assert!(c.window.y0 < 360 && c.window.y1 > 360 && c.reference.y0 < 360 && c.reference.y1 > 360, "{c:?}");
        assert!(caption_geometry("  ", &t, 1280, 720).is_none());
    }

    #[test]
    fn agent_reports_signal_heuristics_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let req = request(dir.path());
        let expected = assess(&req).unwrap();
        let ctx = AgentContext::with_seed(1);
        let fut = SemanticQa.run(req.clone(), &ctx);
        let mut fut = std::pin::pin!(fut);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let out = loop {
            if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                break v.unwrap();
            }
        };
        assert_eq!(out.value, expected);
        assert_eq!(out.metadata.model_used, "signal-heuristics");
        assert_eq!(out.metadata.version, SEMANTIC_VERSION);
        assert_eq!(SemanticQa::NAME, "semantic_qa");

        let ctx = AgentContext::with_seed(1);
        ctx.cancel.cancel();
        let fut = SemanticQa.run(req, &ctx);
        let mut fut = std::pin::pin!(fut);
        let cancelled = loop {
            if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                break v;
            }
        };
        assert!(matches!(cancelled, Err(AgentError::Cancelled)));
    }

    #[test]
    fn narrative_adherence_uses_embeddings_when_given_and_flags_off_topic_captions() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = request(dir.path());
        let n = req.plan.scenes.len();
        let sims = |v: f32| NarrativeSimilarities {
            model: "all-minilm-l6-v2".into(),
            brief_script: v,
            brief_caption: vec![v; n],
            brief_description: vec![v; n],
            script_caption: vec![v; n],
        };
        req.narrative_embeddings = Some(sims(0.6));
        let on = assess(&req).unwrap();
        let c = criterion(&on, NARRATIVE_ADHERENCE);
        assert!(c.method.starts_with("EMBEDDINGS (all-minilm-l6-v2)"), "{}", c.method);
        assert!((c.score - 1.0).abs() < 1e-9);
        req.narrative_embeddings = Some(sims(0.05));
        let off = assess(&req).unwrap();
        assert!(criterion(&off, NARRATIVE_ADHERENCE).score < 1e-9);
        assert!(off.scenes.iter().all(|s| s.issues.iter().any(|i| i.contains("far from the brief"))));
    }
}
