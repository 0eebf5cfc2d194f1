//! The voicing stage's work: speak every scene's narration, fit the scene durations to the
//! speech, write one clip per scene, and describe all of it in the `narration` memory
//! document — which the render then applies to the plan ([`Narration::apply`]): scene
//! timings, word timings, the clips to mix, and subtitle cues cut from the words.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::cues::{self, CueRules};
use super::fit::{FitSettings, NoFit};
use super::wav::{self, Pcm};
use super::{Utterance, Voice, VoiceChoice, VoiceEngine, VoiceSettings, text};
use crate::agent::{AgentContext, AgentError};
use crate::domain::{NarrationClip, RenderPlan, WordTiming};

/// Bumped whenever the same request would narrate differently.
pub const NARRATION_VERSION: &str = "1.0.0";

/// How word timings are obtained, recorded with every narration.
pub const TIMING_METHOD: &str = "sentence bounds and clause pauses measured in the synthesised audio; words within \
     each stretch allocated by espeak-ng phoneme count";

/// One scene's narration line and the duration the planner gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneText {
    /// What the voice says (may be empty: a silent scene).
    pub text: String,
    /// The planner's duration for the scene, seconds.
    pub planned_s: f64,
    /// The scene's on-screen caption: spoken instead of a single-sentence narration that
    /// cannot fit even without its trailing clauses (empty: no such fallback).
    #[serde(default)]
    pub caption: String,
}

/// Everything the narrator needs.
#[derive(Debug, Clone)]
pub struct NarrationRequest {
    /// The scenes in order.
    pub scenes: Vec<SceneText>,
    /// The requested languages; the first is the one the narration is written in.
    pub languages: Vec<String>,
    /// The duration the brief asked for, seconds.
    pub requested_s: f64,
    /// Which voice the brief asked for.
    pub choice: VoiceChoice,
    /// `None` to narrate; `Some(reason)` when narration is switched off (brief or preset).
    pub disabled: Option<String>,
    /// The job directory; clips go to `job_dir/narration/`.
    pub job_dir: PathBuf,
    /// Pauses and limits.
    pub fit: FitSettings,
    /// Where the voices are.
    pub voices: VoiceSettings,
    /// The narration translated into other requested languages, one line per scene, by a
    /// backend that passed the quality bar: each is spoken by a voice for its language and
    /// fitted into the scenes the first language's speech timed.
    pub translated: BTreeMap<String, Vec<String>>,
    /// Why a requested language has no translated narration (no backend cleared the bar, …).
    pub untranslated: BTreeMap<String, String>,
}

/// Whether a narration (or one language of it) exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NarrationStatus {
    /// Spoken and mixed.
    Narrated,
    /// Switched off by the brief or the preset: music only.
    Disabled,
    /// No voice could speak it: music only, `reason` says why.
    Unavailable,
}

/// One scene of a narrated language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneNarration {
    /// What was spoken (the narration line, minus sentences dropped to fit).
    pub text: String,
    /// The clip, relative to the job directory; `None` for a silent scene.
    pub audio: Option<PathBuf>,
    /// Scene start in the video, seconds.
    pub start_s: f64,
    /// Scene duration, seconds (follows the speech).
    pub duration_s: f64,
    /// When the clip starts in the video, seconds.
    pub speech_start_s: f64,
    /// Measured length of the clip, seconds.
    pub speech_duration_s: f64,
    /// Every word with its time in the video.
    pub words: Vec<WordTiming>,
    /// Time the synthesis of the final clip took, ms.
    pub synthesis_ms: u64,
    /// Synthesis time over speech time (lower is faster; < 1 is faster than real time).
    pub real_time_factor: f64,
}

