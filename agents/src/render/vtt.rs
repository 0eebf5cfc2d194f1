//! WebVTT side files: one `subtitles.<lang>.vtt` per track, for players and platforms that
//! take subtitles next to the video rather than inside it.

use std::fmt::Write as _;

use crate::render::subtitles::TimedCue;

/// Formats milliseconds as a WebVTT timestamp, `HH:MM:SS.mmm` (hours keep growing past 99).
pub fn timestamp(ms: i64) -> String {
    let ms = ms.max(0);
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, milli) = (rem / 1000, rem % 1000);
    format!("{h:02}:{m:02}:{s:02}.{milli:03}")
}

/// Escapes cue text for WebVTT: `&`, `<` and `>` become entities (which also keeps `-->`
/// out of cue text) and blank lines, which would end the cue, are dropped.
fn escape(text: &str) -> String {
    let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    escaped.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("\n")
}

/// The complete WebVTT document for one track.
pub fn document(cues: &[TimedCue]) -> String {
    let mut out = String::from("WEBVTT\n");
    for (i, cue) in cues.iter().enumerate() {
        let _ = write!(
            out,
            "\n{}\n{} --> {}\n{}\n",
            i + 1,
            timestamp(cue.start_ms),
            timestamp(cue.end_ms),
            escape(&cue.text)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_zero_padded() {
        assert_eq!(timestamp(0), "00:00:00.000");
        assert_eq!(timestamp(61_005), "00:01:01.005");
        assert_eq!(timestamp(3_723_456), "01:02:03.456");
        assert_eq!(timestamp(-5), "00:00:00.000");
        assert_eq!(timestamp(360_000_000), "100:00:00.000");
    }

    #[test]
    fn document_has_header_and_escaped_cues() {
        let cues = vec![
            TimedCue { start_ms: 0, end_ms: 1500, text: "a < b & c --> d".into() },
            TimedCue { start_ms: 1500, end_ms: 3000, text: "line one\n\nline two".into() },
        ];
        let doc = document(&cues);
        assert!(doc.starts_with("WEBVTT\n"));
        assert!(doc.contains("\n1\n00:00:00.000 --> 00:00:01.500\na &lt; b &amp; c --&gt; d\n"));
        assert!(doc.contains("00:00:01.500 --> 00:00:03.000\nline one\nline two\n"));
    }
}
