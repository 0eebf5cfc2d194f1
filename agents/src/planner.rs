//! The deterministic planner: the complexity score that routes a brief, and the FastTrack
//! planner that turns a brief into a production manifest without any model.
//!
//! Until the local-model creative director lands, this planner also serves the full path;
//! its metadata then says `model_used: "planner"`, so nobody mistakes it for model output.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::agent::{Agent, AgentContext, AgentError, AgentMetadata, AgentOutput};
use crate::domain::{Camera, ConsistencyMarkers, ProductionManifest, Rgb, Scene};
use crate::script::{self, BriefAnalysis, ScriptReport};
use crate::voice::fit::FitSettings;

/// The complexity score and the signals behind it, journaled so the routing decision can be
/// explained.
///
/// Formula (each part is clamped to 0–1 before weighting; the weights add up to 1):
/// - `length`    = chars / 600                         × 0.30
/// - `duration`  = (duration_s − 10) / 110             × 0.30
/// - `scene_cues`= cues / 6                            × 0.25, where cues counts sentences
///   beyond the first, sequencing words (then, next, finally, scene…) and scene-count phrases
/// - `dialogue`  = dialogue markers / 2                × 0.15, where markers count double-quoted
///   speech, "says", "dialogue", "interview", "voice-over", and `Name:` speaker lines
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Complexity {
    /// The weighted total, 0.0–1.0.
    pub score: f64,
    /// Weighted contribution of the brief's length.
    pub length: f64,
    /// Weighted contribution of the requested duration.
    pub duration: f64,
    /// Weighted contribution of scene cues.
    pub scene_cues: f64,
    /// Weighted contribution of dialogue markers.
    pub dialogue: f64,
    /// Raw count of scene cues found.
    pub scene_cue_count: usize,
    /// Raw count of dialogue markers found.
    pub dialogue_marker_count: usize,
}

const SEQUENCE_WORDS: [&str; 10] =
    ["then", "next", "finally", "scene", "scenes", "after", "afterwards", "later", "cut", "ending"];
const DIALOGUE_WORDS: [&str; 6] = ["says", "said", "dialogue", "interview", "voice-over", "conversation"];

/// Score a brief's complexity (see [`Complexity`] for the formula). Pure and deterministic.
pub fn complexity(brief: &str, duration_s: u32) -> Complexity {
    let chars = brief.chars().count() as f64;
    let lower = brief.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric() && c != '-').filter(|w| !w.is_empty()).collect();

    let sentences = split_sentences(brief).len();
    let sequence = words.iter().filter(|w| SEQUENCE_WORDS.contains(w)).count();
    let scene_cue_count = sentences.saturating_sub(1) + sequence + usize::from(requested_scene_count(&lower).is_some());

    let quotes = brief.chars().filter(|c| matches!(c, '"' | '“' | '”' | '«' | '»')).count() / 2;
    let speakers = if brief.lines().count() > 1 { brief.lines().filter(|l| is_speaker_line(l)).count() } else { 0 };
    let dialogue_marker_count = quotes + speakers + words.iter().filter(|w| DIALOGUE_WORDS.contains(w)).count();

    let unit = |v: f64| v.clamp(0.0, 1.0);
    let length = unit(chars / 600.0) * 0.30;
    let duration = unit((duration_s as f64 - 10.0) / 110.0) * 0.30;
    let scene_cues = unit(scene_cue_count as f64 / 6.0) * 0.25;
    let dialogue = unit(dialogue_marker_count as f64 / 2.0) * 0.15;
    let round = |v: f64| (v * 10_000.0).round() / 10_000.0;
    Complexity {
        score: round(length + duration + scene_cues + dialogue),
        length: round(length),
        duration: round(duration),
        scene_cues: round(scene_cues),
        dialogue: round(dialogue),
        scene_cue_count,
        dialogue_marker_count,
    }
}