/// One language of the narration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NarrationTrack {
    /// ISO 639-1.
    pub lang: String,
    /// Whether it was spoken.
    pub status: NarrationStatus,
    /// Why not, or why a different voice spoke.
    pub reason: Option<String>,
    /// The voice id, e.g. `piper:en_US-joe-medium`.
    pub voice: Option<String>,
    /// The engine.
    pub engine: Option<VoiceEngine>,
    /// The engine described for people ("formant synthesis (not a neural voice)").
    pub engine_description: Option<String>,
    /// Per scene, in order (empty when not narrated).
    pub scenes: Vec<SceneNarration>,
}

/// The `narration` memory section: what the voicing stage produced and decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Narration {
    /// Narrated, disabled or unavailable (the last two mean music only).
    pub status: NarrationStatus,
    /// Why there is no narration, when there is none.
    pub reason: Option<String>,
    /// The voice the brief asked for.
    pub choice: VoiceChoice,
    /// Requested duration, seconds.
    pub requested_duration_s: f64,
    /// Total of the scene durations after fitting, seconds.
    pub total_duration_s: f64,
    /// Speaking rate used (1.0 natural, up to 1 + maxRateChange).
    pub rate: f64,
    /// Sentences dropped (whole, last first) because the narration could not fit.
    pub shortened: Vec<String>,
    /// How word timings were obtained.
    pub timing_method: String,
    /// One entry per requested language; the first is narrated when status is narrated.
    pub tracks: Vec<NarrationTrack>,
    /// Time to load the voice (0 when already loaded in this process), ms.
    pub load_ms: u64,
    /// Time spent synthesising, all attempts, ms.
    pub synthesis_ms: u64,
    /// Synthesis time over speech time across the final clips.
    pub real_time_factor: Option<f64>,
}

impl Narration {
    fn silent(req: &NarrationRequest, status: NarrationStatus, reason: String) -> Self {
        let tracks = req
            .languages
            .iter()
            .map(|l| NarrationTrack {
                lang: l.clone(),
                status,
                reason: Some(reason.clone()),
                voice: None,
                engine: None,
                engine_description: None,
                scenes: Vec::new(),
            })
            .collect();
        Narration {
            status,
            reason: Some(reason),
            choice: req.choice,
            requested_duration_s: req.requested_s,
            total_duration_s: req.scenes.iter().map(|s| s.planned_s).sum(),
            rate: 1.0,
            shortened: Vec::new(),
            timing_method: TIMING_METHOD.into(),
            tracks,
            load_ms: 0,
            synthesis_ms: 0,
            real_time_factor: None,
        }
    }

    /// The narrated track, if any.
    pub fn spoken(&self) -> Option<&NarrationTrack> {
        self.tracks.first().filter(|t| t.status == NarrationStatus::Narrated)
    }

    /// Applies the narration to the plan the translator wrote: scene timings follow the
    /// speech, each scene carries its words, the clips of every narrated language join the
    /// mix (one soundtrack per language, the first language's first), and each narrated
    /// language's subtitles are cut from its words (other languages keep one cue per scene,
    /// moved to the new scene bounds). A plan whose scene count differs (a re-planned job
    /// whose narration is stale) is left as it is.
    pub fn apply(&self, plan: &mut RenderPlan, job_dir: &Path, rules: &CueRules) {
        let Some(track) = self.spoken() else { return };
        if track.scenes.len() != plan.scenes.len() {
            return;
        }
        for (scene, n) in plan.scenes.iter_mut().zip(&track.scenes) {
            scene.start_s = n.start_s;
            scene.duration_s = n.duration_s;
            scene.narration = n.text.clone();
            scene.words = n.words.clone();
        }
        let narrated: Vec<&NarrationTrack> = self
            .tracks
            .iter()
            .filter(|t| t.status == NarrationStatus::Narrated && t.scenes.len() == plan.scenes.len())
            .collect();
        plan.narration = narrated
            .iter()
            .flat_map(|t| {
                t.scenes.iter().filter_map(|n| {
                    n.audio.as_ref().map(|a| NarrationClip {
                        path: job_dir.join(a),
                        start_s: n.speech_start_s,
                        lang: t.lang.clone(),
                    })
                })
            })
            .collect();
        let end = plan.duration_s();
        let bounds: Vec<(f64, f64)> = plan.scenes.iter().map(|s| (s.start_s, s.start_s + s.duration_s)).collect();
        for sub in &mut plan.subtitles {
            if let Some(t) = narrated.iter().find(|t| t.lang == sub.lang) {
                let words: Vec<Vec<WordTiming>> = t.scenes.iter().map(|s| s.words.clone()).collect();
                sub.cues = cues::from_words(&words, rules, end);
            } else if sub.cues.len() == bounds.len() {
                for (cue, (a, b)) in sub.cues.iter_mut().zip(&bounds) {
                    cue.start_s = *a;
                    cue.end_s = *b;
                }
            }
        }
    }
}

