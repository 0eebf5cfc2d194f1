//! espeak-ng, through its command-line program: IPA phonemes for the Piper voice, phoneme
//! counts for word timings, and the formant voice itself for every language no neural voice
//! covers.
//!
//! The CLI rather than the C library: espeak-ng keeps global state (one voice, one callback
//! per process), which a library binding would have to serialise anyway, and a process per
//! sentence costs ~10 ms next to hundreds of milliseconds of synthesis. Text goes in on
//! stdin, so nothing in it can be read as an option.

use std::io::Write;
use std::process::{Command, Stdio};

use super::text;
use super::wav::{self, Pcm};
use super::{Utterance, Voice, VoiceEngine, VoiceError};

/// The espeak-ng program.
const PROGRAM: &str = "espeak-ng";

/// espeak-ng's default speaking rate, words per minute; `rate` scales it.
const DEFAULT_WPM: f32 = 175.0;

/// The espeak-ng voice for a language we narrate (ISO 639-1), or `None`.
pub fn voice_for(lang: &str) -> Option<&'static str> {
    Some(match lang.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase().as_str() {
        "en" => "en-us",
        "fr" => "fr-fr",
        "es" => "es",
        "de" => "de",
        "it" => "it",
        "pt" => "pt",
        "ja" => "ja",
        "zh" => "cmn",
        "ko" => "ko",
        "nl" => "nl",
        "pl" => "pl",
        "ru" => "ru",
        "sv" => "sv",
        "tr" => "tr",
        _ => return None,
    })
}

