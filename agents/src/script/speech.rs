//! How long a line takes to say, estimated from its text, so a writer can size each
//! scene's narration before any voice speaks it. The voicing stage measures the real
//! speech and fits it (a little faster at most); a line sized here at ~150 words a minute
//! leaves it room to do so.

use super::facts::number_core;
use super::text::is_cjk;
use crate::voice::fit::FitSettings;

/// Speaking pace the estimate assumes: ~150 words a minute at ~1.5 syllables a word.
pub const SYLLABLES_PER_S: f64 = 3.75;
/// Pause the voice leaves between sentences and after a comma, seconds.
const PAUSE_S: f64 = 0.2;
/// Shortest speech time a scene is given, seconds.
const MIN_SPEECH_S: f64 = 0.8;

/// Vowel letters of the Latin-script languages we narrate.
fn is_vowel(c: char) -> bool {
    "aeiouyàâäáãåæéèêëíìîïóòôöõøœúùûüýÿ".contains(c)
}

/// Syllables of one Latin-script word: groups of vowels, less an English silent final `e`.
fn word_syllables(word: &str) -> f64 {
    let lower = word.to_lowercase();
    let chars: Vec<char> = lower.chars().filter(|c| c.is_alphabetic()).collect();
    if chars.is_empty() {
        return 0.0;
    }
    let mut groups = 0;
    let mut in_vowel = false;
    for &c in &chars {
        let v = is_vowel(c);
        if v && !in_vowel {
            groups += 1;
        }
        in_vowel = v;
    }
    let silent_e = chars.len() > 2 && chars.ends_with(&['e']) && !chars.ends_with(&['l', 'e']) && groups > 1;
    (groups - usize::from(silent_e)).max(1) as f64
}

/// Syllables a number takes to say: about 1.6 per digit ("35" ≈ "thirty-five"), more for a
/// decimal point and for the unit or sign around it.
fn number_syllables(token: &str) -> f64 {
    let core = number_core(token).unwrap_or_default();
    let digits = core.chars().filter(char::is_ascii_digit).count() as f64;
    let point = if core.contains('.') || core.contains(':') { 2.0 } else { 0.0 };
    let sign = if token.contains(['%', '$', '€', '£']) { 2.0 } else { 0.0 };
    let suffix: String = token.chars().skip_while(|c| !c.is_ascii_digit()).filter(|c| c.is_alphabetic()).collect();
    (digits * 1.6).ceil() + point + sign + if suffix.is_empty() { 0.0 } else { 1.0 }
}

/// Estimated syllables in `text` (a kana counts one, a kanji two and a half: the pace the
/// Japanese voice was measured to read at).
pub fn syllables(text: &str) -> f64 {
    let mut total = 0.0;
    for token in text.split_whitespace() {
        let cjk: Vec<char> = token.chars().filter(|c| is_cjk(*c)).collect();
        if cjk.is_empty() && token.chars().any(|c| c.is_ascii_digit()) {
            total += number_syllables(token);
            continue;
        }
        if !cjk.is_empty() {
            // Measured with espeak-ng's Japanese voice: about 0.27 s a kana and twice that and
            // more for a kanji (the formant voice reads slowly); punctuation is a pause.
            total += cjk
                .iter()
                .map(|&c| match c as u32 {
                    0x3000..=0x303f | 0xff00..=0xff20 => 0.0,
                    0x3040..=0x30ff => 1.0,
                    _ => 2.5,
                })
                .sum::<f64>();
            // Latin words and numbers inside the run ("8月10日", "7時"), one by one.
            let rest: String = token.chars().map(|c| if is_cjk(c) { ' ' } else { c }).collect();
            total += rest
                .split_whitespace()
                .map(|w| if w.chars().any(|c| c.is_ascii_digit()) { number_syllables(w) } else { word_syllables(w) })
                .sum::<f64>();
            continue;
        }
        // Units read as words ("dB" → "decibels").
        total += match token.trim_matches(|c: char| !c.is_alphanumeric()) {
            "dB" => 3.0,
            "km" | "kg" | "cm" | "mm" => 3.0,
            "kWh" => 5.0,
            t if t.chars().count() >= 2 && t.chars().all(|c| c.is_ascii_uppercase()) => 1.5 * t.len() as f64,
            _ => word_syllables(token),
        };
    }
    total
}

/// Estimated seconds to say `text` at the natural pace, pauses included.
pub fn seconds(text: &str) -> f64 {
    let pauses = text.chars().filter(|c| matches!(c, ',' | ';' | ':' | '.' | '!' | '?' | '、' | '。')).count();
    let pauses = pauses.saturating_sub(1) as f64;
    syllables(text) / SYLLABLES_PER_S + pauses * PAUSE_S
}

/// Estimated seconds to say every one of `lines` (a script's narration, scene by scene): what
/// the cost model prices the voice by before any voice has spoken.
pub fn total_seconds<'a>(lines: impl IntoIterator<Item = &'a str>) -> f64 {
    lines.into_iter().map(seconds).sum()
}

/// Seconds of speech a scene of `scene_s` seconds has room for, after the silence the
/// voicing stage leaves before and after each scene's speech.
pub fn speech_budget(scene_s: f64, fit: &FitSettings) -> f64 {
    (scene_s - fit.lead_in_s - fit.tail_s).max(MIN_SPEECH_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_follow_a_150_words_a_minute_pace() {
        // 10 plain words ≈ 4 s at 150 wpm.
        let s = seconds("the shop opens its doors to the whole street today");
        assert!((3.0..=5.0).contains(&s), "{s}");
        assert!(seconds("It runs at 35 dB.") > seconds("It runs quietly."));
        assert_eq!(word_syllables("bread"), 1.0);
        assert_eq!(word_syllables("neighbourhood"), 3.0);
        assert_eq!(word_syllables("smaller"), 2.0);
        assert!(syllables("新しいお茶屋") > 3.0);
    }

    #[test]
    fn a_twelve_second_four_scene_video_leaves_about_two_seconds_a_scene() {
        let b = speech_budget(3.0, &FitSettings::default());
        assert!((b - 2.1).abs() < 1e-9);
    }
}
