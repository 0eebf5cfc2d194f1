//! CreativeDirector: the local LLM (SmolLM2-135M-Instruct) writes the storyboard.
//!
//! A 135M model does not write JSON reliably, and asked for a whole storyboard at once it
//! often stops early or wanders off the brief. So the director asks for one line per scene in
//! a fixed pipe-separated format (`SCENE n | camera | mood | caption | description`) and
//! writes the storyboard scene by scene: the prompt (instructions, one worked example, the
//! brief) is read once; for scene `n` the answer so far is primed with `SCENE n |`, the
//! camera move and the mood are chosen from their closed sets by the model's next-token
//! probabilities (constrained decoding: a 135M model asked to write them often writes
//! something else), and N candidates for the free fields (caption, description) are sampled
//! from that shared prefix (seeded, each stopping at its line break). Each line is parsed tolerantly and validated (usable caption, known camera move,
//! caption short enough to read, not a copy of the worked example or of an earlier scene);
//! valid lines are ranked by embedding similarity to the brief, and the best one joins the
//! answer before the next scene is sampled. A scene with no valid line gets up to
//! `repair_rounds` more rounds of sampling. Durations are assigned by the director: equal
//! shares summing exactly to the target. Consistency markers come from the brief's words (the
//! planner's rules) or the consistency cache. The same brief, seed and settings give the same
//! manifest. When a scene cannot be written, the caller falls back to the deterministic
//! planner and records why.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::domain::{Camera, ProductionManifest, Scene};
use crate::models::llm::chat_prompt;
use crate::models::{GenerationParams, Registry};
use crate::planner::{self, PlanRequest};
use crate::script::{self, BriefAnalysis, ScriptReport};
use crate::{Agent, AgentContext, AgentError, AgentMetadata, AgentOutput};

/// The director's version; bump when its output for the same input changes.
pub const DIRECTOR_VERSION: &str = "2.1.0";

/// Tokens one scene line may take.
const TOKENS_PER_SCENE: usize = 48;
/// Brief similarity under which a scene line is judged off-topic and not used.
pub const MIN_RELEVANCE: f32 = 0.3;
/// Weight of the similarity to earlier scenes subtracted from a line's score (variety).
const REPETITION_WEIGHT: f32 = 0.3;
/// Score subtracted from a line whose caption was too long and had to be cut.
const CUT_CAPTION_PENALTY: f32 = 0.1;

/// How the director runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectorSettings {
    /// Candidate lines sampled per scene; the valid one most similar to the brief wins.
    pub candidates: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Extra sampling rounds for a scene none of whose candidates was valid.
    pub repair_rounds: usize,
}

impl Default for DirectorSettings {
    fn default() -> Self {
        Self { candidates: 3, temperature: 0.7, repair_rounds: 1 }
    }
}

/// Where a long caption may be cut and still read as a phrase.
const CLAUSE_BREAKS: [&str; 9] = [", ", "; ", ": ", " – ", " - ", " that ", " which ", " who ", " and "];

/// Shorten a caption to `max_chars`: at the last clause break that fits and leaves a usable
/// phrase ("The outdoor unit is a heat pump that can also cool a home" → "The outdoor unit is
/// a heat pump"), else at a word boundary with an ellipsis.
pub fn shorten_caption(caption: &str, max_chars: usize) -> String {
    let fits = |i: usize| caption[..i].chars().count() <= max_chars;
    let best = CLAUSE_BREAKS
        .iter()
        .flat_map(|b| caption.match_indices(b).map(|(i, _)| i))
        .filter(|&i| fits(i) && usable_caption(&caption[..i]))
        .max();
    match best {
        Some(i) => caption[..i].trim_end_matches([',', ';', ':', '.']).to_owned(),
        None => planner::caption_from(caption, max_chars),
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
    let shares = planner::equal_shares(c.duration_s, c.scenes);
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
            let cut = shorten_caption(&caption, c.max_caption_chars);
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
        scenes.push(Scene {
            narration: description.clone(),
            description,
            caption,
            duration_s: shares[i],
            camera,
            mood,
        });
    }
    Ok(Storyboard { scenes, repairs })
}

