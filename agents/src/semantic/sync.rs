//! Subtitles in time with the speech: the rendered file's first subtitle track (the first
//! language's, read back with ffmpeg as WebVTT) is compared cue by cue with the narration's
//! word onsets in the plan — where the mix placed each spoken word, which the presence checks
//! confirm is where the voice is heard. A cue that starts more than [`SYNC_MAX_S`] away from
//! the word it opens with fails: a track shifted by an edit, or cues cut from other timings.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::domain::{RenderPlan, WordTiming};

use super::checks::Check;

/// Name of the check that subtitle cues start with the words they show.
pub const SUBTITLE_SYNC: &str = "subtitle_sync";
/// How far a cue's start may sit from the onset of its first spoken word, seconds (the voice
/// issue's bar for subtitles that follow the speech).
pub const SYNC_MAX_S: f64 = 0.15;

/// One cue of a subtitle track.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// When it appears, seconds from the start of the video.
    pub start_s: f64,
    /// Its text, lines joined by a space.
    pub text: String,
}

/// The cues of `video`'s first subtitle track; `Ok(None)` when it has none.
pub fn read_cues(video: &Path) -> Result<Option<Vec<Cue>>, String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(video)
        .args(["-map", "0:s:0?", "-f", "webvtt", "-"])
        .output()
        .map_err(|e| format!("ffmpeg cannot be started: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ffmpeg could not read the subtitle track: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.trim_start().starts_with("WEBVTT") {
        return Ok(None);
    }
    Ok(Some(parse_vtt(&text)))
}

/// The cues of a WebVTT document (timing lines and the text lines under them).
pub fn parse_vtt(text: &str) -> Vec<Cue> {
    let mut cues = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((start, _)) = line.split_once("-->") else { continue };
        let Some(start_s) = timestamp(start.trim()) else { continue };
        let mut body = Vec::new();
        while let Some(l) = lines.next_if(|l| !l.trim().is_empty()) {
            body.push(l.trim());
        }
        cues.push(Cue { start_s, text: body.join(" ") });
    }
    cues
}

/// `HH:MM:SS.mmm` or `MM:SS.mmm` in seconds.
fn timestamp(t: &str) -> Option<f64> {
    let parts: Vec<&str> = t.split(':').collect();
    let (h, m, s) = match parts.as_slice() {
        [h, m, s] => (h.parse::<f64>().ok()?, m.parse::<f64>().ok()?, s.parse::<f64>().ok()?),
        [m, s] => (0.0, m.parse::<f64>().ok()?, s.parse::<f64>().ok()?),
        _ => return None,
    };
    Some(h * 3600.0 + m * 60.0 + s)
}