/// Whether the espeak-ng program runs here (it is a system package: `apt-get install espeak-ng`).
pub fn available() -> bool {
    Command::new(PROGRAM)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs espeak-ng with `args`, feeding `input` on stdin; returns stdout.
fn run(args: &[&str], input: &str) -> Result<Vec<u8>, VoiceError> {
    let mut child = Command::new(PROGRAM)
        .args(args)
        .args(["-b", "1", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            VoiceError::Unavailable(format!("{PROGRAM} cannot be started ({e}); install the espeak-ng package"))
        })?;
    let mut stdin = child.stdin.take().ok_or_else(|| VoiceError::Failed("espeak-ng has no stdin".into()))?;
    let text = input.to_owned();
    // Write from another thread: a large input could otherwise fill the pipe while espeak
    // waits for us to read its output.
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().map_err(|e| VoiceError::Failed(format!("{PROGRAM}: {e}")))?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(VoiceError::Failed(format!(
            "{PROGRAM} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// Removes espeak's language-switch markers such as `(en)` or `(fr)` from an IPA line.
fn strip_language_flags(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        match rest[open..].find(')') {
            Some(close) => rest = &rest[open + close + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// IPA for `input`, one line per clause as espeak-ng cuts it (punctuation dropped).
pub fn ipa_lines(voice: &str, input: &str) -> Result<Vec<String>, VoiceError> {
    let out = run(&["-q", "--ipa", "-v", voice], input)?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .map(strip_language_flags)
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect())
}

/// The sentence's phonemes the way Piper was trained on them: espeak-ng's IPA per clause,
/// each clause followed by the punctuation that ended it in the text (espeak drops it, but
/// the voice uses it for prosody), clauses separated by a space.
pub fn sentence_phonemes(voice: &str, sentence: &str) -> Result<String, VoiceError> {
    let lines = ipa_lines(voice, sentence)?;
    let mut marks: Vec<char> = sentence.chars().filter(|c| text::CLAUSE_END.contains(c)).collect();
    let last = sentence.trim_end().chars().last().filter(|c| !c.is_alphanumeric()).map(|c| match c {
        '!' | '！' => '!',
        '?' | '？' => '?',
        _ => '.',
    });
    if marks.len() + 1 != lines.len() {
        // espeak cut the clauses differently from the punctuation (a long clause, a dash):
        // mark every cut with a comma.
        marks = vec![','; lines.len().saturating_sub(1)];
    }
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(line);
        match marks.get(i) {
            Some(&m) => out.push(match m {
                '、' | '，' => ',',
                '；' => ';',
                '：' => ':',
                other => other,
            }),
            None if i + 1 == lines.len() => out.extend(last),
            None => {}
        }
    }
    Ok(out)
}

/// Phonemes in an IPA string: letters only, without stress and length marks.
pub fn phoneme_count(ipa: &str) -> usize {
    ipa.chars().filter(|c| c.is_alphabetic() && !matches!(c, 'ˈ' | 'ˌ' | 'ː' | 'ˑ')).count()
}

/// Phonemes per word, for timing allocation: every word phonemised as its own paragraph
/// (blank lines between; with `--stdin` single newlines do not separate) in one espeak-ng call (a number such as "1998" counts all the words it is read as). When espeak
/// returns a different number of lines, letters are counted instead.
pub fn word_weights(voice: &str, words: &[String]) -> Vec<f32> {
    let letters = |w: &String| w.chars().filter(|c| c.is_alphanumeric()).count().max(1) as f32;
    let input: String = words.iter().map(|w| format!("{w}\n\n")).collect();
    match ipa_lines(voice, &input) {
        Ok(lines) if lines.len() == words.len() => lines.iter().map(|l| (phoneme_count(l) as f32).max(1.0)).collect(),
        _ => words.iter().map(letters).collect(),
    }
}

/// espeak-ng's formant synthesiser in one language: robotic but intelligible, and it speaks
/// every language we support. Named as what it is wherever it is used.
#[derive(Debug, Clone)]
pub struct EspeakVoice {
    lang: String,
    voice: &'static str,
    id: String,
}

impl EspeakVoice {
    /// The formant voice for `lang`, if espeak-ng has one.
    pub fn for_language(lang: &str) -> Result<Self, VoiceError> {
        let voice =
            voice_for(lang).ok_or_else(|| VoiceError::Unavailable(format!("espeak-ng has no voice for '{lang}'")))?;
        Ok(Self { lang: lang.to_owned(), voice, id: format!("espeak-ng:{voice}") })
    }

    /// One sentence at `rate` (1.0 = espeak's default speed).
    fn sentence(&self, sentence: &str, rate: f32) -> Result<Pcm, VoiceError> {
        let wpm = (DEFAULT_WPM * rate).round().clamp(80.0, 450.0).to_string();
        let bytes = run(&["-v", self.voice, "-s", &wpm, "--stdout"], sentence)?;
        wav::parse(&bytes)
    }
}

impl Voice for EspeakVoice {
    fn id(&self) -> &str {
        &self.id
    }
    fn engine(&self) -> VoiceEngine {
        VoiceEngine::EspeakNg
    }
    fn language(&self) -> &str {
        &self.lang
    }
    fn espeak_voice(&self) -> &str {
        self.voice
    }
    fn speak(&self, text: &str, rate: f32) -> Result<Utterance, VoiceError> {
        super::speak_by_sentence(self, text, rate, |s| self.sentence(s, rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_flags_are_removed_and_phonemes_counted() {
        assert_eq!(strip_language_flags("(en)wˈiːk(fr) bɔ̃"), "wˈiːk bɔ̃");
        assert_eq!(phoneme_count("fɹˈɛʃ bɹˈɛd"), 8);
        assert_eq!(voice_for("fr-CA"), Some("fr-fr"));
        assert_eq!(voice_for("xx"), None);
    }

    #[test]
    fn sentence_phonemes_keep_the_clause_punctuation() {
        let p = sentence_phonemes("en-us", "Fresh bread at dawn, warm from the oven.").unwrap();
        assert!(p.starts_with("fɹˈɛʃ bɹˈɛd æt dˈɔːn, "), "{p}");
        assert!(p.ends_with('.'), "{p}");
        let w = word_weights("en-us", &["Fresh".into(), "bread,".into(), "1998".into()]);
        assert_eq!(w.len(), 3);
        assert!(w[2] > w[0] * 2.0, "a year is read as many words: {w:?}");
    }
}
