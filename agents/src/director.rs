//! CreativeDirector: the local LLM (SmolLM2-135M-Instruct) writes the storyboard.
//!
//! A 135M model does not write JSON reliably, so the director asks for one line per scene in
//! a fixed pipe-separated format (`SCENE n | camera | mood | caption | description`), primes
//! the answer with `SCENE 1 |`, parses tolerantly, validates against the brief's
//! constraints, repairs what can be repaired honestly (a caption cut at a word boundary, an
//! unknown camera move replaced, missing scenes asked for again), and ranks best-of-N
//! candidates by embedding similarity to the brief. Durations are assigned by the director,
//! not the model: equal shares summing exactly to the target. Consistency markers come from
//! the brief's words (the planner's rules) or the consistency cache. Sampling is seeded, so
//! the same brief, seed and settings give the same manifest. When no candidate passes, the
//! caller falls back to the deterministic planner and records why.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::domain::{Camera, ProductionManifest, Scene};
use crate::models::llm::chat_prompt;
use crate::models::{GenerationParams, Registry};
use crate::planner::{self, PlanRequest};
use crate::{Agent, AgentContext, AgentError, AgentMetadata, AgentOutput};

/// The director's version; bump when its output for the same input changes.
pub const DIRECTOR_VERSION: &str = "1.0.0";

/// Tokens one scene line may take (the budget is this times the scene count, plus slack).
const TOKENS_PER_SCENE: usize = 48;
/// Mean brief similarity under which a candidate is judged off-topic and not used.
pub const MIN_RELEVANCE: f32 = 0.3;

/// How the director runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectorSettings {
    /// Candidates sampled; the best by brief similarity wins.
    pub candidates: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Repair rounds per candidate (asking again for missing scenes).
    pub repair_rounds: usize,
}

impl Default for DirectorSettings {
    fn default() -> Self {
        Self { candidates: 3, temperature: 0.7, repair_rounds: 1 }
    }
}

/// One parsed scene line, before validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneLine {
    /// The scene number the model wrote.
    pub number: usize,
    /// The camera field as written.
    pub camera: String,
    /// The mood field as written.
    pub mood: String,
    /// The caption as written.
    pub caption: String,
    /// The description as written.
    pub description: String,
}

/// Parse every line that looks like a scene line. Tolerates a missing `SCENE` keyword, extra
/// spaces, markdown bullets, `:` after the number and a missing trailing field; ignores
/// everything else.
pub fn parse_scenes(text: &str) -> Vec<SceneLine> {
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim().trim_start_matches(['-', '*', '#', ' ']).trim();
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        if fields.len() < 4 {
            continue;
        }
        let head = fields[0].to_ascii_lowercase();
        let head = head.trim_start_matches("scene").trim().trim_end_matches([':', '.']).trim();
        let Ok(number) = head.parse::<usize>() else { continue };
        let description = fields.get(4..).map(|rest| rest.join(" ").trim().to_owned()).unwrap_or_default();
        out.push(SceneLine {
            number,
            camera: fields[1].to_owned(),
            mood: fields[2].to_owned(),
            caption: fields[3].trim_matches(['"', '\'']).trim().to_owned(),
            description,
        });
    }
    out
}

/// Constraints a storyboard must meet.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraints {
    /// Exact scene count.
    pub scenes: usize,
    /// Target duration, s.
    pub duration_s: f64,
    /// Longest caption, characters.
    pub max_caption_chars: usize,
}

/// Scene count for a brief: the count it asks for, else one scene per ~6 s, within limits.
pub fn scene_count(req: &PlanRequest) -> usize {
    let by_duration = ((req.duration_s as f64 / 6.0).ceil() as usize).max(1);
    let max_by_length = ((req.duration_s as f64 / req.limits.min_scene_s).floor() as usize).max(1);
    planner::requested_scene_count(&req.brief.to_lowercase())
        .unwrap_or(by_duration)
        .clamp(1, req.limits.max_scenes.max(1))
        .min(max_by_length)
}

/// A validated storyboard and the repairs that made it valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Storyboard {
    /// Scenes with durations assigned.
    pub scenes: Vec<Scene>,
    /// What was changed, in words.
    pub repairs: Vec<String>,
}

