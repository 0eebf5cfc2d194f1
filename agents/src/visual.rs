//! VisualTranslator, part 1: the production manifest and consistency markers become a render
//! plan (per-scene layout, palette, motion, typography, transitions, audio bed) and the
//! subtitle cues.
//!
//! Subtitles in other languages come from [`crate::translate`] backends that passed the
//! quality bar; the caller passes their captions in. Every other requested language is
//! reported as unavailable — with the reason — and no subtitle track is produced for it.
//! Nothing is ever invented.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::agent::{Agent, AgentContext, AgentError, AgentMetadata, AgentOutput};
use crate::domain::{
    AudioPlan, CaptionPosition, Cue, Gradient, Motion, ProductionManifest, RenderPlan, Rgb, Scale, ScenePlan, Shape,
    ShapeKind, SubtitleTrack, Typography, VideoSettings,
};

/// What the translator needs besides the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslateRequest {
    /// The plan to lay out.
    pub manifest: ProductionManifest,
    /// Encoder settings of the chosen tier, sized for the aspect ratio.
    pub video: VideoSettings,
    /// Crossfade length between scenes.
    pub transition_s: f64,
    /// Every subtitle language requested; the first is the caption language.
    pub languages: Vec<String>,
    /// Captions translated by a backend that passed the quality bar, per language (one per
    /// scene, in order). Languages absent here get no subtitles.
    #[serde(default)]
    pub translations: std::collections::BTreeMap<String, TranslatedCaptions>,
    /// Why a language has no translation (backend below the bar, not evaluated, none installed).
    #[serde(default)]
    pub unavailable: std::collections::BTreeMap<String, String>,
}

/// One language's translated captions and the backend that wrote them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslatedCaptions {
    /// Backend id, e.g. `marian:opus-mt-en-fr`.
    pub backend: String,
    /// The backend's measured chrF on the reference set for this pair.
    pub chrf: f64,
    /// One caption per scene, in scene order.
    pub captions: Vec<String>,
    /// One narration line per scene, in scene order, translated by the same backend: what a
    /// voice for the language speaks (empty in translations made before narration was
    /// translated, and for a scene with nothing to say).
    #[serde(default)]
    pub narration: Vec<String>,
}

impl TranslatedCaptions {
    /// The translated narration line of each scene, when the translation has one per scene.
    pub fn narration_lines(&self, scenes: usize) -> Option<&[String]> {
        (self.narration.len() == scenes && self.narration.iter().any(|l| !l.trim().is_empty()))
            .then_some(self.narration.as_slice())
    }
}

/// Whether subtitles exist for one requested language, and why not when they don't.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageStatus {
    /// ISO 639-1 code.
    pub lang: String,
    /// `"source"` (captions as written), `"translated"`, or `"unavailable"`.
    pub status: String,
    /// The backend that produced it, if any.
    pub backend: Option<String>,
    /// Why it is unavailable.
    pub reason: Option<String>,
    /// The narration translated by the same backend, one line per scene (empty when there is
    /// none): what the voicing stage speaks in this language.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub narration: Vec<String>,
}

/// The translator's output: the render plan and the per-language subtitle status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Translation {
    /// What the renderer draws.
    pub plan: RenderPlan,
    /// One entry per requested language.
    pub languages: Vec<LanguageStatus>,
    /// How the scenes' illustrations were chosen, or why none could be (no embedding model,
    /// no illustration set): said, never hidden.
    #[serde(default)]
    pub illustration_note: Option<String>,
}

/// Mood → music bed: tempo, scale, energy. Unknown moods get a neutral bed.
fn audio_for(mood: &str) -> AudioPlan {
    let (tempo_bpm, root_hz, scale, energy) = match mood {
        "calm" => (70.0, 220.0, Scale::Major, 0.2),
        "energetic" => (124.0, 164.81, Scale::Major, 0.9),
        "warm" => (88.0, 196.0, Scale::Major, 0.4),
        "dramatic" => (92.0, 146.83, Scale::Minor, 0.7),
        "melancholic" => (62.0, 174.61, Scale::Minor, 0.15),
        "educational" => (100.0, 261.63, Scale::Major, 0.5),
        "serious" => (96.0, 196.0, Scale::Minor, 0.5),
        _ => (96.0, 220.0, Scale::Major, 0.5),
    };
    AudioPlan { sample_rate: 48_000, tempo_bpm, root_hz, scale, energy, gain: 0.5 }
}