/// One sampled scene line and how it fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The scene it was sampled for (1-based).
    pub scene: usize,
    /// Sampler seed.
    pub seed: u64,
    /// The line as the model wrote it, after `SCENE n | camera | mood |` (the director chose
    /// those two fields from the model's next-token probabilities).
    pub text: String,
    /// Tokens generated.
    pub tokens: usize,
    /// Why it was rejected, if it was.
    pub rejected: Option<String>,
    /// Repairs applied.
    pub repairs: Vec<String>,
    /// Cosine similarity of the scene (caption + description) to the brief.
    pub relevance: Option<f32>,
    /// Highest similarity to an earlier chosen scene.
    pub repetition: Option<f32>,
}

/// What the director reports next to the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectorReport {
    /// Every sampled line, in sampling order.
    pub candidates: Vec<Candidate>,
    /// Index into `candidates` of the line chosen for each scene.
    pub chosen: Vec<usize>,
    /// Mean brief similarity of the chosen scenes.
    pub relevance: f32,
    /// Tokens generated, all candidates.
    pub generated_tokens: usize,
    /// Time to load the LLM in this process (0 when already loaded), ms.
    pub llm_load_ms: u64,
    /// Time to load the embedder (0 when already loaded), ms.
    pub embedder_load_ms: u64,
    /// Prompt tokens read per second (the shared prefixes).
    pub prefill_tok_s: f64,
    /// Generated tokens per second, all candidates.
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
    /// The script checks on the model's lines and what was repaired.
    pub script: ScriptReport,
    /// The brief split into direction and content (steering text dropped).
    pub analysis: BriefAnalysis,
}

const EXAMPLE_BRIEF: &str = "A short ad in three scenes for a city bike-sharing service: unlock a bike with the app, ride across town, park it anywhere.";
const EXAMPLE_BEATS: [&str; 3] = ["unlock a bike with the app", "ride across town", "park it anywhere"];
const EXAMPLE_ANSWER: &str = "SCENE 1 | zoom | bright | Tap, unlock, go | A phone unlocks a shared bike at a docking station\n\
SCENE 2 | pan | energetic | The city is yours | Commuters ride shared bikes down a busy avenue\n\
SCENE 3 | static | hopeful | Leave it by the park | A rider leaves the bike by a park bench and walks away";

fn system_prompt(max_caption: usize) -> String {
    let cameras = Camera::ALL.map(Camera::as_str).join(", ");
    format!(
        "You write storyboards for short videos. Answer only with scene lines in this format:\n\
SCENE <number> | <camera> | <mood> | <caption> | <description>\n\
camera is one of: {cameras}. mood is one word. caption is a short on-screen line \
(at most {max_caption} characters) about the scene's topic. description says what is seen."
    )
}

fn user_prompt(brief: &str, beats: &[String]) -> String {
    let mut p = format!("Brief: {brief}\nWrite exactly {} scenes, one per topic:\n", beats.len());
    for (i, b) in beats.iter().enumerate() {
        p.push_str(&format!("{}. {b}\n", i + 1));
    }
    p.trim_end().to_owned()
}

/// The prompt for a brief up to the assistant's answer: instructions, the worked example,
/// the brief. Scene lines are appended to it, each primed with [`scene_prime`].
pub fn prompt(brief: &str, beats: &[String], c: &Constraints) -> String {
    let system = system_prompt(c.max_caption_chars);
    let example: Vec<String> = EXAMPLE_BEATS.iter().map(|b| (*b).to_owned()).collect();
    let mut p = chat_prompt(&system, &user_prompt(EXAMPLE_BRIEF, &example));
    p.push_str(EXAMPLE_ANSWER);
    p.push_str("<|im_end|>\n<|im_start|>user\n");
    p.push_str(&user_prompt(brief, beats));
    p.push_str("<|im_end|>\n<|im_start|>assistant\n");
    p
}

/// How scene `n`'s line is primed, so the model continues in format.
pub fn scene_prime(n: usize) -> String {
    format!("SCENE {n} |")
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

/// A caption reduced to lowercase words, for comparing captions that differ only in
/// punctuation or an ellipsis.
fn normalized(caption: &str) -> String {
    caption.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Captions of the worked example, normalised: a line repeating one is a copy, not a scene.
fn example_captions() -> Vec<String> {
    parse_scenes(EXAMPLE_ANSWER).into_iter().map(|l| normalized(&l.caption)).collect()
}

/// The moods a scene may take for this brief: the brief's own mood (from its markers) and any
/// other mood word the brief uses. The model chooses among them; it does not get to make an
/// educational brief "energetic" because the worked example was.
fn mood_options(brief: &str, markers_mood: &str) -> Vec<&'static str> {
    let lower = brief.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphabetic()).collect();
    let mut out: Vec<&'static str> = MOOD_WORDS.iter().copied().filter(|m| *m == markers_mood).collect();
    out.extend(MOOD_WORDS.iter().copied().filter(|m| *m != markers_mood && words.contains(m)));
    if out.is_empty() {
        out.push("calm");
    }
    out
}