/// Validate parsed lines against the constraints, repairing what can be repaired: captions
/// cut at a word boundary, unknown cameras replaced in order, moods defaulted, durations
/// assigned equally. Fails (naming the problem) when scenes are missing or a caption is empty.
pub fn validate(lines: &[SceneLine], c: &Constraints, default_mood: &str) -> Result<Storyboard, String> {
    let mut repairs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let lines: Vec<&SceneLine> = lines.iter().filter(|l| seen.insert(l.number)).collect();
    if lines.len() < c.scenes {
        return Err(format!("{} of {} scenes written", lines.len(), c.scenes));
    }
    if lines.len() > c.scenes {
        repairs.push(format!("dropped {} extra scene(s)", lines.len() - c.scenes));
    }
    let total_ms = (c.duration_s * 1000.0).round() as u64;
    let n = c.scenes as u64;
    let mut scenes = Vec::with_capacity(c.scenes);
    for (i, l) in lines.iter().take(c.scenes).enumerate() {
        let mut caption = l.caption.split_whitespace().collect::<Vec<_>>().join(" ");
        if !usable_caption(&caption) {
            if usable_caption(&l.description) {
                repairs.push(format!("scene {} caption '{}' replaced from its description", i + 1, l.caption));
                caption = planner::caption_from(l.description.trim(), c.max_caption_chars);
            } else {
                return Err(format!("scene {} has no usable caption", i + 1));
            }
        }
        let caption = if caption.chars().count() > c.max_caption_chars {
            let cut = planner::caption_from(&caption, c.max_caption_chars);
            repairs.push(format!("scene {} caption shortened to {} characters", i + 1, cut.chars().count()));
            cut
        } else {
            caption
        };
        let camera_word = l.camera.split(|ch: char| !ch.is_alphabetic()).find_map(|w| w.parse::<Camera>().ok());
        let camera = match camera_word {
            Some(cam) => cam,
            None => {
                let cam = Camera::ALL[i % Camera::ALL.len()];
                repairs.push(format!("scene {} camera '{}' replaced by {cam:?}", i + 1, l.camera));
                cam
            }
        };
        let mood_field = l.mood.to_lowercase();
        let mood = mood_field.split(|ch: char| !ch.is_alphabetic()).find(|w| MOOD_WORDS.contains(w));
        let mood = match mood {
            Some(m) => m.to_owned(),
            None => {
                repairs.push(format!("scene {} mood '{}' replaced by '{default_mood}'", i + 1, l.mood));
                default_mood.to_owned()
            }
        };
        let description = if l.description.trim().is_empty() {
            repairs.push(format!("scene {} description taken from its caption", i + 1));
            caption.clone()
        } else {
            planner::caption_from(l.description.trim(), MAX_DESCRIPTION_CHARS)
        };
        let i = i as u64;
        let duration_s = (total_ms * (i + 1) / n - total_ms * i / n) as f64 / 1000.0;
        scenes.push(Scene { description, caption, duration_s, camera, mood });
    }
    Ok(Storyboard { scenes, repairs })
}

/// One sampled candidate and how it fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Sampler seed.
    pub seed: u64,
    /// Raw model output (prompt excluded).
    pub text: String,
    /// Tokens generated, all rounds.
    pub tokens: usize,
    /// Why it was rejected, if it was.
    pub rejected: Option<String>,
    /// Repairs applied.
    pub repairs: Vec<String>,
    /// Mean cosine similarity of each scene (caption + description) to the brief.
    pub relevance: Option<f32>,
}

/// What the director reports next to the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectorReport {
    /// Every candidate, in sampling order.
    pub candidates: Vec<Candidate>,
    /// Index of the chosen candidate.
    pub chosen: usize,
    /// Time to load the LLM in this process (0 when already loaded), ms.
    pub llm_load_ms: u64,
    /// Time to load the embedder (0 when already loaded), ms.
    pub embedder_load_ms: u64,
    /// Prompt tokens per second, mean over candidates.
    pub prefill_tok_s: f64,
    /// Generated tokens per second, mean over candidates.
    pub generate_tok_s: f64,
    /// Where the consistency markers came from.
    pub markers_source: String,
}

/// The director's output: the manifest and how it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Directed {
    /// The production manifest.
    pub manifest: ProductionManifest,
    /// Candidates, timings, repairs.
    pub report: DirectorReport,
}

