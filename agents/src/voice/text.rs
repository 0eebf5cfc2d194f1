//! Narration text cut the way the voices need it: sentences (each synthesised on its own,
//! because the Piper model's attention cost grows with the square of the input length; the
//! script's splitter, so what the script checks is what is spoken) and words (the units that
//! get timings and make up subtitle cues).

pub use crate::script::text::{is_cjk, sentences};

/// Punctuation inside a sentence after which a speaker pauses briefly.
pub const CLAUSE_END: [char; 7] = [',', ';', ':', '、', '，', '；', '：'];

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