/// `Name: words` — a script-style speaker line.
fn is_speaker_line(line: &str) -> bool {
    match line.split_once(':') {
        Some((head, rest)) => {
            let head = head.trim();
            !rest.trim().is_empty()
                && head.split_whitespace().count() == 1
                && head.chars().count() < 20
                && head.chars().next().is_some_and(char::is_uppercase)
        }
        None => false,
    }
}

/// A scene count the brief asks for in words ("in four scenes", "3 scenes").
pub fn requested_scene_count(lower: &str) -> Option<usize> {
    const NUMBERS: [&str; 9] = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    let words: Vec<&str> = lower.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        let next = w[1].trim_matches(|c: char| !c.is_alphanumeric());
        if next != "scenes" && next != "scene" && next != "shots" {
            return None;
        }
        let n = w[0].trim_matches(|c: char| !c.is_alphanumeric());
        n.parse::<usize>()
            .ok()
            .or_else(|| NUMBERS.iter().position(|x| *x == n).map(|i| i + 1))
            .filter(|n| (1..=12).contains(n))
    })
}

/// Split text into sentences on terminal punctuation (Latin and CJK), keeping the text of
/// each sentence intact and trimmed.
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        current.push(c);
        let terminal = matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '\n');
        let boundary = terminal && chars.get(i + 1).is_none_or(|n| n.is_whitespace() || !c.is_ascii());
        if boundary {
            push_trimmed(&mut out, &current);
            current.clear();
        }
    }
    push_trimmed(&mut out, &current);
    out
}

fn push_trimmed(out: &mut Vec<String>, s: &str) {
    let t = s.trim().trim_end_matches(['.', '\n']).trim();
    if t.chars().any(char::is_alphanumeric) {
        out.push(t.to_owned());
    }
}

/// The brief's beats for `n` scenes, in order: what each scene should show — the content
/// the script writer gives each scene (direction and steering text left out).
pub fn beats(brief: &str, n: usize) -> Vec<String> {
    let analysis = script::analyze(brief, "en");
    let shares = equal_shares(6.0 * n.max(1) as f64, n.max(1));
    script::writer::write(&analysis, &shares, 72, &FitSettings::default()).into_iter().map(|s| s.description).collect()
}

/// `n` scene durations, equal to the millisecond, that sum exactly to `duration_s` (every
/// storyboard writer uses them, so a manifest's scenes always add up to its target).
pub fn equal_shares(duration_s: f64, n: usize) -> Vec<f64> {
    let total_ms = (duration_s * 1000.0).round() as u64;
    let n = n.max(1) as u64;
    (0..n).map(|i| (total_ms * (i + 1) / n - total_ms * i / n) as f64 / 1000.0).collect()
}