const EXAMPLE_BRIEF: &str = "A short ad in three scenes for a city bike-sharing service: quick, green, everywhere.";
const EXAMPLE_ANSWER: &str = "SCENE 1 | pan | energetic | Ride across town | Commuters ride shared bikes through a busy street\n\
SCENE 2 | zoom | bright | Unlock in seconds | A phone unlocks a bike at a docking station\n\
SCENE 3 | static | hopeful | Cleaner air for all | A green park where people leave their bikes";

fn system_prompt(max_caption: usize) -> String {
    format!(
        "You write storyboards for short videos. Answer only with scene lines in this format:\n\
SCENE <number> | <camera> | <mood> | <caption> | <description>\n\
camera is one of: dolly, pan, zoom, static, orbital. mood is one word. caption is a short on-screen line \
(at most {max_caption} characters) about the brief. description says what is seen."
    )
}

fn user_prompt(brief: &str, scenes: usize) -> String {
    format!("Brief: {brief}\nWrite exactly {scenes} scenes.")
}

/// The full prompt for a brief, ending with `SCENE 1 |` so the answer starts in format.
pub fn prompt(brief: &str, c: &Constraints) -> String {
    let system = system_prompt(c.max_caption_chars);
    let mut p = chat_prompt(&system, &user_prompt(EXAMPLE_BRIEF, 3));
    p.push_str(EXAMPLE_ANSWER);
    p.push_str("<|im_end|>\n<|im_start|>user\n");
    p.push_str(&user_prompt(brief, c.scenes));
    p.push_str("<|im_end|>\n<|im_start|>assistant\n");
    p.push_str(PRIME);
    p
}

/// Mood words a scene may carry (the renderer and semantic QA know these).
const MOOD_WORDS: [&str; 14] = [
    "calm",
    "energetic",
    "warm",
    "dramatic",
    "melancholic",
    "educational",
    "hopeful",
    "serious",
    "friendly",
    "playful",
    "cheerful",
    "busy",
    "bright",
    "quiet",
];
/// Longest description kept.
const MAX_DESCRIPTION_CHARS: usize = 240;

/// A caption worth showing: at least two words with letters, or one word of 3+ letters
/// that is not a unit like "min".
fn usable_caption(s: &str) -> bool {
    let words: Vec<&str> =
        s.split_whitespace().filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2).collect();
    words.len() >= 2 || (words.len() == 1 && words[0].chars().filter(|c| c.is_alphabetic()).count() >= 4)
}

/// How the assistant's answer is primed, so it starts in the scene-line format.
const PRIME: &str = "SCENE 1 |";

/// Lines with a usable caption, first occurrence of each scene number, in order.
fn usable_lines(lines: &[SceneLine]) -> Vec<&SceneLine> {
    let mut seen = std::collections::BTreeSet::new();
    lines
        .iter()
        .filter(|l| usable_caption(&l.caption) || usable_caption(&l.description))
        .filter(|l| seen.insert(l.number))
        .collect()
}

/// The CreativeDirector agent. Holds the shared model registry.
#[derive(Debug, Clone)]
pub struct CreativeDirector {
    /// Where the models come from.
    pub registry: std::sync::Arc<Registry>,
    /// Candidates, temperature, repairs.
    pub settings: DirectorSettings,
}