/// One scene's speech while fitting.
struct Spoken {
    text: String,
    /// The caption, spoken as a last resort (see [`SceneText::caption`]).
    caption: String,
    utterance: Option<Utterance>,
    synthesis_ms: u64,
}

impl Spoken {
    fn speech_s(&self) -> f64 {
        self.utterance.as_ref().map_or(0.0, Utterance::duration_s)
    }

    fn sentence_count(&self) -> usize {
        self.utterance.as_ref().map_or(0, |u| u.sentences.len())
    }

    /// Drops the last sentence (audio cut at the end of the one before it, whose speech is
    /// measured, so no word is cut); returns the dropped sentence.
    fn drop_last_sentence(&mut self) -> Option<String> {
        let u = self.utterance.as_mut()?;
        let sentences = text::sentences(&self.text);
        if u.sentences.len() < 2 || sentences.len() != u.sentences.len() {
            return None;
        }
        let keep_end = u.sentences[u.sentences.len() - 2].1;
        let cut = (((keep_end + 0.03) * u.sample_rate as f64) as usize).min(u.samples.len());
        u.samples.truncate(cut);
        u.words.retain(|w| w.start_s < keep_end);
        u.sentences.pop();
        let dropped = sentences.last().cloned();
        self.text = sentences[..sentences.len() - 1].join(" ");
        dropped
    }

    /// A shorter text for a one-sentence narration: without its last clause (ended with a
    /// full stop), or else the caption when it has fewer words. Returns the new text and what
    /// was given up; the caller re-synthesises.
    fn shorter_text(&self) -> Option<(String, String)> {
        if let Some((keep, dropped)) = text::without_last_clause(&self.text) {
            return Some((keep, dropped));
        }
        let caption = self.caption.trim();
        let fewer = text::words(caption).len() < text::words(&self.text).len();
        (fewer && caption.chars().any(char::is_alphanumeric))
            .then(|| (caption.to_owned(), format!("\"{}\" (the caption is spoken instead)", self.text)))
    }
}

fn speak_all(
    voice: &dyn Voice,
    spoken: &mut [Spoken],
    rate: f64,
    ctx: &AgentContext,
    total_ms: &mut u64,
) -> Result<(), AgentError> {
    for s in spoken.iter_mut() {
        if ctx.cancel.is_cancelled() {
            return Err(AgentError::Cancelled);
        }
        if s.text.trim().is_empty() {
            s.utterance = None;
            continue;
        }
        let started = Instant::now();
        let u = voice.speak(&s.text, rate as f32).map_err(|e| match e {
            super::VoiceError::Io(m) => AgentError::Transient(m),
            other => AgentError::Permanent(format!("{}: {other}", voice.id())),
        })?;
        s.synthesis_ms = started.elapsed().as_millis() as u64;
        *total_ms += s.synthesis_ms;
        s.utterance = Some(u);
    }
    Ok(())
}