/// Shorten a clause into a caption of at most `max_chars` characters, cutting at a word
/// boundary and capitalising the first letter.
pub fn caption_from(clause: &str, max_chars: usize) -> String {
    let clause = clause.trim().trim_end_matches(['.', ',', ';', ':']);
    let mut out = String::new();
    if clause.chars().count() <= max_chars {
        out.push_str(clause);
    } else if clause.contains(' ') {
        for word in clause.split_whitespace() {
            if out.chars().count() + word.chars().count() + 1 > max_chars.saturating_sub(1) {
                break;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
        out = out.trim_end_matches([',', ';', ':']).to_owned();
        if out.is_empty() {
            // The first word alone is too long: cut inside it.
            out = clause.chars().take(max_chars.saturating_sub(1)).collect();
        }
        out.push('…');
    } else {
        out = clause.chars().take(max_chars.saturating_sub(1)).collect();
        out.push('…');
    }
    let mut chars = out.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => out,
    }
}

/// A mood and the look that goes with it.
struct MoodLook {
    mood: &'static str,
    words: &'static [&'static str],
    palette: [&'static str; 4],
    lighting: &'static str,
    cameras: [Camera; 3],
}

const MOODS: [MoodLook; 8] = [
    MoodLook {
        mood: "calm",
        words: &["calm", "quiet", "gentle", "soft", "peaceful", "slow", "relaxed", "serene"],
        palette: ["#2f4858", "#86bbd8", "#f6ae2d", "#f4f1de"],
        lighting: "soft diffuse light",
        cameras: [Camera::Dolly, Camera::Static, Camera::Pan],
    },
    MoodLook {
        mood: "energetic",
        words: &["energetic", "bold", "sale", "fast", "exciting", "dynamic", "sport", "goals", "off", "weekend"],
        palette: ["#1b1b3a", "#ff3864", "#ffd23f", "#2de2e6"],
        lighting: "high-key punchy light",
        cameras: [Camera::Zoom, Camera::Pan, Camera::Orbital],
    },
    MoodLook {
        mood: "warm",
        words: &["warm", "cosy", "cozy", "friendly", "dawn", "bakery", "bread", "home", "welcoming"],
        palette: ["#3d2c2e", "#e07a5f", "#f2cc8f", "#f4f1de"],
        lighting: "warm golden light",
        cameras: [Camera::Dolly, Camera::Pan, Camera::Static],
    },
    MoodLook {
        mood: "dramatic",
        words: &["dramatic", "night", "epic", "rescue", "intense", "storm", "ridge", "searching"],
        palette: ["#0b132b", "#1c2541", "#5bc0be", "#f4d35e"],
        lighting: "low-key contrast light",
        cameras: [Camera::Orbital, Camera::Dolly, Camera::Zoom],
    },
    MoodLook {
        mood: "melancholic",
        words: &["melancholic", "sad", "lonely", "cold", "poem", "last", "old", "pauses"],
        palette: ["#1d2d44", "#3e5c76", "#748cab", "#f0ebd8"],
        lighting: "cold blue dusk light",
        cameras: [Camera::Dolly, Camera::Static, Camera::Pan],
    },
    MoodLook {
        mood: "educational",
        words: &["explain", "clear", "educational", "how", "learn", "demo", "steps", "guide"],
        palette: ["#14213d", "#2a9d8f", "#e9c46a", "#ffffff"],
        lighting: "even studio light",
        cameras: [Camera::Pan, Camera::Static, Camera::Zoom],
    },
    MoodLook {
        mood: "hopeful",
        words: &["hopeful", "sunrise", "together", "donate", "future", "bright", "successful"],
        palette: ["#264653", "#2a9d8f", "#f4a261", "#fefae0"],
        lighting: "rising morning light",
        cameras: [Camera::Dolly, Camera::Orbital, Camera::Pan],
    },
    MoodLook {
        mood: "serious",
        words: &["safety", "warning", "report", "reminder", "important", "careful"],
        palette: ["#212529", "#f77f00", "#fcbf49", "#eae2b7"],
        lighting: "clear neutral light",
        cameras: [Camera::Static, Camera::Pan, Camera::Dolly],
    },
];

/// Colour words a brief may name, and the colour the palette then uses.
const COLOUR_WORDS: [(&str, &str); 16] = [
    ("white", "#f8f9fa"),
    ("black", "#111111"),
    ("teal", "#0f9d9a"),
    ("blue", "#1d4e89"),
    ("red", "#d62828"),
    ("orange", "#f77f00"),
    ("yellow", "#fcbf49"),
    ("green", "#2d6a4f"),
    ("purple", "#5a189a"),
    ("pink", "#ff70a6"),
    ("gold", "#d4a017"),
    ("grey", "#6c757d"),
    ("gray", "#6c757d"),
    ("navy", "#14213d"),
    ("turquoise", "#2ec4b6"),
    ("brown", "#7f5539"),
];

fn rgb(hex: &str) -> Rgb {
    // The tables above are literals checked by the `colour_tables_parse` test.
    hex.parse().unwrap_or(Rgb(128, 128, 128))
}

/// Derive consistency markers from the brief's mood, colour and style words.
pub fn markers_from(brief: &str) -> ConsistencyMarkers {
    let lower = brief.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric() && c != '-').filter(|w| !w.is_empty()).collect();
    let look = MOODS
        .iter()
        .map(|m| (m, words.iter().filter(|w| m.words.contains(w)).count()))
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(m, n)| (*n, std::cmp::Reverse(m.mood)))
        .map(|(m, _)| m)
        .unwrap_or(&MOODS[6]);
    let mut palette: Vec<Rgb> = look.palette.iter().map(|h| rgb(h)).collect();
    let named: Vec<Rgb> = COLOUR_WORDS.iter().filter(|(w, _)| words.contains(w)).map(|(_, h)| rgb(h)).collect();
    // Named colours replace the accents (not the dominant background) in order.
    for (slot, colour) in (1..palette.len()).zip(named.iter()) {
        palette[slot] = *colour;
    }
    let style = if words.iter().any(|w| ["minimal", "minimalist", "clean", "simple"].contains(w)) {
        "minimal"
    } else if words.iter().any(|w| ["bold", "energetic", "loud"].contains(w)) {
        "bold"
    } else if words.iter().any(|w| ["film", "cinematic", "dramatic", "brand"].contains(w)) {
        "cinematic"
    } else {
        "clean"
    };
    let lighting = if words.contains(&"dawn") || words.contains(&"sunrise") {
        "warm dawn light"
    } else if words.contains(&"night") {
        "cold night light"
    } else {
        look.lighting
    };
    ConsistencyMarkers { style: style.into(), palette, mood: look.mood.into(), lighting: lighting.into() }
}

