//! The narrator's voices and what surrounds them: synthesis sentence by sentence, word
//! timings, scene durations that follow the speech, and subtitle cues cut from the words.
//!
//! - [`Voice`]: one trait for every engine. [`piper::PiperVoice`] is the neural voice (the
//!   joe voice for English, or any Piper `.onnx` the config points at); [`espeak::EspeakVoice`]
//!   is espeak-ng's formant synthesiser, which speaks every language we support and is named
//!   as such wherever it is used.
//! - [`text`]: sentences and words. [`align`]: word timings by allocation over measured
//!   speech. [`wav`]: the clip files.
//! - [`fit`]: scene durations and speaking rate so the total stays near the requested length.
//! - [`cues`]: subtitle cues from word timings (line length, reading speed).
//! - [`narrate`]: the voicing stage's agent and the `narration` memory document.

pub mod align;
pub mod cues;
pub mod espeak;
pub mod fit;
pub mod narrate;
pub mod piper;
pub mod text;
pub mod wav;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::WordTiming;
use wav::Pcm;

/// Why a voice could not speak.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VoiceError {
    /// The engine or its files are not installed here; the stage falls back and says so.
    #[error("voice unavailable: {0}")]
    Unavailable(String),
    /// Reading or writing a file failed (may pass on retry).
    #[error("voice IO: {0}")]
    Io(String),
    /// The engine ran and failed.
    #[error("voice failed: {0}")]
    Failed(String),
}

/// Which synthesiser produced a narration; recorded in memory and the summary so nobody
/// mistakes formant synthesis for a neural voice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VoiceEngine {
    /// Piper (VITS) on ONNX Runtime: a neural voice.
    #[serde(rename = "piper")]
    Piper,
    /// espeak-ng: formant synthesis, robotic but in every language.
    #[serde(rename = "espeak-ng")]
    EspeakNg,
}

impl VoiceEngine {
    /// How the engine is described to people.
    pub fn describe(self) -> &'static str {
        match self {
            VoiceEngine::Piper => "Piper neural voice (ONNX Runtime)",
            VoiceEngine::EspeakNg => "espeak-ng formant synthesis (not a neural voice)",
        }
    }
}

/// What a brief may ask of the narrator (`voice` in the request): the best voice for the
/// language, or one engine in particular.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VoiceChoice {
    /// A Piper voice when one is installed for the language, otherwise espeak-ng.
    #[default]
    Auto,
    /// Piper; languages without a Piper voice fall back to espeak-ng, which memory records.
    Piper,
    /// espeak-ng for every language.
    EspeakNg,
}

impl VoiceChoice {
    /// Every value, as written in requests and config.
    pub const NAMES: [&'static str; 3] = ["auto", "piper", "espeak-ng"];

    /// The value as written in requests and config.
    pub fn as_str(self) -> &'static str {
        match self {
            VoiceChoice::Auto => "auto",
            VoiceChoice::Piper => "piper",
            VoiceChoice::EspeakNg => "espeak-ng",
        }
    }
}

impl FromStr for VoiceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(VoiceChoice::Auto),
            "piper" => Ok(VoiceChoice::Piper),
            "espeak-ng" | "espeak" => Ok(VoiceChoice::EspeakNg),
            other => Err(format!("unknown voice '{other}' (allowed: {})", VoiceChoice::NAMES.join(", "))),
        }
    }
}

impl fmt::Display for VoiceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for VoiceChoice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for VoiceChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Speech synthesised for one piece of text.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// Mono samples, −1.0..=1.0, no leading or trailing silence beyond a few milliseconds.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
    /// Every word with its timing, seconds from the start of `samples`.
    pub words: Vec<WordTiming>,
    /// Each sentence's speech, (start, end) seconds from the start of `samples`.
    pub sentences: Vec<(f64, f64)>,
}

impl Utterance {
    /// Length in seconds.
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate.max(1) as f64
    }
}

/// A narrator voice.
pub trait Voice: Send + Sync + fmt::Debug {
    /// Stable id recorded in memory, e.g. `piper:en_US-joe-medium` or `espeak-ng:fr-fr`.
    fn id(&self) -> &str;
    /// The engine behind it.
    fn engine(&self) -> VoiceEngine;
    /// The language it speaks (ISO 639-1).
    fn language(&self) -> &str;
    /// The espeak-ng voice whose phonemes weigh this voice's words.
    fn espeak_voice(&self) -> &str;
    /// Speaks `text` at `rate` (1.0 = natural pace, 1.12 = 12 % faster), sentence by
    /// sentence, with word timings.
    fn speak(&self, text: &str, rate: f32) -> Result<Utterance, VoiceError>;
}