/// Narrates the request's scenes. Music-only outcomes (disabled, no voice) are `Ok` with the
/// reason; a narration that cannot fit even after dropping whole sentences is a permanent
/// error naming the numbers.
pub fn narrate(req: &NarrationRequest, ctx: &AgentContext) -> Result<Narration, AgentError> {
    if let Some(why) = &req.disabled {
        return Ok(Narration::silent(req, NarrationStatus::Disabled, why.clone()));
    }
    let Some(lang) = req.languages.first() else {
        return Ok(Narration::silent(req, NarrationStatus::Unavailable, "no language requested".into()));
    };
    if req.scenes.iter().all(|s| s.text.trim().is_empty()) {
        return Ok(Narration::silent(req, NarrationStatus::Unavailable, "the plan has no narration text".into()));
    }
    let load_started = Instant::now();
    let resolved = match super::resolve(lang, req.choice, &req.voices) {
        Ok(r) => r,
        Err(why) => {
            return Ok(Narration::silent(
                req,
                NarrationStatus::Unavailable,
                format!("no voice speaks '{lang}': {why}; the video has music only"),
            ));
        }
    };
    let load_ms = load_started.elapsed().as_millis() as u64;
    let voice = resolved.voice.as_ref();

    let mut spoken: Vec<Spoken> = req
        .scenes
        .iter()
        .map(|s| Spoken {
            text: s.text.trim().to_owned(),
            caption: s.caption.clone(),
            utterance: None,
            synthesis_ms: 0,
        })
        .collect();
    let mut synthesis_ms = 0;
    speak_all(voice, &mut spoken, 1.0, ctx, &mut synthesis_ms)?;

    // Speed up if needed; drop whole sentences (longest scene first) only when even the
    // fastest allowed rate cannot fit.
    let mut shortened = Vec::new();
    let planned: Vec<f64> = req.scenes.iter().map(|s| s.planned_s).collect();
    let mut rate = 1.0;
    let durations = loop {
        let at_1: Vec<f64> = spoken.iter().map(|s| s.speech_s() * rate).collect();
        match req.fit.rate(&at_1, req.requested_s) {
            Ok(r) => {
                if (r - rate).abs() > 0.005 {
                    rate = r;
                    speak_all(voice, &mut spoken, rate, ctx, &mut synthesis_ms)?;
                }
                let speech: Vec<f64> = spoken.iter().map(Spoken::speech_s).collect();
                match req.fit.durations(&speech, &planned, req.requested_s) {
                    Ok(d) => break d,
                    // The neural voice's pace varies a little between runs: try the fastest rate.
                    Err(e) if rate < 1.0 + req.fit.max_rate_change - 0.005 => {
                        rate = 1.0 + req.fit.max_rate_change;
                        speak_all(voice, &mut spoken, rate, ctx, &mut synthesis_ms)?;
                        let speech: Vec<f64> = spoken.iter().map(Spoken::speech_s).collect();
                        match req.fit.durations(&speech, &planned, req.requested_s) {
                            Ok(d) => break d,
                            Err(_) => shorten(voice, &mut spoken, &mut shortened, e, rate, ctx, &mut synthesis_ms)?,
                        }
                    }
                    Err(e) => shorten(voice, &mut spoken, &mut shortened, e, rate, ctx, &mut synthesis_ms)?,
                }
            }
            Err(e) => shorten(voice, &mut spoken, &mut shortened, e, rate, ctx, &mut synthesis_ms)?,
        }
    };

    let (scenes, speech_total, synth_total) = place(req, lang, &spoken, &durations)?;
    let mut tracks = vec![NarrationTrack {
        lang: lang.clone(),
        status: NarrationStatus::Narrated,
        reason: resolved.fallback.clone(),
        voice: Some(voice.id().to_owned()),
        engine: Some(voice.engine()),
        engine_description: Some(voice.engine().describe().to_owned()),
        scenes,
    }];
    for other in req.languages.iter().skip(1).filter(|l| *l != lang) {
        tracks.push(narrate_translation(req, other, &durations, ctx, &mut synthesis_ms)?);
    }
    Ok(Narration {
        status: NarrationStatus::Narrated,
        reason: None,
        choice: req.choice,
        requested_duration_s: req.requested_s,
        total_duration_s: durations.iter().sum(),
        rate,
        shortened,
        timing_method: TIMING_METHOD.into(),
        tracks,
        load_ms,
        synthesis_ms,
        real_time_factor: (speech_total > 0.0).then(|| synth_total as f64 / 1000.0 / speech_total),
    })
}