/// Limits the planner must respect; the fast track and the full path differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanLimits {
    /// Most scenes allowed.
    pub max_scenes: usize,
    /// Longest caption in characters.
    pub max_caption_chars: usize,
    /// Shortest scene in seconds.
    pub min_scene_s: f64,
}

/// What the planner needs from the sanitised brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// The brief.
    pub brief: String,
    /// Target duration in seconds.
    pub duration_s: u32,
    /// Caption language (ISO 639-1).
    pub language: String,
    /// Whether this is the fast track.
    pub fast_track: bool,
    /// Scene and caption limits.
    pub limits: PlanLimits,
    /// Markers to reuse instead of deriving new ones (consistency cache hit).
    pub reuse_markers: Option<ConsistencyMarkers>,
    /// The pauses and speed-up the voicing stage allows, so narration is sized to fit.
    #[serde(default)]
    pub speech: FitSettings,
}

/// A planned manifest with the analysis and checks behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    /// The manifest.
    pub manifest: ProductionManifest,
    /// The brief split into direction and content (with any steering text dropped).
    pub analysis: BriefAnalysis,
    /// The script checks on the planner's own lines.
    pub script: ScriptReport,
}

/// Plan a manifest from a brief, deterministically.
pub fn plan(req: &PlanRequest) -> Result<ProductionManifest, AgentError> {
    plan_with_report(req).map(|p| p.manifest)
}

/// Plan a manifest from a brief, deterministically, keeping the brief analysis and the
/// script report for the manifest's metadata.
pub fn plan_with_report(req: &PlanRequest) -> Result<Planned, AgentError> {
    let brief = req.brief.trim();
    if brief.is_empty() {
        return Err(AgentError::Permanent("cannot plan an empty brief".into()));
    }
    if req.duration_s == 0 {
        return Err(AgentError::Permanent("cannot plan a video of 0 seconds".into()));
    }
    let analysis = script::analyze(brief, &req.language);
    if analysis.content.units.is_empty() {
        let dropped: Vec<&str> = analysis.suspicious.iter().map(|s| s.text.as_str()).collect();
        return Err(AgentError::Permanent(format!(
            "the brief has nothing left to say once the text that tries to steer the system is dropped ({})",
            dropped.join(" | ")
        )));
    }
    let markers = req.reuse_markers.clone().unwrap_or_else(|| markers_from(&analysis.screened));
    let n =
        script::writer::scene_count(&analysis, req.duration_s as f64, req.limits.max_scenes, req.limits.min_scene_s);
    let shares = equal_shares(req.duration_s as f64, n);
    let texts = script::writer::write(&analysis, &shares, req.limits.max_caption_chars, &req.speech);
    let look = MOODS.iter().find(|m| m.mood == markers.mood).unwrap_or(&MOODS[6]);
    let mut scenes: Vec<Scene> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Scene {
            caption: t.caption.clone(),
            narration: t.narration.clone(),
            description: t.description.clone(),
            duration_s: shares[i],
            camera: look.cameras[i % look.cameras.len()],
            mood: markers.mood.clone(),
        })
        .collect();
    let report = script::review(&mut scenes, &texts, &analysis, "planner", &req.speech);
    let title_source = analysis.content.subject.clone().unwrap_or_else(|| analysis.content.units[0].text.clone());
    let title = script::writer::headline(&title_source, 48);
    let script_text = scenes.iter().map(|s| s.narration.as_str()).collect::<Vec<_>>().join(" ");
    Ok(Planned {
        manifest: ProductionManifest {
            title,
            script: script_text,
            scenes,
            markers,
            language: req.language.clone(),
            fast_track: req.fast_track,
        },
        analysis,
        script: report,
    })
}