/// Pause between two sentences at rate 1.0, seconds.
pub const SENTENCE_PAUSE_S: f64 = 0.3;
/// Silence kept around each sentence's speech when it is trimmed, seconds (soft onsets).
const EDGE_S: f64 = 0.03;

/// The sentence loop both engines share: synthesise each sentence alone, trim its silence,
/// time its words (see [`align`]) and join the sentences with a pause that scales with the
/// rate.
pub(crate) fn speak_by_sentence(
    voice: &dyn Voice,
    text: &str,
    rate: f32,
    mut synth: impl FnMut(&str) -> Result<Pcm, VoiceError>,
) -> Result<Utterance, VoiceError> {
    let mut out = Utterance { samples: Vec::new(), sample_rate: 0, words: Vec::new(), sentences: Vec::new() };
    for sentence in text::sentences(text) {
        let pcm = synth(&sentence)?;
        if out.sample_rate == 0 {
            out.sample_rate = pcm.sample_rate;
        } else if out.sample_rate != pcm.sample_rate {
            return Err(VoiceError::Failed(format!(
                "{} changed sample rate mid-narration ({} → {})",
                voice.id(),
                out.sample_rate,
                pcm.sample_rate
            )));
        }
        let rate_hz = pcm.sample_rate;
        let Some((a, b)) = align::speech_bounds(&pcm.samples, rate_hz) else { continue };
        let from = ((a - EDGE_S).max(0.0) * rate_hz as f64) as usize;
        let to = (((b + EDGE_S) * rate_hz as f64) as usize).min(pcm.samples.len());
        let clip = &pcm.samples[from..to];
        if !out.samples.is_empty() {
            let pause = (SENTENCE_PAUSE_S / rate.max(0.5) as f64 * rate_hz as f64) as usize;
            out.samples.extend(std::iter::repeat_n(0.0, pause));
        }
        let offset = out.samples.len() as f64 / rate_hz as f64;
        let speech = (offset + a - from as f64 / rate_hz as f64, offset + b - from as f64 / rate_hz as f64);
        let local_pauses: Vec<(f64, f64)> =
            align::pauses(clip, rate_hz).into_iter().map(|(p, q)| (offset + p, offset + q)).collect();
        let words = text::words(&sentence);
        let weights = espeak::word_weights(voice.espeak_voice(), &words);
        out.words.extend(align::allocate(&words, &weights, speech.0, speech.1, &local_pauses));
        out.sentences.push(speech);
        out.samples.extend_from_slice(clip);
    }
    if out.sample_rate == 0 {
        out.sample_rate = 22_050;
    }
    Ok(out)
}

/// Where the voices are and how they run (from config).
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceSettings {
    /// Piper voice model (`.onnx`, config beside it) per language (ISO 639-1).
    pub piper_voices: BTreeMap<String, PathBuf>,
    /// The ONNX Runtime shared library.
    pub onnx_runtime: PathBuf,
    /// Intra-op threads for Piper.
    pub threads: usize,
}

/// The voice chosen for a language, with the reason when it is not the one asked for.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The voice.
    pub voice: Arc<dyn Voice>,
    /// Why a fallback was taken (Piper asked or preferred, not available), if one was.
    pub fallback: Option<String>,
}

/// Picks the voice for `lang`: Piper when `choice` allows it and a voice is configured and
/// loads, otherwise espeak-ng (with the reason). `Err` (with the reason) when no engine can
/// speak the language: the job then has music only, and memory says why.
pub fn resolve(lang: &str, choice: VoiceChoice, settings: &VoiceSettings) -> Result<Resolved, String> {
    let mut fallback = None;
    if choice != VoiceChoice::EspeakNg {
        match settings.piper_voices.get(lang) {
            Some(model) => match piper::shared(model, &settings.onnx_runtime, settings.threads) {
                Ok(v) => return Ok(Resolved { voice: v, fallback: None }),
                Err(e) => fallback = Some(format!("the Piper voice for '{lang}' could not be used ({e})")),
            },
            None => {
                if choice == VoiceChoice::Piper {
                    fallback = Some(format!("no Piper voice is configured for '{lang}'"));
                }
            }
        }
    }
    if !espeak::available() {
        let mut why = "espeak-ng is not installed (apt-get install espeak-ng)".to_owned();
        if let Some(f) = fallback {
            why = format!("{f}; {why}");
        }
        return Err(why);
    }
    match espeak::EspeakVoice::for_language(lang) {
        Ok(v) => Ok(Resolved {
            voice: Arc::new(v),
            fallback: fallback.map(|f| format!("{f}: espeak-ng formant synthesis speaks instead")),
        }),
        Err(e) => Err(match fallback {
            Some(f) => format!("{f}; {e}"),
            None => e.to_string(),
        }),
    }
}