impl CreativeDirector {
    /// Write a manifest for `req` (blocking, CPU-bound: async callers run it on a blocking
    /// thread, as the pipeline's plan stage does).
    pub fn direct(&self, req: &PlanRequest, ctx: &AgentContext) -> Result<Directed, AgentError> {
        let brief = req.brief.trim();
        if brief.is_empty() {
            return Err(AgentError::Permanent("cannot direct an empty brief".into()));
        }
        let model_err = |e: crate::models::ModelError| AgentError::Permanent(e.to_string());
        let (llm, llm_load) = self.registry.llm().map_err(model_err)?;
        let (embedder, emb_load) = self.registry.embedder().map_err(model_err)?;
        let (markers, markers_source) = match &req.reuse_markers {
            Some(m) => (m.clone(), "consistency cache (a similar earlier brief of the same brand)".to_owned()),
            None => (planner::markers_from(brief), "derived from the brief's words by the planner's rules".to_owned()),
        };
        let c = Constraints {
            scenes: scene_count(req),
            duration_s: req.duration_s as f64,
            max_caption_chars: req.limits.max_caption_chars,
        };
        let base = prompt(brief, &c);
        let head = &base[..base.len() - PRIME.len()];
        let n = self.settings.candidates.max(1);
        let max_tokens = TOKENS_PER_SCENE * c.scenes + 16;
        let budget = (n * max_tokens * (1 + self.settings.repair_rounds)) as f32;
        let brief_emb = embedder.embed(&[brief]).map_err(model_err)?.remove(0);
        let mut candidates = Vec::with_capacity(n);
        let mut boards = Vec::with_capacity(n);
        let (mut prefill, mut gen_rate) = (0.0, 0.0);
        let mut tokens_done = 0usize;
        let mut guard = llm.lock().unwrap_or_else(|p| p.into_inner());
        let llm = &mut *guard;
        let newline_table = llm.newline_table();
        for k in 0..n {
            let seed = ctx.seed.wrapping_add(k as u64);
            // The first candidate samples cooler (closer to the model's most likely storyboard);
            // the others explore at the configured temperature.
            let temperature = if k == 0 { self.settings.temperature.min(0.3) } else { self.settings.temperature };
            let mut params =
                GenerationParams { max_tokens, temperature, seed, ignore_eos: true, ..GenerationParams::default() };
            let mut text = String::from(PRIME);
            let mut tokens = 0;
            let mut result = Err(String::new());
            for round in 0..=self.settings.repair_rounds {
                let p = format!("{head}{text}");
                // Stop once every missing scene line has been finished.
                let lines_needed = c.scenes.saturating_sub(text.lines().count() - 1);
                let mut newlines = 0;
                let mut on_token = |t: usize, id: u32| {
                    ctx.progress.report((tokens_done + t) as f32 / budget);
                    newlines += newline_table.get(id as usize).copied().unwrap_or(0) as usize;
                    newlines < lines_needed && !ctx.cancel.is_cancelled()
                };
                let g = llm.generate(&p, &params, &mut on_token).map_err(model_err)?;
                if ctx.cancel.is_cancelled() {
                    return Err(AgentError::Cancelled);
                }
                tokens_done += g.generated_tokens;
                tokens += g.generated_tokens;
                if round == 0 {
                    prefill += g.prefill_tok_s() / n as f64;
                    gen_rate += g.generate_tok_s() / n as f64;
                }
                text.push_str(&g.text);
                let lines = parse_scenes(&text);
                result = validate(&lines, &c, &markers.mood);
                if result.is_ok() {
                    break;
                }
                // Repair: keep the usable lines written so far, renumbered, and ask for the next.
                let kept = usable_lines(&lines);
                let next = kept.len() + 1;
                text = kept
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        format!("SCENE {} | {} | {} | {} | {}\n", i + 1, l.camera, l.mood, l.caption, l.description)
                    })
                    .collect::<String>();
                text.push_str(&format!("SCENE {next} |"));
                if kept.is_empty() {
                    text = PRIME.into();
                }
                params.seed = params.seed.wrapping_add(1000);
            }
            let mut cand =
                Candidate { seed, text: text.clone(), tokens, rejected: None, repairs: vec![], relevance: None };
            match result {
                Ok(board) => {
                    let texts: Vec<String> =
                        board.scenes.iter().map(|s| format!("{}. {}", s.caption, s.description)).collect();
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    let embs = embedder.embed(&refs).map_err(model_err)?;
                    let rel = embs.iter().map(|e| crate::models::embed::cosine(e, &brief_emb)).sum::<f32>()
                        / embs.len().max(1) as f32;
                    cand.relevance = Some(rel);
                    cand.repairs = board.repairs.clone();
                    if rel < MIN_RELEVANCE {
                        cand.rejected = Some(format!("off-topic: brief similarity {rel:.3} < {MIN_RELEVANCE}"));
                        boards.push(None);
                    } else {
                        boards.push(Some(board));
                    }
                }
                Err(e) => {
                    cand.rejected = Some(e);
                    boards.push(None);
                }
            }
            candidates.push(cand);
        }
        drop(guard);
        let chosen = (0..n)
            .filter(|i| boards[*i].is_some())
            .max_by(|a, b| {
                let key = |i: usize| candidates[i].relevance.unwrap_or(0.0) - 0.01 * candidates[i].repairs.len() as f32;
                key(*a).total_cmp(&key(*b)).then(b.cmp(a))
            })
            .ok_or_else(|| {
                let why: Vec<String> = candidates
                    .iter()
                    .map(|c| format!("seed {}: {}", c.seed, c.rejected.clone().unwrap_or_default()))
                    .collect();
                AgentError::Permanent(format!("no valid storyboard from {n} candidate(s): {}", why.join("; ")))
            })?;
        let board = boards[chosen].take().expect("chosen candidate has a board");
        let script = board
            .scenes
            .iter()
            .map(|s| s.caption.trim_end_matches(['.', '!']).to_owned() + ".")
            .collect::<Vec<_>>()
            .join(" ");
        let title = planner::caption_from(&board.scenes[0].caption, 48).trim_end_matches('…').to_owned();
        Ok(Directed {
            manifest: ProductionManifest {
                title,
                script,
                scenes: board.scenes,
                markers,
                language: req.language.clone(),
                fast_track: req.fast_track,
            },
            report: DirectorReport {
                candidates,
                chosen,
                llm_load_ms: llm_load.as_millis() as u64,
                embedder_load_ms: emb_load.as_millis() as u64,
                prefill_tok_s: prefill,
                generate_tok_s: gen_rate,
                markers_source,
            },
        })
    }
}