/// The planner as an agent, so the driver treats it like any other.
#[derive(Debug, Clone, Default)]
pub struct Planner;

/// The planner's version; bump when its output for the same input changes.
pub const PLANNER_VERSION: &str = "2.0.0";

impl Agent for Planner {
    type Input = PlanRequest;
    type Output = ProductionManifest;
    const NAME: &'static str = "planner";

    async fn run(
        &self,
        input: PlanRequest,
        _ctx: &AgentContext,
    ) -> Result<AgentOutput<ProductionManifest>, AgentError> {
        let started = Instant::now();
        let value = plan(&input)?;
        Ok(AgentOutput {
            value,
            metadata: AgentMetadata {
                model_used: "planner".into(),
                processing_ms: started.elapsed().as_millis() as u64,
                version: PLANNER_VERSION.into(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAKERY: &str = "A calm 15-second teaser for a neighbourhood bakery: fresh bread at dawn, warm light, the shop opening its doors.";
    const HEAT_PUMP: &str = "Explain in four scenes how a heat pump moves heat from cold outdoor air into a warm house: the outdoor unit, the refrigerant loop, the compressor, and the indoor radiators. Friendly, clear, educational tone.";

    fn fast(brief: &str, duration_s: u32) -> PlanRequest {
        PlanRequest {
            brief: brief.into(),
            duration_s,
            language: "en".into(),
            fast_track: true,
            limits: PlanLimits { max_scenes: 3, max_caption_chars: 60, min_scene_s: 3.0 },
            reuse_markers: None,
            speech: FitSettings::default(),
        }
    }

    #[test]
    fn beats_carry_the_content_in_order_without_directions() {
        let b = beats(HEAT_PUMP, 4);
        assert_eq!(b.len(), 4);
        let all = b.join(" | ");
        for item in ["outdoor unit", "refrigerant loop", "compressor", "indoor radiators"] {
            assert!(all.contains(item), "{item}: {all}");
        }
        assert!(all.find("outdoor unit") < all.find("indoor radiators"), "{all}");
        for direction in ["Explain", "four scenes", "tone", "Friendly"] {
            assert!(!all.contains(direction), "{direction}: {all}");
        }
        let rescue = "A brand film for a rescue charity. Open on a snowy ridge at night, then the team training, \
                      a rescue at sunrise. Dramatic but hopeful.";
        let b = beats(rescue, 3).join(" | ");
        assert!(b.contains("a snowy ridge at night") && b.contains("the team training"), "{b}");
        assert!(!b.contains("film") && !b.contains("Open on") && !b.contains("Dramatic"), "{b}");
        // More scenes than points: the last scenes sign off with the subject, nothing invented.
        assert_eq!(beats("Fresh bread.", 2), ["Fresh bread", "Fresh bread"]);
    }

    #[test]
    fn colour_tables_parse() {
        for m in &MOODS {
            for h in m.palette {
                h.parse::<Rgb>().unwrap();
            }
        }
        for (_, h) in COLOUR_WORDS {
            h.parse::<Rgb>().unwrap();
        }
    }

    #[test]
    fn simple_brief_is_below_fast_track_threshold() {
        let c = complexity(BAKERY, 15);
        assert!(c.score < 0.3, "{c:?}");
        assert_eq!(c.dialogue_marker_count, 0);
    }

    #[test]
    fn long_multi_scene_dialogue_brief_scores_high() {
        let brief =
            format!("{HEAT_PUMP} Then the engineer says \"it is that simple\". Finally, a voice-over interview.");
        let c = complexity(&brief, 90);
        assert!(c.score >= 0.3, "{c:?}");
        assert!(c.dialogue_marker_count >= 2, "{c:?}");
        assert!(c.scene_cue_count >= 3, "{c:?}");
    }

    #[test]
    fn complexity_grows_with_duration_and_is_bounded() {
        let a = complexity(BAKERY, 10).score;
        let b = complexity(BAKERY, 120).score;
        assert!(b > a);
        assert!((0.0..=1.0).contains(&complexity(&"word. ".repeat(2000), 300).score));
    }

    #[test]
    fn scene_count_phrases_are_understood() {
        assert_eq!(requested_scene_count("explain in four scenes how"), Some(4));
        assert_eq!(requested_scene_count("3 scenes, fast"), Some(3));
        assert_eq!(requested_scene_count("no count here"), None);
    }

    #[test]
    fn fast_track_plan_respects_limits_and_sums_to_duration() {
        let m = plan(&fast(BAKERY, 15)).unwrap();
        assert!(m.scenes.len() <= 3 && !m.scenes.is_empty());
        assert!((m.duration_s() - 15.0).abs() < 1e-9);
        for s in &m.scenes {
            assert!(!s.caption.is_empty() && s.caption.chars().count() <= 60, "{s:?}");
        }
        assert!(m.fast_track);
        assert_eq!(m.markers.mood, "warm");
        assert_eq!(m.markers.lighting, "warm dawn light");
        // The subject, not the direction, heads the video.
        assert!(m.scenes.iter().any(|s| s.caption.contains("bakery") || s.narration.contains("bakery")), "{m:#?}");
        for s in &m.scenes {
            for direction in ["calm", "15-second", "teaser"] {
                assert!(!s.caption.to_lowercase().contains(direction), "{s:?}");
                assert!(!s.narration.to_lowercase().contains(direction), "{s:?}");
            }
        }
    }

    #[test]
    fn full_path_honours_requested_scene_count() {
        let mut req = fast(HEAT_PUMP, 45);
        req.fast_track = false;
        req.limits.max_scenes = 8;
        let m = plan(&req).unwrap();
        assert_eq!(m.scenes.len(), 4);
        assert_eq!(m.markers.mood, "educational");
        let all: String = m.scenes.iter().map(|s| format!("{} {} ", s.description, s.narration)).collect();
        assert!(all.contains("compressor") && all.contains("refrigerant"), "{all}");
        assert!(!all.contains("Explain") && !all.contains("educational"), "{all}");
    }

    #[test]
    fn named_colours_enter_the_palette() {
        let m = markers_from("Minimal style, white and teal.");
        assert_eq!(m.style, "minimal");
        assert!(m.palette.contains(&rgb("#0f9d9a")) && m.palette.contains(&rgb("#f8f9fa")));
    }

    #[test]
    fn planning_is_deterministic_and_keeps_cjk() {
        let brief = "東京の朝。パン屋が開く。温かい光。";
        assert_eq!(plan(&fast(brief, 12)).unwrap(), plan(&fast(brief, 12)).unwrap());
        let m = plan(&fast(brief, 12)).unwrap();
        assert!(m.scenes.iter().all(|s| !s.caption.is_empty()));
        assert!(m.scenes[0].caption.contains("東京"));
    }

    #[test]
    fn captions_are_cut_at_word_boundaries() {
        let c = caption_from("the quick brown fox jumps over the lazy dog again and again", 20);
        assert!(c.chars().count() <= 20, "{c}");
        assert!(c.starts_with("The quick"));
        assert!(c.ends_with('…'));
    }
}
