//! Kinetic captions: when each on-screen word is spoken. The caption's words (UAX #14 break
//! segments, so Chinese and Japanese count character by character) are matched in order to
//! the narration's word timings; words the narration does not say (a caption may be a short
//! form of the narration) take times between their matched neighbours, and a scene without
//! timings spreads its words evenly over the scene, as the subtitles do.

use std::ops::Range;

use unicode_linebreak::linebreaks;

use crate::domain::WordTiming;
use crate::render::shape::ShapedLine;
use crate::render::text::CaptionProgress;

/// How long the last word stays highlighted after it ends, in seconds.
const HOLD_S: f64 = 0.3;
/// How far ahead in the narration a caption word is looked for.
const LOOKAHEAD: usize = 8;

/// One caption word and when it is spoken.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord {
    /// Line of the laid-out caption.
    pub line: usize,
    /// Byte range in that line's text.
    pub range: Range<usize>,
    /// When the word starts, seconds from the start of the video.
    pub start_s: f64,
    /// When it ends.
    pub end_s: f64,
}

/// Lowercase letters and digits only, so "Dawn," matches "dawn".
fn normalise(word: &str) -> String {
    word.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// The caption's words with times, in reading order.
pub fn time_words(lines: &[ShapedLine], words: &[WordTiming], scene_start: f64, scene_len: f64) -> Vec<TimedWord> {
    let mut tokens: Vec<(usize, Range<usize>)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut from = 0;
        for (at, _) in linebreaks(&line.text) {
            let seg = &line.text[from..at];
            let trimmed = seg.trim_end();
            if !normalise(trimmed).is_empty() {
                tokens.push((i, from..from + trimmed.len()));
            } else if let Some(last) = tokens.last_mut().filter(|t| t.0 == i) {
                // Punctuation on its own joins the word before it.
                last.1.end = from + trimmed.len();
            }
            from = at;
        }
    }
    if tokens.is_empty() {
        return Vec::new();
    }
    // In-order matching against the narration.
    let mut times: Vec<Option<(f64, f64)>> = vec![None; tokens.len()];
    let mut next = 0;
    for (k, (line, range)) in tokens.iter().enumerate() {
        let key = normalise(&lines[*line].text[range.clone()]);
        let found = (next..words.len().min(next + LOOKAHEAD)).find(|&j| {
            let w = normalise(&words[j].word);
            !w.is_empty() && (w == key || (key.chars().count() == 1 && w.contains(&key)))
        });
        if let Some(j) = found {
            times[k] = Some((words[j].start_s, words[j].end_s));
            next = j + 1;
        }
    }
    // The span the words are spread over when they are not matched.
    let (span_start, span_end) = match (words.first(), words.last()) {
        (Some(a), Some(b)) if b.end_s > a.start_s => (a.start_s, b.end_s),
        _ => (scene_start + 0.1 * scene_len, scene_start + 0.85 * scene_len),
    };
    let matched = times.iter().filter(|t| t.is_some()).count();
    if matched * 2 < tokens.len() {
        times.iter_mut().for_each(|t| *t = None);
    }
    let n = tokens.len();
    let even = |k: usize| span_start + (span_end - span_start) * k as f64 / n as f64;
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let (start, end) = match times[k] {
            Some(t) => t,
            None => {
                let prev = (0..k).rev().find_map(|j| times[j].map(|t| (j, t.1)));
                let next = (k + 1..n).find_map(|j| times[j].map(|t| (j, t.0)));
                match (prev, next) {
                    (Some((j, a)), Some((m, b))) => {
                        let step = (b - a) / (m - j) as f64;
                        (a + step * (k - j - 1) as f64, a + step * (k - j) as f64)
                    }
                    (Some((_, a)), None) => (a, a + (span_end - a).max(0.0) / (n - k) as f64),
                    (None, Some((_, b))) => (span_start + (b - span_start) * k as f64 / (k + 1) as f64, b),
                    (None, None) => (even(k), even(k + 1)),
                }
            }
        };
        let (line, range) = tokens[k].clone();
        out.push(TimedWord { line, range, start_s: start, end_s: end.max(start) });
    }
    out
}

/// Index of the word being spoken at `t`: the last one started, until the next starts (the
/// final word holds a moment after it ends). `Err(k)` when none is: `k` words are done.
pub fn word_at(words: &[TimedWord], t: f64) -> Result<usize, usize> {
    let started = words.iter().take_while(|w| w.start_s <= t).count();
    if started == 0 {
        return Err(0);
    }
    let k = started - 1;
    if k + 1 == words.len() && t > words[k].end_s + HOLD_S {
        return Err(words.len());
    }
    Ok(k)
}

/// The caption state at `t`: words before the current one shown, the current one
/// highlighted, later ones faint; before the first word everything is faint, after the last
/// everything is shown.
pub fn progress_at(words: &[TimedWord], t: f64) -> CaptionProgress {
    match word_at(words, t) {
        Ok(k) => {
            let w = &words[k];
            CaptionProgress { spoken_until: Some((w.line, w.range.end)), current: Some((w.line, w.range.clone())) }
        }
        Err(0) if !words.is_empty() => CaptionProgress { spoken_until: Some((0, 0)), current: None },
        Err(_) => CaptionProgress::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> ShapedLine {
        ShapedLine { text: text.into(), glyphs: Vec::new(), width: 0.0 }
    }

    fn wt(word: &str, start_s: f64, end_s: f64) -> WordTiming {
        WordTiming { word: word.into(), start_s, end_s }
    }

    #[test]
    fn caption_words_take_the_narration_times() {
        let lines = [line("Fresh bread,"), line("at dawn")];
        let words = [
            wt("Fresh", 1.0, 1.4),
            wt("bread,", 1.5, 1.9),
            wt("baked", 2.0, 2.3),
            wt("at", 2.4, 2.5),
            wt("dawn.", 2.6, 3.0),
        ];
        let timed = time_words(&lines, &words, 0.0, 5.0);
        let starts: Vec<f64> = timed.iter().map(|w| w.start_s).collect();
        assert_eq!(starts, [1.0, 1.5, 2.4, 2.6]);
        assert_eq!(&lines[0].text[timed[1].range.clone()], "bread,");
        assert_eq!(timed[2].line, 1);
        assert_eq!(word_at(&timed, 0.5), Err(0));
        assert_eq!(word_at(&timed, 1.6), Ok(1));
        assert_eq!(word_at(&timed, 3.1), Ok(3));
        assert_eq!(word_at(&timed, 4.0), Err(4));
        let p = progress_at(&timed, 2.45);
        assert_eq!(p.current, Some((1, 0..2)));
        assert_eq!(progress_at(&timed, 9.0), CaptionProgress::default());
    }

    #[test]
    fn unmatched_captions_spread_evenly_and_cjk_counts_characters() {
        let lines = [line("朝のパン")];
        let timed = time_words(&lines, &[], 10.0, 4.0);
        assert_eq!(timed.len(), 4, "{timed:?}");
        assert!(timed.windows(2).all(|w| w[0].start_s < w[1].start_s && w[0].end_s <= w[1].start_s + 1e-9));
        assert!(timed[0].start_s >= 10.0 && timed[3].end_s <= 14.0);
    }
}
