//! Word timings without a forced aligner.
//!
//! Neither voice reports when each word is spoken (the Piper ONNX export outputs audio only;
//! its duration predictor stays inside the graph), so timings are *allocated*: each sentence
//! is synthesised alone, which makes its start and end exact once leading and trailing
//! silence are trimmed; pauses the voice makes inside it (at commas) are found in the audio
//! and matched to the clause punctuation; within each stretch of speech the words share the
//! time in proportion to their phoneme counts. The measured error of this method against
//! the recogniser's alignment is stated in README ("Voices").

use super::text::CLAUSE_END;
use crate::domain::WordTiming;

/// Analysis frame, seconds.
const FRAME_S: f64 = 0.01;
/// A frame is silent when its RMS is this far below the loudest frame's, dB.
const SILENCE_BELOW_PEAK_DB: f32 = 38.0;
/// Shortest silence inside a sentence that counts as a pause, seconds.
const MIN_PAUSE_S: f64 = 0.09;

/// RMS per 10 ms frame.
fn frame_rms(samples: &[f32], rate: u32) -> Vec<f32> {
    let n = ((rate as f64 * FRAME_S) as usize).max(1);
    samples.chunks(n).map(|c| (c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32).sqrt()).collect()
}

/// Which frames carry speech.
fn voiced(samples: &[f32], rate: u32) -> Vec<bool> {
    let rms = frame_rms(samples, rate);
    let peak = rms.iter().copied().fold(0.0f32, f32::max);
    let floor = (peak * 10f32.powf(-SILENCE_BELOW_PEAK_DB / 20.0)).max(1e-4);
    rms.iter().map(|&r| r > floor).collect()
}

/// First and last moment of speech in a clip, seconds; `None` for silence.
pub fn speech_bounds(samples: &[f32], rate: u32) -> Option<(f64, f64)> {
    let v = voiced(samples, rate);
    let first = v.iter().position(|&b| b)?;
    let last = v.iter().rposition(|&b| b)?;
    let len = samples.len() as f64 / rate as f64;
    Some((first as f64 * FRAME_S, ((last + 1) as f64 * FRAME_S).min(len)))
}

/// Silent stretches of at least [`MIN_PAUSE_S`] strictly inside the speech, seconds.
pub fn pauses(samples: &[f32], rate: u32) -> Vec<(f64, f64)> {
    let v = voiced(samples, rate);
    let (Some(first), Some(last)) = (v.iter().position(|&b| b), v.iter().rposition(|&b| b)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut gap_start = None;
    for (i, &b) in v.iter().enumerate().take(last + 1).skip(first) {
        match (b, gap_start) {
            (false, None) => gap_start = Some(i),
            (true, Some(g)) => {
                if (i - g) as f64 * FRAME_S >= MIN_PAUSE_S {
                    out.push((g as f64 * FRAME_S, i as f64 * FRAME_S));
                }
                gap_start = None;
            }
            _ => {}
        }
    }
    out
}

/// Timings for the words of one sentence spoken between `start_s` and `end_s`, with the
/// voice's internal `pauses`. Words are grouped into clauses at clause punctuation; when the
/// audio has at least as many pauses as there are clause breaks, the longest ones mark the
/// breaks (in time order) and each clause is allocated over its own stretch; otherwise the
/// whole sentence is one stretch. Within a stretch, time is shared by `weights` (phonemes).
pub fn allocate(words: &[String], weights: &[f32], start_s: f64, end_s: f64, pauses: &[(f64, f64)]) -> Vec<WordTiming> {
    if words.is_empty() {
        return Vec::new();
    }
    let weight = |i: usize| weights.get(i).copied().unwrap_or(1.0).max(0.1) as f64;
    // Clause groups: [first word, end word) ranges.
    let mut groups = Vec::new();
    let mut from = 0;
    for (i, w) in words.iter().enumerate() {
        let ends_clause =
            w.trim_end_matches(['"', '\'', ')', '»']).chars().last().is_some_and(|c| CLAUSE_END.contains(&c));
        if ends_clause && i + 1 < words.len() {
            groups.push((from, i + 1));
            from = i + 1;
        }
    }
    groups.push((from, words.len()));

    let mut stretches = vec![(start_s, end_s)];
    if groups.len() > 1 && pauses.len() >= groups.len() - 1 {
        let mut chosen: Vec<(f64, f64)> = pauses.to_vec();
        chosen.sort_by(|a, b| (b.1 - b.0).total_cmp(&(a.1 - a.0)));
        chosen.truncate(groups.len() - 1);
        chosen.sort_by(|a, b| a.0.total_cmp(&b.0));
        stretches.clear();
        let mut at = start_s;
        for (gap_start, gap_end) in chosen {
            stretches.push((at, gap_start.clamp(at, end_s)));
            at = gap_end.clamp(at, end_s);
        }
        stretches.push((at, end_s));
    } else {
        groups = vec![(0, words.len())];
    }

    let mut out = Vec::with_capacity(words.len());
    for ((a, b), (s0, s1)) in groups.into_iter().zip(stretches) {
        let total: f64 = (a..b).map(weight).sum();
        let mut t = s0;
        for i in a..b {
            let d = (s1 - s0) * weight(i) / total;
            out.push(WordTiming { word: words[i].clone(), start_s: t, end_s: t + d });
            t += d;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f64, rate: u32) -> Vec<f32> {
        (0..(seconds * rate as f64) as usize).map(|i| 0.5 * (i as f32 * 0.05).sin()).collect()
    }

    #[test]
    fn bounds_and_pauses_are_found_in_the_audio() {
        let rate = 16_000;
        let mut s = vec![0.0; 8_000]; // 0.5 s silence
        s.extend(tone(1.0, rate));
        s.extend(vec![0.0; 3_200]); // 0.2 s pause
        s.extend(tone(0.5, rate));
        s.extend(vec![0.0; 1_600]);
        let (a, b) = speech_bounds(&s, rate).unwrap();
        assert!((a - 0.5).abs() < 0.011 && (b - 2.2).abs() < 0.011, "{a} {b}");
        let p = pauses(&s, rate);
        assert_eq!(p.len(), 1);
        assert!((p[0].0 - 1.5).abs() < 0.011 && (p[0].1 - 1.7).abs() < 0.011, "{p:?}");
        assert!(speech_bounds(&[0.0; 100], rate).is_none());
    }

    #[test]
    fn clauses_follow_the_pauses_and_words_share_by_weight() {
        let words: Vec<String> = ["Fresh", "bread,", "warm", "light."].map(String::from).into();
        let t = allocate(&words, &[4.0, 4.0, 3.0, 1.0], 1.0, 3.0, &[(1.2, 1.25), (1.8, 2.0)]);
        assert_eq!(t.len(), 4);
        assert!((t[0].start_s - 1.0).abs() < 1e-9 && (t[1].end_s - 1.8).abs() < 1e-9, "{t:?}");
        assert!((t[2].start_s - 2.0).abs() < 1e-9 && (t[3].end_s - 3.0).abs() < 1e-9, "{t:?}");
        assert!((t[2].end_s - 2.75).abs() < 1e-9, "{t:?}");
        // No pause in the audio: one stretch.
        let t = allocate(&words, &[1.0; 4], 0.0, 4.0, &[]);
        assert!((t[2].start_s - 2.0).abs() < 1e-9);
    }
}
