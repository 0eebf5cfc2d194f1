//! Subtitle cues cut from the narration's word timings, following the usual broadcast rules:
//! a cue starts when its first word is spoken, holds at most two lines of at most 42
//! characters, stays up long enough to be read at 20 characters per second when the speech
//! leaves room, and never runs into the next cue. Sentences start new cues; long sentences
//! break at clause punctuation first.

use serde::{Deserialize, Serialize};

use super::text::{CLAUSE_END, is_cjk};
use crate::domain::{Cue, WordTiming};

/// Line and reading-speed limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CueRules {
    /// Characters per line.
    pub max_line_chars: usize,
    /// Lines per cue.
    pub max_lines: usize,
    /// Reading speed, characters per second.
    pub max_chars_per_s: f64,
    /// How long a cue stays after its last word when nothing follows, seconds.
    pub linger_s: f64,
    /// A clause break starts a new cue once the cue holds at least this many characters.
    pub clause_break_chars: usize,
}

impl Default for CueRules {
    fn default() -> Self {
        Self { max_line_chars: 42, max_lines: 2, max_chars_per_s: 20.0, linger_s: 0.6, clause_break_chars: 30 }
    }
}

/// Joins words the way they are written (no spaces between CJK characters).
fn join(words: &[&str]) -> String {
    let mut out = String::new();
    for w in words {
        let glue = !out.is_empty() && !(out.chars().last().is_some_and(is_cjk) && w.chars().next().is_some_and(is_cjk));
        if glue {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Wraps `words` into at most `max_lines` lines of at most `max_chars` characters,
/// balancing the line lengths; `None` when they do not fit. A single word longer than a
/// line is put on a line of its own (it cannot be split without breaking the word).
pub fn wrap(words: &[&str], max_chars: usize, max_lines: usize) -> Option<Vec<String>> {
    let len = |ws: &[&str]| join(ws).chars().count();
    if words.is_empty() {
        return Some(Vec::new());
    }
    if len(words) <= max_chars || words.len() == 1 {
        return Some(vec![join(words)]);
    }
    if max_lines < 2 {
        return None;
    }
    // Two lines: the split with the most even lengths among those that fit.
    let best = (1..words.len())
        .filter(|&k| len(&words[..k]) <= max_chars && len(&words[k..]) <= max_chars)
        .min_by_key(|&k| len(&words[..k]).abs_diff(len(&words[k..])));
    match best {
        Some(k) => Some(vec![join(&words[..k]), join(&words[k..])]),
        None if max_lines > 2 => {
            let k = (1..words.len()).rev().find(|&k| len(&words[..k]) <= max_chars)?;
            let mut rest = wrap(&words[k..], max_chars, max_lines - 1)?;
            rest.insert(0, join(&words[..k]));
            Some(rest)
        }
        None => None,
    }
}

fn ends_sentence(w: &str) -> bool {
    w.trim_end_matches(['"', '\'', ')', '»', '」'])
        .chars()
        .last()
        .is_some_and(|c| matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '…'))
}

fn ends_clause(w: &str) -> bool {
    w.trim_end_matches(['"', '\'', ')', '»']).chars().last().is_some_and(|c| CLAUSE_END.contains(&c))
}

/// Cues for a narration, scene by scene (a cue never spans two scenes). `scenes[i]` holds
/// the words of scene `i` with times from the start of the video; `video_end_s` bounds the
/// last cue.
pub fn from_words(scenes: &[Vec<WordTiming>], rules: &CueRules, video_end_s: f64) -> Vec<Cue> {
    let mut groups: Vec<Vec<&WordTiming>> = Vec::new();
    for words in scenes {
        let mut current: Vec<&WordTiming> = Vec::new();
        for w in words {
            if !current.is_empty() {
                let mut candidate: Vec<&str> = current.iter().map(|x| x.word.as_str()).collect();
                candidate.push(&w.word);
                let fits = wrap(&candidate, rules.max_line_chars, rules.max_lines).is_some();
                let last = current.last().map(|x| x.word.as_str()).unwrap_or("");
                let chars = join(&candidate[..candidate.len() - 1]).chars().count();
                if !fits || ends_sentence(last) || (ends_clause(last) && chars >= rules.clause_break_chars) {
                    groups.push(std::mem::take(&mut current));
                }
            }
            current.push(w);
        }
        if !current.is_empty() {
            groups.push(current);
        }
    }
    let mut cues: Vec<Cue> = Vec::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        let words: Vec<&str> = g.iter().map(|w| w.word.as_str()).collect();
        let lines = wrap(&words, rules.max_line_chars, rules.max_lines).unwrap_or_else(|| vec![join(&words)]);
        let text = lines.join("\n");
        let start = g[0].start_s;
        let spoken_end = g.last().map_or(start, |w| w.end_s);
        let readable = start + text.chars().filter(|c| *c != '\n').count() as f64 / rules.max_chars_per_s;
        let next = groups.get(i + 1).map_or(video_end_s, |n| n[0].start_s);
        let end = (spoken_end + rules.linger_s).max(readable).min(next).min(video_end_s).max(spoken_end.min(next));
        cues.push(Cue { start_s: start, end_s: end, text });
    }
    cues
}

/// The fastest cue in characters per second (the speech can outpace the reading-speed
/// rule: then it is reported, never hidden).
pub fn max_chars_per_s(cues: &[Cue]) -> f64 {
    cues.iter()
        .map(|c| c.text.chars().filter(|ch| *ch != '\n').count() as f64 / (c.end_s - c.start_s).max(1e-3))
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(text: &str, start: f64, per_word: f64) -> Vec<WordTiming> {
        text.split_whitespace()
            .enumerate()
            .map(|(i, w)| WordTiming {
                word: w.into(),
                start_s: start + i as f64 * per_word,
                end_s: start + (i + 1) as f64 * per_word,
            })
            .collect()
    }

    #[test]
    fn wrapping_balances_two_lines_and_refuses_what_cannot_fit() {
        let w: Vec<&str> =
            "Fresh bread at dawn, warm from the oven, every single morning of the week".split(' ').collect();
        let lines = wrap(&w, 42, 2).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.chars().count() <= 42), "{lines:?}");
        assert!(lines[0].chars().count().abs_diff(lines[1].chars().count()) < 12, "{lines:?}");
        let long: Vec<&str> = ["word"; 30].to_vec();
        assert!(wrap(&long, 42, 2).is_none());
        assert_eq!(wrap(&["朝", "の", "光"], 42, 2).unwrap(), ["朝の光"]);
    }

    #[test]
    fn cues_start_on_words_respect_lines_and_never_overlap() {
        let scene1 = timed(
            "Fresh bread at dawn. Our bakers start at four, long before the city wakes, so that every loaf is warm when the doors open.",
            0.4,
            0.3,
        );
        let scene2 = timed("Come and taste it.", 8.0, 0.35);
        let cues = from_words(&[scene1.clone(), scene2.clone()], &CueRules::default(), 12.0);
        assert!(cues.len() >= 4, "{cues:#?}");
        assert_eq!(cues[0].text, "Fresh bread at dawn.");
        assert_eq!(cues[0].start_s, 0.4);
        assert_eq!(cues[1].start_s, scene1[4].start_s);
        assert_eq!(cues.last().unwrap().start_s, 8.0);
        for c in &cues {
            let lines: Vec<&str> = c.text.lines().collect();
            assert!(lines.len() <= 2 && lines.iter().all(|l| l.chars().count() <= 42), "{c:?}");
            assert!(c.end_s > c.start_s, "{c:?}");
        }
        for pair in cues.windows(2) {
            assert!(pair[0].end_s <= pair[1].start_s, "{pair:?}");
        }
        // Each word starts some cue or is inside one that began with an earlier word.
        let starts: Vec<f64> = cues.iter().map(|c| c.start_s).collect();
        assert!(starts.iter().all(|s| scene1.iter().chain(&scene2).any(|w| w.start_s == *s)));
    }
}
