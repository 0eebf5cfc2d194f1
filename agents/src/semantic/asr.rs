//! The narration heard: the rendered file's audio track (not the source clips) is decoded
//! to 16 kHz mono with ffmpeg and transcribed with `pocketsphinx_continuous` (English
//! acoustic model only); the share of the script's content words found in the transcript
//! decides. Missing, silent, wrong-language or garbled narration recalls few words.
//!
//! Only the spans where the plan puts narration are transcribed (each clip's planned time,
//! widened by [`WINDOW_MARGIN_S`]): the music between the lines costs recognition time and
//! comes back as invented words. A 30 s job with 8 s of speech spends a quarter of the time.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::domain::{NarrationClip, RenderPlan};
use crate::voice::{VoiceEngine, wav};

use super::checks::{Check, NARRATION_HEARD};
use super::tokens;

/// Recall of the script's content words below which the report warns that the narration may
/// be garbled. Only a soundtrack with no recognisable speech at all fails the check: measured
/// on good Piper renders (music bed included), the recall ranged from 0.29 down to 0 for the
/// same kind of job (the narrowed search misses technical words, the bed is heard as words),
/// so a recall bar would reject good videos.
pub const RECALL_MIN: f64 = 0.1;

/// How far each transcribed span reaches beyond its clip's planned start and end, seconds: it
/// covers the encoder's delay and a clip that plays late, and a clip cut short still shows.
pub const WINDOW_MARGIN_S: f64 = 0.3;
/// Silence put between two spans so the recogniser does not join their words, seconds.
const GAP_S: f64 = 0.3;

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

/// The spans of the soundtrack where `clips` speak, seconds, widened by [`WINDOW_MARGIN_S`]
/// and merged where they touch. `None` when a clip cannot be read (its length is unknown):
/// the whole track is then transcribed.
pub fn speech_windows(clips: &[&NarrationClip]) -> Option<Vec<(f64, f64)>> {
    let mut spans: Vec<(f64, f64)> = Vec::new();
    for clip in clips {
        let pcm = wav::read(&clip.path).ok()?;
        let len = pcm.samples.len() as f64 / pcm.sample_rate.max(1) as f64;
        spans.push(((clip.start_s - WINDOW_MARGIN_S).max(0.0), clip.start_s + len + WINDOW_MARGIN_S));
    }
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    Some(merged)
}

/// Keeps only `windows` of `pcm`, in order, with [`GAP_S`] of silence between them.
pub fn keep_windows(pcm: &wav::Pcm, windows: &[(f64, f64)]) -> wav::Pcm {
    let rate = pcm.sample_rate as f64;
    let gap = (GAP_S * rate) as usize;
    let mut samples = Vec::new();
    for (i, (a, b)) in windows.iter().enumerate() {
        let (from, to) = ((a * rate) as usize, ((b * rate) as usize).min(pcm.samples.len()));
        if from >= to {
            continue;
        }
        if i > 0 {
            samples.extend(std::iter::repeat_n(0.0, gap));
        }
        samples.extend_from_slice(&pcm.samples[from..to]);
    }
    wav::Pcm { samples, sample_rate: pcm.sample_rate }
}

/// Cuts the 16 kHz track at `wav_path` down to the spans the plan's `clips` speak in
/// (see the module doc); leaves it whole when a clip's length is unknown. Says what it did.
fn keep_speech(wav_path: &Path, clips: &[&NarrationClip]) -> Result<String, String> {
    let Some(windows) = speech_windows(clips) else {
        return Ok("the whole soundtrack (a narration clip's length is unknown)".into());
    };
    let pcm = wav::read(wav_path).map_err(|e| e.to_string())?;
    let kept = keep_windows(&pcm, &windows);
    let seconds = kept.samples.len() as f64 / kept.sample_rate.max(1) as f64;
    wav::write(wav_path, &kept).map_err(|e| e.to_string())?;
    Ok(format!("{seconds:.1} s where the plan puts narration, in {} spans", windows.len()))
}

/// Transcribes a 16 kHz mono WAV with pocketsphinx's default US English model. The search
/// is narrowed (fewer active HMMs and words per frame, no second flat-lexicon pass and no
/// lattice rescoring) to keep it well under real time: measured on a 30 s render, those two
/// passes took a third of the CPU time and recalled no more of the script's words.
pub fn transcribe(wav: &Path) -> Result<String, String> {
    let out = Command::new("pocketsphinx_continuous")
        .arg("-infile")
        .arg(wav)
        .args(["-logfn", "/dev/null", "-maxhmmpf", "3000", "-maxwpf", "10", "-topn", "2"])
        .args(["-fwdflat", "no", "-bestpath", "no"])
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
    let clips: Vec<&NarrationClip> = plan.narration.iter().filter(|c| c.lang == lang).collect();
    let heard = extract_16k(video, &wav)
        .and_then(|_| keep_speech(&wav, &clips))
        .and_then(|span| transcribe(&wav).map(|t| (t, span)));
    let _ = std::fs::remove_file(&wav);
    let (transcript, span) = match heard {
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
        "missed": missed.into_iter().take(20).collect::<Vec<_>>(), "lang": lang, "transcribed": span});
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

    #[test]
    fn only_the_planned_speech_is_kept_with_a_gap_between_spans() {
        let dir = tempfile::tempdir().unwrap();
        let clip = |name: &str, start_s: f64, seconds: f64| {
            let path = dir.path().join(name);
            let pcm = wav::Pcm { samples: vec![0.5; (seconds * 16_000.0) as usize], sample_rate: 16_000 };
            wav::write(&path, &pcm).unwrap();
            NarrationClip { path, start_s, lang: "en".into() }
        };
        let (a, b, c) = (clip("a.wav", 1.0, 2.0), clip("b.wav", 3.2, 1.0), clip("c.wav", 10.0, 1.0));
        let windows = speech_windows(&[&c, &a, &b]).unwrap();
        // a and b touch once widened; c stands alone.
        assert_eq!(windows.len(), 2, "{windows:?}");
        assert!((windows[0].0 - 0.7).abs() < 1e-9 && (windows[0].1 - 4.5).abs() < 1e-9, "{windows:?}");
        let track =
            wav::Pcm { samples: (0..16_000 * 12).map(|i| (i / 16_000) as f32 / 100.0).collect(), sample_rate: 16_000 };
        let kept = keep_windows(&track, &windows);
        let expected = ((4.5 - 0.7) + (11.3 - 9.7) + GAP_S) * 16_000.0;
        assert!((kept.samples.len() as f64 - expected).abs() < 3.0, "{} vs {expected}", kept.samples.len());
        // The first kept sample is from 0.7 s (second 0), the last from second 11.
        assert_eq!(kept.samples[0], 0.0);
        assert_eq!(*kept.samples.last().unwrap(), 0.11);
        let missing = NarrationClip { path: dir.path().join("gone.wav"), start_s: 0.0, lang: "en".into() };
        assert_eq!(speech_windows(&[&a, &missing]), None);
    }
}
