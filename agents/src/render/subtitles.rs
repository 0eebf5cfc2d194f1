//! Subtitle cues as both outputs (the MP4's mov_text tracks and the WebVTT side files) need
//! them: in time order, in whole milliseconds, inside the video, never overlapping, and
//! tagged with the three-letter language code MP4 stores.

use crate::domain::Cue;

/// A cue ready to be written: millisecond bounds with `start_ms < end_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedCue {
    /// Start, in milliseconds from the beginning of the video.
    pub start_ms: i64,
    /// End, in milliseconds (exclusive).
    pub end_ms: i64,
    /// The text, with surrounding whitespace trimmed.
    pub text: String,
}

/// Orders cues, clips them to `[0, duration_s]`, ends each one no later than the next one
/// starts (players show one cue at a time per track) and drops empty or zero-length cues.
pub fn normalize_cues(cues: &[Cue], duration_s: f64) -> Vec<TimedCue> {
    let end_of_video = (duration_s.max(0.0) * 1000.0).round() as i64;
    let mut timed: Vec<TimedCue> = cues
        .iter()
        .filter(|c| c.start_s.is_finite() && c.end_s.is_finite() && !c.text.trim().is_empty())
        .map(|c| TimedCue {
            start_ms: ((c.start_s * 1000.0).round() as i64).clamp(0, end_of_video),
            end_ms: ((c.end_s * 1000.0).round() as i64).clamp(0, end_of_video),
            text: c.text.trim().to_owned(),
        })
        .collect();
    timed.sort_by_key(|c| c.start_ms);
    for i in 0..timed.len().saturating_sub(1) {
        let next_start = timed[i + 1].start_ms;
        if timed[i].end_ms > next_start {
            timed[i].end_ms = next_start;
        }
    }
    timed.retain(|c| c.end_ms > c.start_ms);
    timed
}

/// The ISO 639-2/T code MP4 stores for a language tag such as `"en"`, `"fr-CA"` or `"deu"`;
/// `"und"` (undetermined) when the tag is not recognised.
pub fn iso639_2(tag: &str) -> String {
    let primary = tag.split(['-', '_']).next().unwrap_or("").trim().to_ascii_lowercase();
    let mapped = match primary.as_str() {
        "en" => "eng",
        "fr" => "fra",
        "de" => "deu",
        "es" => "spa",
        "it" => "ita",
        "pt" => "por",
        "nl" => "nld",
        "ru" => "rus",
        "uk" => "ukr",
        "pl" => "pol",
        "cs" => "ces",
        "sk" => "slk",
        "ro" => "ron",
        "hu" => "hun",
        "el" => "ell",
        "tr" => "tur",
        "sv" => "swe",
        "da" => "dan",
        "no" => "nor",
        "nb" => "nob",
        "nn" => "nno",
        "fi" => "fin",
        "is" => "isl",
        "ga" => "gle",
        "ca" => "cat",
        "eu" => "eus",
        "gl" => "glg",
        "hr" => "hrv",
        "sr" => "srp",
        "sl" => "slv",
        "bg" => "bul",
        "lt" => "lit",
        "lv" => "lav",
        "et" => "est",
        "zh" => "zho",
        "ja" => "jpn",
        "ko" => "kor",
        "ar" => "ara",
        "he" => "heb",
        "fa" => "fas",
        "hi" => "hin",
        "bn" => "ben",
        "ur" => "urd",
        "ta" => "tam",
        "te" => "tel",
        "th" => "tha",
        "vi" => "vie",
        "id" => "ind",
        "ms" => "msa",
        "tl" => "tgl",
        "sw" => "swa",
        "af" => "afr",
        other if other.len() == 3 && other.bytes().all(|b| b.is_ascii_lowercase()) => other,
        _ => "und",
    };
    mapped.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(a: f64, b: f64, t: &str) -> Cue {
        Cue { start_s: a, end_s: b, text: t.into() }
    }

    #[test]
    fn cues_are_sorted_clipped_and_never_overlap() {
        let cues =
            [cue(2.0, 5.0, "b"), cue(0.0, 2.5, " a "), cue(4.0, 9.0, "c"), cue(6.0, 7.0, "  "), cue(8.5, 9.5, "late")];
        let t = normalize_cues(&cues, 8.0);
        assert_eq!(
            t,
            vec![
                TimedCue { start_ms: 0, end_ms: 2000, text: "a".into() },
                TimedCue { start_ms: 2000, end_ms: 4000, text: "b".into() },
                TimedCue { start_ms: 4000, end_ms: 8000, text: "c".into() },
            ]
        );
    }

    #[test]
    fn language_tags_map_to_iso_639_2() {
        assert_eq!(iso639_2("en"), "eng");
        assert_eq!(iso639_2("fr-CA"), "fra");
        assert_eq!(iso639_2("ZH_hant"), "zho");
        assert_eq!(iso639_2("deu"), "deu");
        assert_eq!(iso639_2("x"), "und");
        assert_eq!(iso639_2(""), "und");
    }
}