impl Agent for CreativeDirector {
    type Input = PlanRequest;
    type Output = Directed;
    const NAME: &'static str = "creative_director";

    async fn run(&self, input: PlanRequest, ctx: &AgentContext) -> Result<AgentOutput<Directed>, AgentError> {
        let started = Instant::now();
        let value = self.direct(&input, ctx)?;
        ctx.progress.report(1.0);
        Ok(AgentOutput {
            value,
            metadata: AgentMetadata {
                model_used: crate::models::SMOLLM2_ID.into(),
                processing_ms: started.elapsed().as_millis() as u64,
                version: DIRECTOR_VERSION.into(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(scenes: usize) -> Constraints {
        Constraints { scenes, duration_s: 10.0, max_caption_chars: 30 }
    }

    #[test]
    fn parser_tolerates_noise_and_validation_assigns_durations() {
        let text = " 1 | Dolly | Calm | Fresh bread at dawn | A baker opens the oven\n\
                    chatter the model added\n\
                    - SCENE 2: | orbit | warm. | \"The doors open\" | Light spills onto the street\n\
                    SCENE 3 | jump | | A very long caption that will not fit on the screen at all |";
        let lines = parse_scenes(text);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[1].caption, "The doors open");
        let board = validate(&lines, &c(3), "calm").unwrap();
        let total: f64 = board.scenes.iter().map(|s| s.duration_s).sum();
        assert!((total - 10.0).abs() < 1e-9);
        assert_eq!(board.scenes[1].camera, Camera::Orbital);
        assert!(board.scenes[2].caption.chars().count() <= 30);
        assert_eq!(board.scenes[2].mood, "calm");
        assert!(board.repairs.iter().any(|r| r.contains("camera 'jump'")), "{:?}", board.repairs);
        assert!(board.repairs.iter().any(|r| r.contains("description taken")), "{:?}", board.repairs);
    }

    #[test]
    fn missing_scenes_and_empty_captions_are_rejected() {
        let lines = parse_scenes("SCENE 1 | pan | calm | Hello there | A street");
        assert!(validate(&lines, &c(2), "calm").unwrap_err().contains("1 of 2"));
        let lines = parse_scenes("SCENE 1 | pan | calm | 20 min | x\nSCENE 2 | pan | calm | ok then | x");
        assert!(validate(&lines, &c(2), "calm").unwrap_err().contains("no usable caption"));
        // An unusable caption is rebuilt from a usable description, and the repair is recorded.
        let lines = parse_scenes(
            "SCENE 1 | pan | calm | | The street wakes up\nSCENE 2 | pan, zoom | a sunny morning | ok then | x",
        );
        let board = validate(&lines, &c(2), "calm").unwrap();
        assert_eq!(board.scenes[0].caption, "The street wakes up");
        assert_eq!(board.scenes[1].camera, Camera::Pan);
        assert_eq!(board.scenes[1].mood, "calm");
        assert!(board.repairs.iter().any(|r| r.contains("replaced from its description")), "{:?}", board.repairs);
    }

    #[test]
    fn prompt_ends_primed_for_the_first_scene() {
        let p = prompt("A teaser for a bakery", &c(3));
        assert!(p.ends_with("<|im_start|>assistant\nSCENE 1 |"));
        assert!(p.contains("Write exactly 3 scenes."));
    }
}