/// Lighting words shift the whole palette: warm light warms, cold light cools, night darkens.
fn light(c: Rgb, lighting: &str) -> Rgb {
    if lighting.contains("warm") || lighting.contains("golden") {
        c.mix(Rgb(255, 170, 90), 0.12)
    } else if lighting.contains("cold") || lighting.contains("blue") {
        c.mix(Rgb(70, 110, 190), 0.12)
    } else if lighting.contains("low-key") || lighting.contains("night") {
        c.mix(Rgb(0, 0, 0), 0.25)
    } else {
        c
    }
}

/// A small deterministic generator (SplitMix64) so layouts depend only on the seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
}

/// WCAG AA contrast for body text; captions must reach it.
const MIN_CAPTION_CONTRAST: f64 = 4.5;

/// Caption text colour and box opacity such that the text keeps the contrast it needs over
/// every colour that can sit under the box (both ends of the gradient and the shapes): the
/// lightest box that reaches 4.5:1 wins, else the one with the best worst case.
/// Legibility is decided here, not hoped for.
fn caption_style(box_color: Rgb, under: &[Rgb]) -> (Rgb, f32) {
    let (white, dark) = (Rgb(255, 255, 255), Rgb(17, 17, 17));
    let worst = |text: Rgb, alpha: f32| {
        under.iter().map(|bg| text.contrast(bg.mix(box_color, alpha))).fold(f64::INFINITY, f64::min)
    };
    let mut best = (white, 0.6, 0.0);
    for alpha in [0.6, 0.7, 0.8, 0.9] {
        for text in [white, dark] {
            let contrast = worst(text, alpha);
            if contrast > best.2 {
                best = (text, alpha, contrast);
            }
        }
        if best.2 >= MIN_CAPTION_CONTRAST {
            break;
        }
    }
    (best.0, best.1)
}