/// Writes each scene's clip for `lang` and places it on the timeline of the fitted scene
/// durations; returns the scenes, the total speech and the total synthesis time.
fn place(
    req: &NarrationRequest,
    lang: &str,
    spoken: &[Spoken],
    durations: &[f64],
) -> Result<(Vec<SceneNarration>, f64, u64), AgentError> {
    let dir = req.job_dir.join("narration");
    std::fs::create_dir_all(&dir)
        .map_err(|e| AgentError::Transient(format!("cannot create {}: {e}", dir.display())))?;
    let mut scenes = Vec::with_capacity(spoken.len());
    let mut start = 0.0;
    let (mut speech_total, mut synth_total) = (0.0, 0u64);
    for (i, (s, d)) in spoken.iter().zip(durations).enumerate() {
        let speech_start = start + req.fit.lead_in_s;
        let (audio, words, speech_s) = match &s.utterance {
            Some(u) if !u.samples.is_empty() => {
                let rel = PathBuf::from("narration").join(format!("scene_{:02}.{lang}.wav", i + 1));
                wav::write(&req.job_dir.join(&rel), &Pcm { samples: u.samples.clone(), sample_rate: u.sample_rate })
                    .map_err(|e| AgentError::Transient(e.to_string()))?;
                let words = u
                    .words
                    .iter()
                    .map(|w| WordTiming {
                        word: w.word.clone(),
                        start_s: speech_start + w.start_s,
                        end_s: speech_start + w.end_s,
                    })
                    .collect();
                (Some(rel), words, u.duration_s())
            }
            _ => (None, Vec::new(), 0.0),
        };
        speech_total += speech_s;
        synth_total += s.synthesis_ms;
        scenes.push(SceneNarration {
            text: s.text.clone(),
            audio,
            start_s: start,
            duration_s: *d,
            speech_start_s: speech_start,
            speech_duration_s: speech_s,
            words,
            synthesis_ms: s.synthesis_ms,
            real_time_factor: if speech_s > 0.0 { s.synthesis_ms as f64 / 1000.0 / speech_s } else { 0.0 },
        });
        start += d;
    }
    Ok((scenes, speech_total, synth_total))
}

/// A track for a language that is not narrated, with the reason.
fn unvoiced(lang: &str, reason: String) -> NarrationTrack {
    NarrationTrack {
        lang: lang.to_owned(),
        status: NarrationStatus::Unavailable,
        reason: Some(reason),
        voice: None,
        engine: None,
        engine_description: None,
        scenes: Vec::new(),
    }
}