/// The canonical text of a chosen scene, as it goes back into the prompt.
fn scene_line(n: usize, s: &Scene) -> String {
    format!("SCENE {n} | {} | {} | {} | {}\n", s.camera.as_str(), s.mood, s.caption, s.description)
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
        if req.brief.trim().is_empty() {
            return Err(AgentError::Permanent("cannot direct an empty brief".into()));
        }
        // The model reads the brief without text that tries to steer the system.
        let analysis = script::analyze(req.brief.trim(), &req.language);
        let brief = analysis.screened.trim();
        if brief.is_empty() || analysis.content.units.is_empty() {
            return Err(AgentError::Permanent(
                "the brief has nothing left to say once steering text is dropped".into(),
            ));
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
        let n = self.settings.candidates.max(1);
        let budget = (c.scenes * n * (1 + self.settings.repair_rounds) * TOKENS_PER_SCENE) as f32;
        // The planner's lines for the same scenes: the beats the model is asked to cover,
        // and the replacement for any of its lines that fails the script checks.
        let shares = planner::equal_shares(c.duration_s, c.scenes);
        let fallback = script::writer::write(&analysis, &shares, c.max_caption_chars, &req.speech);
        let beats: Vec<String> = fallback.iter().map(|f| f.description.clone()).collect();
        let mut texts: Vec<&str> = vec![brief, EXAMPLE_BRIEF];
        texts.extend(beats.iter().map(String::as_str));
        let refs = embedder.embed(&texts).map_err(model_err)?;
        let (brief_emb, example_emb, beat_embs) = (&refs[0], &refs[1], &refs[2..]);
        let copies = example_captions();

        let guard = llm.lock().unwrap_or_else(|p| p.into_inner());
        let llm = &*guard;
        let newline_table = llm.newline_table();
        let mut answer = llm.prefill(&prompt(brief, &beats, &c)).map_err(model_err)?;
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut chosen: Vec<usize> = Vec::new();
        let mut scenes: Vec<Scene> = Vec::new();
        let mut chosen_embs: Vec<Vec<f32>> = Vec::new();
        let (mut generated, mut generate_ms) = (0usize, 0u64);
        let camera_options: Vec<String> = Camera::ALL.iter().map(|cam| format!(" {}", cam.as_str())).collect();
        let camera_refs: Vec<&str> = camera_options.iter().map(String::as_str).collect();
        let moods = mood_options(brief, &markers.mood);
        let mood_options: Vec<String> = moods.iter().map(|m| format!(" {m}")).collect();
        let mood_refs: Vec<&str> = mood_options.iter().map(String::as_str).collect();
        for k in 1..=c.scenes {
            // The closed fields are chosen, not sampled: the camera move and the mood the
            // model finds most likely at that point of the line. Free text starts after them.
            let primed = llm.extend(&answer, &scene_prime(k)).map_err(model_err)?;
            let (cam, _) = llm.choose(&primed, &camera_refs).map_err(model_err)?;
            let primed = llm.extend(&primed, &format!("{} |", camera_options[cam])).map_err(model_err)?;
            let (mood, _) = llm.choose(&primed, &mood_refs).map_err(model_err)?;
            let fields = format!("{} | {} |", Camera::ALL[cam].as_str(), moods[mood]);
            let primed = llm.extend(&primed, &format!("{} |", mood_options[mood])).map_err(model_err)?;
            let mut best: Option<(f32, usize, Scene, Vec<f32>)> = None;
            for round in 0..=self.settings.repair_rounds {
                let mut lines = Vec::with_capacity(n);
                for j in 0..n {
                    let seed = ctx.seed.wrapping_add((k * 1000 + round * 100 + j) as u64);
                    // The first line of a scene samples cooler (the model's most likely line);
                    // the others explore at the configured temperature.
                    let temperature = if round == 0 && j == 0 {
                        self.settings.temperature.min(0.3)
                    } else {
                        self.settings.temperature
                    };
                    let params = GenerationParams {
                        max_tokens: TOKENS_PER_SCENE,
                        temperature,
                        seed,
                        ignore_eos: true,
                        ..GenerationParams::default()
                    };
                    let mut on_token = |t: usize, id: u32| {
                        ctx.progress.report((generated + t) as f32 / budget);
                        newline_table.get(id as usize).copied().unwrap_or(0) == 0 && !ctx.cancel.is_cancelled()
                    };
                    let g = llm.continue_from(&primed, &params, &mut on_token).map_err(model_err)?;
                    if ctx.cancel.is_cancelled() {
                        return Err(AgentError::Cancelled);
                    }
                    generated += g.generated_tokens;
                    generate_ms += g.generate_ms;
                    let text = g.text.lines().next().unwrap_or("").trim_end().to_owned();
                    lines.push((seed, text, g.generated_tokens));
                }
                // Validate each line; embed the valid ones in one batch.
                let mut valid = Vec::new();
                for (seed, text, tokens) in lines {
                    let mut cand = Candidate {
                        scene: k,
                        seed,
                        text: text.clone(),
                        tokens,
                        rejected: None,
                        repairs: vec![],
                        relevance: None,
                        repetition: None,
                    };
                    let parsed = parse_scenes(&format!("{} {fields}{text}", scene_prime(k)));
                    let one = Constraints { scenes: 1, duration_s: 1.0, max_caption_chars: c.max_caption_chars };
                    match parsed.first().map(|l| validate(std::slice::from_ref(l), &one, &markers.mood)) {
                        None => {
                            let head: String = text.chars().take(60).collect();
                            cand.rejected = Some(format!("not a scene line: {head:?}"));
                        }
                        Some(Err(e)) => cand.rejected = Some(e),
                        Some(Ok(board)) => {
                            let scene = board.scenes.into_iter().next().expect("one scene");
                            let caption = normalized(&scene.caption);
                            if copies.iter().any(|x| caption.contains(x.as_str())) {
                                cand.rejected = Some("copies the worked example".into());
                            } else if scenes.iter().any(|s| normalized(&s.caption) == caption) {
                                cand.rejected = Some(format!("repeats an earlier scene's caption {caption:?}"));
                            } else {
                                cand.repairs = board.repairs;
                                valid.push((candidates.len(), scene));
                            }
                        }
                    }
                    candidates.push(cand);
                }
                let texts: Vec<String> =
                    valid.iter().map(|(_, s)| format!("{}. {}", s.caption, s.description)).collect();
                let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let embs =
                    if text_refs.is_empty() { Vec::new() } else { embedder.embed(&text_refs).map_err(model_err)? };
                for ((i, scene), emb) in valid.into_iter().zip(embs) {
                    let cos = crate::models::embed::cosine;
                    let rel = cos(&emb, brief_emb);
                    let rep = chosen_embs.iter().map(|e| cos(&emb, e)).fold(0.0f32, f32::max);
                    let cand = &mut candidates[i];
                    cand.relevance = Some(rel);
                    cand.repetition = Some(rep);
                    if rel < MIN_RELEVANCE {
                        cand.rejected = Some(format!("off-topic: brief similarity {rel:.3} < {MIN_RELEVANCE}"));
                        continue;
                    }
                    if cos(&emb, example_emb) > rel {
                        cand.rejected = Some("closer to the worked example than to the brief".into());
                        continue;
                    }
                    // Ranked on the brief and on this scene's beat, so scene k covers topic k.
                    let on_beat = cos(&emb, &beat_embs[k - 1]);
                    // A caption the director had to cut reads worse than one that fits.
                    let cut = cand.repairs.iter().any(|r| r.contains("shortened"));
                    let score = (rel + on_beat) / 2.0
                        - REPETITION_WEIGHT * rep
                        - 0.01 * cand.repairs.len() as f32
                        - if cut { CUT_CAPTION_PENALTY } else { 0.0 };
                    if best.as_ref().is_none_or(|(b, ..)| score > *b) {
                        best = Some((score, i, scene, emb));
                    }
                }
                if best.is_some() {
                    break;
                }
            }
            let Some((_, i, scene, emb)) = best else {
                let why: Vec<String> = candidates
                    .iter()
                    .filter(|cand| cand.scene == k)
                    .map(|cand| format!("seed {}: {}", cand.seed, cand.rejected.clone().unwrap_or_default()))
                    .collect();
                return Err(AgentError::Permanent(format!("no valid line for scene {k}: {}", why.join("; "))));
            };
            answer = llm.extend(&answer, &scene_line(k, &scene)).map_err(model_err)?;
            chosen.push(i);
            chosen_embs.push(emb);
            scenes.push(scene);
        }
        drop(guard);

        for (s, share) in scenes.iter_mut().zip(&shares) {
            s.duration_s = *share;
        }
        // Every writer passes the same checks: lines too long for their scene, inventing a
        // number or name, or reading direction aloud are trimmed or replaced by the planner's.
        let script_report = script::review(&mut scenes, &fallback, &analysis, crate::models::SMOLLM2_ID, &req.speech);
        let relevance = chosen.iter().filter_map(|&i| candidates[i].relevance).sum::<f32>() / chosen.len() as f32;
        let script = scenes.iter().map(|s| s.spoken_text().to_owned()).collect::<Vec<_>>().join(" ");
        let title = planner::caption_from(&scenes[0].caption, 48).trim_end_matches('…').to_owned();
        let prefill_tok_s = answer.len() as f64 / (answer.prefill_ms().max(1) as f64 / 1000.0);
        Ok(Directed {
            manifest: ProductionManifest {
                title,
                script,
                scenes,
                markers,
                language: req.language.clone(),
                fast_track: req.fast_track,
            },
            report: DirectorReport {
                candidates,
                chosen,
                relevance,
                generated_tokens: generated,
                llm_load_ms: llm_load.as_millis() as u64,
                embedder_load_ms: emb_load.as_millis() as u64,
                prefill_tok_s,
                generate_tok_s: generated as f64 / (generate_ms.max(1) as f64 / 1000.0),
                markers_source,
            },
            script: script_report,
            analysis,
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
    fn prompt_ends_at_the_answer_and_scene_lines_round_trip() {
        let beats = planner::beats("A teaser for a bakery: fresh bread, the doors open, the first customer.", 3);
        let p = prompt("A teaser for a bakery", &beats, &c(3));
        assert!(p.ends_with("<|im_start|>assistant\n"));
        assert!(p.contains("camera is one of: dolly, pan, zoom, static, orbital. mood is one word."), "{p}");
        // The beats are the planner's content for each scene: the format words ("A teaser
        // for") are not a topic.
        assert_eq!(beats.len(), 3);
        assert!(beats.iter().all(|b| !b.contains("teaser")), "{beats:?}");
        assert!(beats.join(" ").contains("the first customer"), "{beats:?}");
        let listed = format!(
            "Write exactly 3 scenes, one per topic:\n1. {}\n2. {}\n3. {}<|im_end|>",
            beats[0], beats[1], beats[2]
        );
        assert!(p.contains(&listed), "{p}");
        let scene = Scene {
            description: "A baker opens the oven".into(),
            caption: "Fresh bread at dawn".into(),
            narration: "A baker opens the oven".into(),
            duration_s: 3.0,
            camera: Camera::Dolly,
            mood: "calm".into(),
        };
        let line = scene_line(2, &scene);
        assert!(line.starts_with(&scene_prime(2)));
        let back =
            validate(&parse_scenes(&line), &Constraints { scenes: 1, duration_s: 3.0, max_caption_chars: 30 }, "warm")
                .unwrap();
        assert_eq!(back.scenes[0], scene);
        assert!(back.repairs.is_empty(), "{:?}", back.repairs);
        assert!(example_captions().contains(&"the city is yours".to_owned()));
        assert_eq!(normalized("Leave it by the park..."), "leave it by the park");
        let long = "The outdoor unit is a heat pump that can also cool a home in summer";
        assert_eq!(shorten_caption(long, 40), "The outdoor unit is a heat pump");
        assert_eq!(shorten_caption("Unbreakablelongwordswithoutanybreaks here", 12).chars().count(), 12);
        assert_eq!(mood_options("A calm, warm teaser at dawn", "warm"), ["warm", "calm"]);
        assert_eq!(mood_options("Fresh bread", "calm"), ["calm"]);
    }
}