/// Lay out the render plan for a manifest.
pub fn translate(req: &TranslateRequest, seed: u64) -> Result<Translation, AgentError> {
    let m = &req.manifest;
    if m.scenes.is_empty() {
        return Err(AgentError::Permanent("the manifest has no scenes".into()));
    }
    if m.markers.palette.is_empty() {
        return Err(AgentError::Permanent("the consistency markers have an empty palette".into()));
    }
    let palette: Vec<Rgb> = m.markers.palette.iter().map(|c| light(*c, &m.markers.lighting)).collect();
    let n = palette.len();
    let darkest = *palette.iter().min_by(|a, b| a.luminance().total_cmp(&b.luminance())).unwrap_or(&palette[0]);
    let intensity = match m.markers.mood.as_str() {
        "energetic" => 0.9,
        "dramatic" => 0.7,
        "calm" | "melancholic" => 0.3,
        _ => 0.5,
    };
    let mut rng = SplitMix(seed);
    let mut start = 0.0;
    let mut scenes = Vec::with_capacity(m.scenes.len());
    for (i, scene) in m.scenes.iter().enumerate() {
        let base = palette[i % n];
        let background = Gradient {
            from: base,
            to: base.mix(palette[(i + 1) % n], 0.35).mix(Rgb(0, 0, 0), 0.2),
            angle_deg: (35.0 + 50.0 * i as f32) % 180.0,
        };
        let shape_count = 3 + (rng.next() % 3) as usize;
        let shapes: Vec<Shape> = (0..shape_count)
            .map(|k| Shape {
                kind: [ShapeKind::Circle, ShapeKind::Rect, ShapeKind::Ring][(k + i) % 3],
                color: palette[(i + k + 1) % n],
                alpha: rng.range(0.35, 0.75),
                x: rng.range(0.15, 0.85),
                y: rng.range(0.15, 0.65),
                size: rng.range(0.06, 0.2),
            })
            .collect();
        let under: Vec<Rgb> =
            [background.from, background.to].into_iter().chain(shapes.iter().map(|s| s.color)).collect();
        let (text_color, box_alpha) = caption_style(darkest, &under);
        let center = i == 0 && m.scenes.len() > 1 && scene.caption.chars().count() <= 32;
        let typography = Typography {
            size: if center { 0.075 } else { 0.058 },
            color: text_color,
            box_color: darkest,
            box_alpha,
            position: if center { CaptionPosition::Center } else { CaptionPosition::Bottom },
            safe_margin: 0.08,
            max_lines: 3,
        };
        scenes.push(ScenePlan {
            start_s: start,
            duration_s: scene.duration_s,
            caption: scene.caption.clone(),
            narration: scene.spoken_text().to_owned(),
            background,
            shapes,
            motion: Motion { camera: scene.camera, intensity },
            typography,
            words: Vec::new(),
            illustrations: Vec::new(),
        });
        start += scene.duration_s;
    }

    let source = req.languages.first().cloned().unwrap_or_else(|| m.language.clone());
    let cues = scenes
        .iter()
        .map(|s| Cue { start_s: s.start_s, end_s: s.start_s + s.duration_s, text: s.caption.clone() })
        .collect();
    let mut languages = vec![LanguageStatus {
        lang: source.clone(),
        status: "source".into(),
        backend: None,
        reason: None,
        narration: Vec::new(),
    }];
    let mut tracks = vec![SubtitleTrack { lang: source.clone(), cues }];
    for lang in req.languages.iter().skip(1).filter(|l| **l != source) {
        match req.translations.get(lang).filter(|t| t.captions.len() == scenes.len()) {
            Some(t) => {
                let cues = scenes
                    .iter()
                    .zip(&t.captions)
                    .map(|(s, text)| Cue { start_s: s.start_s, end_s: s.start_s + s.duration_s, text: text.clone() })
                    .collect();
                tracks.push(SubtitleTrack { lang: lang.clone(), cues });
                languages.push(LanguageStatus {
                    lang: lang.clone(),
                    status: "translated".into(),
                    backend: Some(t.backend.clone()),
                    reason: Some(format!("reference chrF {:.1}", t.chrf)),
                    narration: t.narration_lines(scenes.len()).map(<[String]>::to_vec).unwrap_or_default(),
                });
            }
            None => {
                let why =
                    req.unavailable.get(lang).cloned().unwrap_or_else(|| "translation model not installed".into());
                languages.push(LanguageStatus {
                    lang: lang.clone(),
                    status: "unavailable".into(),
                    backend: None,
                    narration: Vec::new(),
                    reason: Some(format!(
                        "{why}: no subtitles in '{lang}' were produced (captions stay in '{source}')"
                    )),
                });
            }
        }
    }
    Ok(Translation {
        plan: RenderPlan {
            video: req.video.clone(),
            audio: audio_for(&m.markers.mood),
            scenes,
            transition_s: req.transition_s,
            subtitles: tracks,
            seed,
            narration: Vec::new(),
            mix: Default::default(),
        },
        languages,
        illustration_note: None,
    })
}

/// The translator as an agent.
#[derive(Debug, Clone, Default)]
pub struct VisualTranslator;

impl Agent for VisualTranslator {
    type Input = TranslateRequest;
    type Output = Translation;
    const NAME: &'static str = "visual_translator";