/// A word reduced to what a caption and a word timing share: lowercase letters and digits.
fn key(word: &str) -> String {
    word.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// How many of a cue's first words must follow each other in the narration for the cue to
/// be placed there: one common word ("the") occurs all over a script.
pub const MATCH_WORDS: usize = 3;

/// Each cue placed on the narration: where its first words ([`MATCH_WORDS`], fewer for a
/// shorter cue) are spoken in that order, the occurrence nearest the cue's start when they
/// are spoken more than once. Returns the cue's index, its start and that word's onset;
/// cues whose words are not spoken are left out.
pub fn align(cues: &[Cue], words: &[&WordTiming]) -> Vec<(usize, f64, f64)> {
    let spoken: Vec<(String, f64)> =
        words.iter().map(|w| (key(&w.word), w.start_s)).filter(|(k, _)| !k.is_empty()).collect();
    let mut pairs = Vec::new();
    for (i, cue) in cues.iter().enumerate() {
        let want: Vec<String> =
            cue.text.split_whitespace().map(key).filter(|k| !k.is_empty()).take(MATCH_WORDS).collect();
        if want.is_empty() || want.len() > spoken.len() {
            continue;
        }
        let nearest = (0..=spoken.len() - want.len())
            .filter(|&j| spoken[j..j + want.len()].iter().zip(&want).all(|((k, _), w)| k == w))
            .map(|j| spoken[j].1)
            .min_by(|a, b| (a - cue.start_s).abs().total_cmp(&(b - cue.start_s).abs()));
        if let Some(onset) = nearest {
            pairs.push((i, cue.start_s, onset));
        }
    }
    pairs
}

/// The subtitle-sync check (see the module doc).
pub fn check_sync(video: &Path, plan: &RenderPlan) -> Vec<Check> {
    let words: Vec<&WordTiming> = plan.scenes.iter().flat_map(|s| &s.words).collect();
    if plan.narration.is_empty() || words.is_empty() {
        return vec![Check::not_applicable(
            SUBTITLE_SYNC,
            None,
            "the plan has no spoken words to time subtitles against",
        )];
    }
    let cues = match read_cues(video) {
        Ok(Some(cues)) if !cues.is_empty() => cues,
        Ok(_) => return vec![Check::not_applicable(SUBTITLE_SYNC, None, "the file has no subtitle cues")],
        Err(why) => return vec![Check::not_measured(SUBTITLE_SYNC, None, why)],
    };
    let pairs = align(&cues, &words);
    if pairs.is_empty() {
        let reason = "no subtitle cue begins with words the narration speaks: the first subtitle track does not carry \
                      what is spoken";
        return vec![Check::measured(SUBTITLE_SYNC, None, false, 0.0, reason, json!({"cues": cues.len()}))];
    }
    let late: Vec<(usize, f64)> =
        pairs.iter().map(|(i, cue, word)| (*i, cue - word)).filter(|(_, d)| d.abs() > SYNC_MAX_S).collect();
    let worst =
        pairs.iter().map(|(_, cue, word)| cue - word).fold(0.0f64, |a, d| if d.abs() > a.abs() { d } else { a });
    let in_sync = 1.0 - late.len() as f64 / pairs.len() as f64;
    let ok = late.is_empty();
    let reason = if ok {
        format!(
            "all {} cues start within {:.0} ms of their first spoken word (worst {:+.0} ms)",
            pairs.len(),
            SYNC_MAX_S * 1000.0,
            worst * 1000.0
        )
    } else {
        format!(
            "{} of {} subtitle cues are out of step with the speech by more than {:.0} ms (worst {:+.0} ms: {} \
             the voice)",
            late.len(),
            pairs.len(),
            SYNC_MAX_S * 1000.0,
            worst * 1000.0,
            if worst > 0.0 { "after" } else { "before" }
        )
    };
    let measured = json!({
        "cues": cues.len(), "matched": pairs.len(), "worst_offset_ms": (worst * 1000.0).round(),
        "out_of_step": late.iter().map(|(i, d)| json!({"cue": i + 1, "offset_ms": (d * 1000.0).round()})).collect::<Vec<_>>(),
    });
    vec![Check::measured(SUBTITLE_SYNC, None, ok, in_sync, reason, measured)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(word: &str, start_s: f64) -> WordTiming {
        WordTiming { word: word.into(), start_s, end_s: start_s + 0.3 }
    }

    #[test]
    fn webvtt_cues_are_read_with_their_start_and_text() {
        let vtt = "WEBVTT\n\n1\n00:00:00.430 --> 00:00:01.870\nA neighbourhood bakery.\n\n2\n00:20.430 --> \
                   00:23.250\nThe baker's first loaves\ncooling on the counter.\n";
        let cues = parse_vtt(vtt);
        assert_eq!(cues.len(), 2);
        assert!((cues[0].start_s - 0.43).abs() < 1e-9);
        assert!((cues[1].start_s - 20.43).abs() < 1e-9);
        assert_eq!(cues[1].text, "The baker's first loaves cooling on the counter.");
    }

    #[test]
    fn cues_are_placed_where_their_first_words_are_spoken() {
        let words = [
            w("Fresh", 0.5),
            w("bread.", 0.9),
            w("The", 2.0),
            w("shop", 2.3),
            w("the", 3.0),
            w("end.", 3.3),
            w("It", 15.0),
            w("brings", 15.2),
            w("the…", 15.6),
            w("The", 22.9),
            w("refrigerant", 23.1),
            w("loop.", 23.6),
        ];
        let refs: Vec<&WordTiming> = words.iter().collect();
        let cues = [
            Cue { start_s: 0.52, text: "Fresh bread.".into() },
            Cue { start_s: 2.9, text: "The shop".into() },
            Cue { start_s: 3.1, text: "“The” end.".into() },
            // "The" alone is spoken four times; the three words only once.
            Cue { start_s: 22.93, text: "The refrigerant loop.".into() },
        ];
        assert_eq!(align(&cues, &refs), vec![(0, 0.52, 0.5), (1, 2.9, 2.0), (2, 3.1, 3.0), (3, 22.93, 22.9)]);
        // A track shifted late is measured late, not matched to a later "the".
        let late = [Cue { start_s: 23.73, text: "The refrigerant loop.".into() }];
        assert_eq!(align(&late, &refs), vec![(0, 23.73, 22.9)]);
        let none = [Cue { start_s: 1.0, text: "Bonjour".into() }];
        assert!(align(&none, &refs).is_empty());
    }
}