/// Speaks the translated narration of `lang` inside the scene durations the first language
/// fixed: at the natural pace when it fits, a little faster (within the allowed rate change)
/// when it must, never cut. A language without a translation, without a voice, or whose
/// speech cannot fit is not narrated, and its track says why (its subtitles still play over
/// the first language's voice).
fn narrate_translation(
    req: &NarrationRequest,
    lang: &str,
    durations: &[f64],
    ctx: &AgentContext,
    synthesis_ms: &mut u64,
) -> Result<NarrationTrack, AgentError> {
    let source = req.languages.first().map_or("", String::as_str);
    let Some(lines) = req.translated.get(lang).filter(|l| l.len() == durations.len()) else {
        let why = req.untranslated.get(lang).cloned().unwrap_or_else(|| "no translation of the narration".into());
        return Ok(unvoiced(
            lang,
            format!("not narrated in '{lang}': {why}; its subtitles (if any) play over the '{source}' narration"),
        ));
    };
    let resolved = match super::resolve(lang, req.choice, &req.voices) {
        Ok(r) => r,
        Err(why) => {
            return Ok(unvoiced(lang, format!("no voice speaks '{lang}': {why}; subtitles only")));
        }
    };
    let voice = resolved.voice.as_ref();
    let mut spoken: Vec<Spoken> = lines
        .iter()
        .map(|t| Spoken { text: t.trim().to_owned(), caption: String::new(), utterance: None, synthesis_ms: 0 })
        .collect();
    speak_all(voice, &mut spoken, 1.0, ctx, synthesis_ms)?;
    let at_1: Vec<f64> = spoken.iter().map(Spoken::speech_s).collect();
    let needed = match req.fit.rate_for_fixed(&at_1, durations) {
        Ok(r) => r,
        Err(e) => {
            return Ok(unvoiced(lang, format!("the '{lang}' narration does not fit: {e}; subtitles only")));
        }
    };
    // A hair faster than the exact rate: speech at a new rate is not exactly proportional.
    let rate = if needed > 1.0 { (needed * 1.02).min(1.0 + req.fit.max_rate_change) } else { 1.0 };
    if rate > 1.0 {
        speak_all(voice, &mut spoken, rate, ctx, synthesis_ms)?;
        let fitted: Vec<f64> = spoken.iter().map(Spoken::speech_s).collect();
        let why = match req.fit.rate_for_fixed(&fitted, durations) {
            Ok(r) if r <= 1.0 + 1e-6 => None,
            Ok(r) => Some(format!("spoken at {rate:.2}× it would still need to be {r:.2}× faster")),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = why {
            return Ok(unvoiced(lang, format!("the '{lang}' narration does not fit: {why}; subtitles only")));
        }
    }
    let (scenes, _, _) = place(req, lang, &spoken, durations)?;
    let mut reason = resolved.fallback.clone();
    if rate > 1.0 {
        let note = format!("spoken {:.0} % faster to fit the scenes", (rate - 1.0) * 100.0);
        reason = Some(reason.map_or(note.clone(), |r| format!("{r}; {note}")));
    }
    Ok(NarrationTrack {
        lang: lang.to_owned(),
        status: NarrationStatus::Narrated,
        reason,
        voice: Some(voice.id().to_owned()),
        engine: Some(voice.engine()),
        engine_description: Some(voice.engine().describe().to_owned()),
        scenes,
    })
}

/// Makes the narration shorter by the least it can give up, without cutting speech
/// mid-word: the last sentence of the longest scene that has more than one; otherwise the
/// last clause of the longest one-sentence scene that has several, or its caption when that
/// is shorter (that scene is spoken again). Fails with the reason when nothing is left to give.
fn shorten(
    voice: &dyn Voice,
    spoken: &mut [Spoken],
    shortened: &mut Vec<String>,
    why: NoFit,
    rate: f64,
    ctx: &AgentContext,
    total_ms: &mut u64,
) -> Result<(), AgentError> {
    let candidate =
        spoken.iter_mut().filter(|s| s.sentence_count() > 1).max_by(|a, b| a.speech_s().total_cmp(&b.speech_s()));
    if let Some(dropped) = candidate.and_then(Spoken::drop_last_sentence) {
        shortened.push(dropped);
        return Ok(());
    }
    let longest = spoken
        .iter_mut()
        .filter_map(|s| s.shorter_text().map(|t| (s, t)))
        .max_by(|(a, _), (b, _)| a.speech_s().total_cmp(&b.speech_s()));
    match longest {
        Some((s, (text, given_up))) => {
            s.text = text;
            shortened.push(given_up);
            speak_all(voice, std::slice::from_mut(s), rate, ctx, total_ms)
        }
        None => Err(AgentError::Permanent(format!(
            "{why}; no scene has a sentence, clause or shorter caption left to give up without cutting speech \
             mid-sentence — shorten the narration or ask for a longer video"
        ))),
    }
}
