//! The narration heard: the rendered file's audio track (not the source clips) is decoded
//! to 16 kHz mono with ffmpeg and transcribed with `pocketsphinx_continuous` (English
//! acoustic model only); the share of the script's content words found in the transcript
//! decides. Missing, silent, wrong-language or garbled narration recalls few words.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::domain::RenderPlan;
use crate::voice::VoiceEngine;

use super::checks::{Check, NARRATION_HEARD};
use super::tokens;

/// Recall of the script's content words below which the report warns that the narration may
/// be garbled. Only a soundtrack with no recognisable speech at all fails the check: measured
/// on good Piper renders (music bed included), the recall ranged from 0.29 down to 0 for the
/// same kind of job (the narrowed search misses technical words, the bed is heard as words),
/// so a recall bar would reject good videos.
pub const RECALL_MIN: f64 = 0.1;

/// Decodes the first audio track of `video` to a 16 kHz mono 16-bit WAV.
pub fn extract_16k(video: &Path, wav: &Path) -> Result<(), String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(video)
        .args(["-map", "0:a:0", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le"])
        .arg(wav)
        .output()
        .map_err(|e| format!("ffmpeg cannot be started: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ffmpeg could not decode the audio track: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Transcribes a 16 kHz mono WAV with pocketsphinx's default US English model. The search
/// is narrowed (fewer active HMMs and words per frame) to keep it under real time.
pub fn transcribe(wav: &Path) -> Result<String, String> {
    let out = Command::new("pocketsphinx_continuous")
        .arg("-infile")
        .arg(wav)
        .args(["-logfn", "/dev/null", "-maxhmmpf", "3000", "-maxwpf", "10", "-topn", "2"])
        .output()
        .map_err(|e| format!("pocketsphinx_continuous cannot be started: {e}"))?;
    if !out.status.success() {
        return Err(format!("pocketsphinx failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Share of `script`'s content words that appear in `transcript`, and the words missed.
pub fn recall(script: &str, transcript: &str) -> (f64, Vec<String>) {
    let want = tokens(script, false);
    let heard: BTreeSet<String> = tokens(transcript, false);
    if want.is_empty() {
        return (1.0, vec![]);
    }
    let missed: Vec<String> = want.iter().filter(|w| !heard.contains(*w)).cloned().collect();
    (1.0 - missed.len() as f64 / want.len() as f64, missed)
}

/// The narration check (see the module doc).
pub fn check_narration(video: &Path, plan: &RenderPlan, engine: Option<VoiceEngine>, scratch: &Path) -> Vec<Check> {
    let Some(lang) = plan.narration.first().map(|c| c.lang.clone()) else {
        return vec![Check::not_applicable(NARRATION_HEARD, None, "the plan has no narration")];
    };
    let script: String = plan.scenes.iter().map(|s| s.narration.as_str()).collect::<Vec<_>>().join(" ");
    if script.trim().is_empty() {
        return vec![Check::not_applicable(NARRATION_HEARD, None, "the plan's scenes carry no narration text")];
    }
    if !lang.to_ascii_lowercase().starts_with("en") {
        return vec![Check::not_measured(
            NARRATION_HEARD,
            None,
            format!("not measured: speech recognition is English only, the narration is '{lang}'"),
        )];
    }
    if engine == Some(VoiceEngine::EspeakNg) {
        return vec![Check::not_measured(
            NARRATION_HEARD,
            None,
            "not measured: the recogniser cannot follow the espeak-ng formant voice (it recalls 0.1–0.3 of \
             correct espeak-ng speech), so its transcript cannot tell good narration from bad",
        )];
    }
    let wav = scratch.join("narration_16k.wav");
    let transcript = extract_16k(video, &wav).and_then(|_| transcribe(&wav));
    let _ = std::fs::remove_file(&wav);
    let transcript = match transcript {
        Ok(t) => t,
        Err(why) => return vec![Check::not_measured(NARRATION_HEARD, None, why)],
    };
    let (r, missed) = recall(&script, &transcript);
    let ok = !transcript.is_empty();
    let reason = if !ok {
        "no speech is heard in the soundtrack: the narration is missing or silent".to_owned()
    } else if r >= RECALL_MIN {
        format!("{:.0} % of the script's words are heard in the soundtrack", r * 100.0)
    } else {
        format!(
            "speech is heard, but only {:.0} % of the script's words were recognised (under {:.0} %): the \
             narration may be garbled or in another language — listen to it (the recogniser is unreliable \
             over music, so this is reported, not a rejection)",
            r * 100.0,
            RECALL_MIN * 100.0
        )
    };
    let measured = json!({"recall": (r * 1000.0).round() / 1000.0, "transcript": transcript,
        "missed": missed.into_iter().take(20).collect::<Vec<_>>(), "lang": lang});
    vec![Check::measured(NARRATION_HEARD, None, ok, r, reason, measured)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_content_words_heard() {
        let script = "Welcome to this narrated video. Today, we explore offline speech.";
        let heard = "welcome to the snow rated video today we will explore off one speech";
        let (r, missed) = recall(script, heard);
        assert!(r > 0.5 && r < 1.0, "{r} {missed:?}");
        assert!(missed.contains(&"offline".to_owned()));
        assert_eq!(recall(script, "").0, 0.0);
    }
}
