//! Narration text cut the way the voices need it: sentences (each synthesised on its own,
//! because the Piper model's attention cost grows with the square of the input length) and
//! words (the units that get timings and make up subtitle cues).

/// Characters that end a sentence, in the scripts we narrate.
const SENTENCE_END: [char; 7] = ['.', '!', '?', '。', '！', '？', '…'];

/// Punctuation inside a sentence after which a speaker pauses briefly.
pub const CLAUSE_END: [char; 7] = [',', ';', ':', '、', '，', '；', '：'];

/// Splits `text` into sentences, punctuation kept, whitespace trimmed. A full stop between
/// two digits (`3.5`) does not end a sentence; text without final punctuation is one
/// sentence.
pub fn sentences(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        current.push(c);
        if !SENTENCE_END.contains(&c) {
            continue;
        }
        let next = chars.get(i + 1).copied();
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let decimal = c == '.' && prev.is_some_and(|p| p.is_ascii_digit()) && next.is_some_and(|n| n.is_ascii_digit());
        let more_punct = next.is_some_and(|n| SENTENCE_END.contains(&n) || n == '"' || n == '\'' || n == '»');
        let ends = !decimal && !more_punct && (next.is_none_or(char::is_whitespace) || is_cjk(c));
        if ends {
            let s = current.trim();
            if s.chars().any(char::is_alphanumeric) {
                out.push(s.to_owned());
            }
            current.clear();
        }
    }
    let s = current.trim();
    if s.chars().any(char::is_alphanumeric) {
        out.push(s.to_owned());
    }
    out
}

/// The words of a sentence as they appear in it (punctuation attached). Scripts written
/// without spaces (Chinese, Japanese) are cut into characters, punctuation attached to the
/// character before it, so that they too get timings and line breaks.
pub fn words(sentence: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for token in sentence.split_whitespace() {
        if token.chars().any(is_cjk) {
            for c in token.chars() {
                match out.last_mut() {
                    Some(last) if !c.is_alphanumeric() => last.push(c),
                    _ => out.push(c.to_string()),
                }
            }
        } else if !token.chars().any(char::is_alphanumeric) {
            // A lone dash or quote belongs to the word before it.
            match out.last_mut() {
                Some(last) => {
                    last.push(' ');
                    last.push_str(token);
                }
                None => out.push(token.to_owned()),
            }
        } else {
            out.push(token.to_owned());
        }
    }
    out
}

/// Whether `c` is a CJK ideograph, kana or CJK punctuation (scripts written without spaces).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3000..=0x30FF   // CJK punctuation, hiragana, katakana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xFF00..=0xFFEF // full-width forms
    )
}

/// How many clause pauses (commas and the like) a sentence holds, not counting its end.
pub fn clause_breaks(sentence: &str) -> usize {
    sentence.trim_end_matches(|c: char| !c.is_alphanumeric()).chars().filter(|c| CLAUSE_END.contains(c)).count()
}

/// A one-sentence text without its last clause, ended with a full stop, and the clause
/// given up; `None` when the text has no clause break or more than one sentence.
pub fn without_last_clause(text: &str) -> Option<(String, String)> {
    if sentences(text).len() != 1 {
        return None;
    }
    let body = text.trim().trim_end_matches(|c: char| !c.is_alphanumeric());
    let cut = body.rfind(|c: char| CLAUSE_END.contains(&c))?;
    let keep = body[..cut].trim_end_matches(|c: char| c.is_whitespace() || CLAUSE_END.contains(&c));
    // "and"/"or" left dangling before the cut clause goes with it.
    let keep = ["and", "or", "et", "y", "und", "e", "ou", "o"]
        .iter()
        .find_map(|w| keep.strip_suffix(w).filter(|k| k.ends_with(' ')))
        .map_or(keep, |k| k.trim_end_matches(|c: char| c.is_whitespace() || CLAUSE_END.contains(&c)));
    if !keep.chars().any(char::is_alphanumeric) {
        return None;
    }
    let full_stop = if keep.chars().last().is_some_and(is_cjk) { "。" } else { "." };
    Some((
        format!("{keep}{full_stop}"),
        body[cut..].trim_start_matches(|c: char| CLAUSE_END.contains(&c)).trim().to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_on_final_punctuation_only() {
        assert_eq!(
            sentences("Fresh bread at dawn. Open 3.5 hours a day! Why wait? Come in"),
            ["Fresh bread at dawn.", "Open 3.5 hours a day!", "Why wait?", "Come in"]
        );
        assert_eq!(sentences("Wait... what?!  "), ["Wait...", "what?!"]);
        assert_eq!(sentences("朝の光。パンの香り。"), ["朝の光。", "パンの香り。"]);
        assert!(sentences("  ... ").is_empty());
    }

    #[test]
    fn words_keep_punctuation_and_cut_cjk_into_characters() {
        assert_eq!(words("Fresh bread, at dawn — warm."), ["Fresh", "bread,", "at", "dawn —", "warm."]);
        assert_eq!(words("朝の光。"), ["朝", "の", "光。"]);
        assert_eq!(clause_breaks("Fresh bread, warm light; open doors."), 2);
    }

    #[test]
    fn the_last_clause_goes_with_a_dangling_conjunction() {
        assert_eq!(
            without_last_clause("It runs at 35 dB, cuts bills by a third, and installs in one afternoon."),
            Some(("It runs at 35 dB, cuts bills by a third.".into(), "and installs in one afternoon".into()))
        );
        assert_eq!(without_last_clause("Fresh bread at dawn."), None);
        assert_eq!(without_last_clause("One. Two, three."), None);
        assert_eq!(without_last_clause(", only a clause"), None);
    }
}