    async fn run(&self, input: TranslateRequest, ctx: &AgentContext) -> Result<AgentOutput<Translation>, AgentError> {
        let started = Instant::now();
        let value = translate(&input, ctx.seed)?;
        Ok(AgentOutput {
            value,
            metadata: AgentMetadata {
                model_used: "layout-rules".into(),
                processing_ms: started.elapsed().as_millis() as u64,
                version: "1.0.0".into(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::{PlanLimits, PlanRequest, plan};

    fn request(languages: &[&str]) -> TranslateRequest {
        let manifest = plan(&PlanRequest {
            brief: "A quiet poem about an old lighthouse keeper. Cold blue palette, long pauses. The light goes out."
                .into(),
            duration_s: 20,
            language: "en".into(),
            fast_track: true,
            limits: PlanLimits { max_scenes: 3, max_caption_chars: 60, min_scene_s: 3.0 },
            reuse_markers: None,
            speech: Default::default(),
        })
        .unwrap();
        TranslateRequest {
            manifest,
            video: VideoSettings {
                width: 1280,
                height: 720,
                fps: 25,
                x264_preset: crate::domain::X264Preset::Veryfast,
                crf: 23,
                audio_bitrate: 128_000,
            },
            transition_s: 0.5,
            languages: languages.iter().map(|s| s.to_string()).collect(),
            translations: Default::default(),
            unavailable: Default::default(),
        }
    }

    #[test]
    fn translated_captions_become_a_track_and_the_rest_stay_unavailable_with_their_reason() {
        let mut req = request(&["en", "fr", "de"]);
        let n = req.manifest.scenes.len();
        req.translations.insert(
            "fr".into(),
            TranslatedCaptions {
                backend: "marian:test".into(),
                chrf: 61.0,
                captions: vec!["Le phare".into(); n],
                narration: Vec::new(),
            },
        );
        req.unavailable.insert("de".into(), "llm:smollm2 scored chrF 12.0 < bar 45.0".into());
        let t = translate(&req, 7).unwrap();
        assert_eq!(t.plan.subtitles.iter().map(|s| s.lang.as_str()).collect::<Vec<_>>(), ["en", "fr"]);
        assert!(t.plan.subtitles[1].cues.iter().all(|c| c.text == "Le phare"));
        assert_eq!(t.languages[1].status, "translated");
        assert_eq!(t.languages[1].backend.as_deref(), Some("marian:test"));
        assert_eq!(t.languages[2].status, "unavailable");
        assert!(t.languages[2].reason.as_deref().unwrap().contains("< bar 45.0"));
    }

    #[test]
    fn plan_covers_the_manifest_contiguously() {
        let t = translate(&request(&["en"]), 7).unwrap();
        let p = &t.plan;
        assert_eq!(p.scenes.len(), request(&["en"]).manifest.scenes.len());
        assert!((p.duration_s() - 20.0).abs() < 1e-9);
        for w in p.scenes.windows(2) {
            assert!((w[0].start_s + w[0].duration_s - w[1].start_s).abs() < 1e-9);
        }
        assert_eq!(p.frame_count(), 500);
        assert_eq!(p.audio.scale, Scale::Minor, "melancholic brief → minor key");
    }

    #[test]
    fn captions_are_legible_over_their_box() {
        for seed in 0..20 {
            let t = translate(&request(&["en"]), seed).unwrap();
            for s in &t.plan.scenes {
                let under = [s.background.from, s.background.to].into_iter().chain(s.shapes.iter().map(|x| x.color));
                for bg in under {
                    let c = s.typography.color.contrast(bg.mix(s.typography.box_color, s.typography.box_alpha));
                    assert!(c >= MIN_CAPTION_CONTRAST, "seed {seed}: {c:.2} over {bg} in {s:?}");
                }
            }
        }
    }

    #[test]
    fn untranslatable_languages_are_reported_not_invented() {
        let t = translate(&request(&["en", "fr", "de"]), 7).unwrap();
        assert_eq!(t.plan.subtitles.len(), 1);
        assert_eq!(t.plan.subtitles[0].lang, "en");
        assert_eq!(t.languages.len(), 3);
        assert_eq!(t.languages[1].status, "unavailable");
        assert!(t.languages[1].reason.as_deref().unwrap().contains("not installed"));
    }

    #[test]
    fn layout_is_deterministic_per_seed() {
        assert_eq!(translate(&request(&["en"]), 1).unwrap(), translate(&request(&["en"]), 1).unwrap());
        assert_ne!(
            translate(&request(&["en"]), 1).unwrap().plan.scenes,
            translate(&request(&["en"]), 2).unwrap().plan.scenes
        );
    }
}
