//! The facts of a brief's content that any script must keep: numbers (with their units),
//! names, quoted strings and list items. Numbers, quoted strings and list structure are
//! found the same way in every language; names are capitalised words not opening a
//! sentence, which holds for English, French and Spanish but not for German (every noun is
//! capitalised: only quoted strings, acronyms and words with inner capitals or digits count
//! there) nor for Japanese (no capitals: quoted strings and Latin-script words only).

use serde::{Deserialize, Serialize};

use super::text::{self, is_cjk};

/// What kind of fact a [`Fact`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// A number, with its unit when the brief gives one ("35 dB", "30%", "3pm").
    Number,
    /// A proper name (a place, a brand, a team, a day).
    Name,
    /// A string the brief quotes ("'StrideLab'"), to be shown or said as written.
    Quoted,
    /// One item of a list the brief enumerates.
    Item,
}

/// One fact of the brief's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// The kind.
    pub kind: FactKind,
    /// The fact as written in the brief.
    pub text: String,
}

/// Units that may follow a number as a separate word.
const UNITS: &[&str] = &[
    "db", "km", "kg", "g", "mg", "m", "cm", "mm", "l", "ml", "h", "hours", "hour", "min", "minutes", "s", "gb", "mb",
    "tb", "mph", "km/h", "kwh", "kw", "w", "v", "°c", "°f", "%", "percent", "per", "pm", "am", "euros", "dollars", "€",
    "$", "£", "x", "days", "weeks", "years", "months", "people", "seats", "pages",
];

/// The digits of a number token, for comparing numbers however they are written:
/// full-width digits become ASCII, currency signs, units and percent signs are dropped
/// ("$49" → "49", "30%" → "30", "3pm" → "3", "1,200" → "1200", "1.0" → "1.0").
pub fn number_core(token: &str) -> Option<String> {
    let ascii: String = token
        .chars()
        .map(|c| match c as u32 {
            0xff10..=0xff19 => char::from_u32(c as u32 - 0xff10 + '0' as u32).unwrap_or(c),
            _ => c,
        })
        .collect();
    let start = ascii.find(|c: char| c.is_ascii_digit())?;
    let core: String = ascii[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | ':'))
        .filter(|c| *c != ',')
        .collect();
    let core = core.trim_end_matches(['.', ':']).to_owned();
    (!core.is_empty()).then_some(core)
}

/// Every number in `text` as written, with a following unit word attached ("35 dB").
pub fn numbers(text: &str) -> Vec<String> {
    // Digits inside CJK text ("8月10日") are separate tokens.
    let spaced: String = text
        .chars()
        .flat_map(|c| if is_cjk(c) || "：、。「」（）".contains(c) { vec![' ', c, ' '] } else { vec![c] })
        .collect();
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t =
            tokens[i].trim_matches(|c: char| matches!(c, ',' | ';' | ':' | '(' | ')' | '!' | '?' | '"' | '\'' | '—'));
        let t = t.trim_end_matches('.');
        if let Some(core) = number_core(t) {
            // Digits inside a CJK run: keep only the number and what is glued to it.
            let shown = if t.chars().any(is_cjk) { core.clone() } else { t.to_owned() };
            let unit = tokens.get(i + 1).map(|u| u.trim_end_matches([',', '.', ';', ':', '!', '?']));
            match unit.filter(|u| UNITS.contains(&u.to_lowercase().as_str())) {
                Some(u) if !shown.chars().last().is_some_and(char::is_alphabetic) && !shown.ends_with('%') => {
                    out.push(format!("{shown} {u}"));
                    i += 1;
                }
                _ => out.push(shown),
            }
        }
        i += 1;
    }
    out
}

/// Quoted strings in `text`: '…', "…", “…”, ‘…’, «…», „…“, 「…」, 『…』. An apostrophe
/// inside a word ("Saturday's") is not a quote.
pub fn quoted(text: &str) -> Vec<String> {
    const PAIRS: [(char, char); 8] =
        [('"', '"'), ('“', '”'), ('‘', '’'), ('«', '»'), ('„', '“'), ('「', '」'), ('『', '』'), ('\'', '\'')];
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let open = PAIRS.iter().find(|(o, _)| *o == chars[i]);
        let word_before = i > 0 && chars[i - 1].is_alphanumeric();
        match open {
            Some(&(o, close)) if !(word_before && (o == '\'' || o == '’' || o == '‘')) => {
                let end = (i + 1..chars.len()).find(|&j| {
                    chars[j] == close && (close != '\'' || chars.get(j + 1).is_none_or(|n| !n.is_alphanumeric()))
                });
                if let Some(end) = end {
                    let inner: String = chars[i + 1..end].iter().collect();
                    let inner = inner.trim().to_owned();
                    if inner.chars().any(char::is_alphanumeric) && inner.chars().count() <= 80 {
                        out.push(inner);
                    }
                    i = end + 1;
                    continue;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether a word is written like a name anywhere in a sentence: an acronym ("NASA"),
/// inner capitals ("StrideLab", "iPhone"), or letters mixed with digits ("A320").
fn name_shaped(word: &str) -> bool {
    let letters: Vec<char> = word.chars().filter(|c| c.is_alphabetic()).collect();
    let inner_caps = word.chars().skip(1).any(char::is_uppercase) && word.chars().any(char::is_lowercase);
    let acronym = letters.len() >= 2 && letters.iter().all(|c| c.is_uppercase());
    let mixed = !letters.is_empty() && word.chars().any(|c| c.is_ascii_digit()) && letters.len() >= 1 && {
        let lower: String = word.to_lowercase();
        !UNITS.iter().any(|u| lower.ends_with(u))
            && !lower.ends_with("st")
            && !lower.ends_with("nd")
            && !lower.ends_with("rd")
            && !lower.ends_with("th")
    };
    inner_caps || acronym || mixed
}

/// Names in `text`: runs of capitalised words that do not open a sentence (or a list item),
/// plus name-shaped words anywhere. German text counts only name-shaped words (every German
/// noun is capitalised).
pub fn names(text: &str, lang: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for sentence in text::sentences(text) {
        let mut run: Vec<String> = Vec::new();
        let mut opening = true;
        for raw in sentence.split_whitespace() {
            let word = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '-' && c != '\'' && c != '’');
            let word = word.trim_end_matches("'s").trim_end_matches("’s");
            let breaks_after = raw.ends_with([':', '—', ';', '(', ')', '.', '!', '?']) || raw.ends_with(',');
            let is_cap = word.chars().next().is_some_and(char::is_uppercase);
            let capital_name = is_cap && !opening && lang != "de" && !word.chars().any(is_cjk);
            let candidate = !word.is_empty()
                && (capital_name || name_shaped(word))
                && !super::lexicon::has(super::lexicon::CAPITALISED_COMMON, &word.to_lowercase());
            if candidate {
                run.push(word.to_owned());
            } else if !run.is_empty() {
                out.push(run.join(" "));
                run.clear();
            }
            if breaks_after && !run.is_empty() {
                out.push(run.join(" "));
                run.clear();
            }
            opening = raw.ends_with([':', '—', ';']) || raw == "—" || raw == "-" || (opening && word.is_empty());
        }
        if !run.is_empty() {
            out.push(run.join(" "));
        }
    }
    out.dedup();
    out
}

/// Content words of `text` (lowercase, stopwords and one-letter words dropped), the units
/// compared when checking whether a list item made it into a script.
pub fn content_words(text: &str) -> Vec<String> {
    text::words(text)
        .into_iter()
        .filter(|w| w.chars().count() >= 2 && !super::lexicon::has(super::lexicon::STOPWORDS, w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_units() {
        assert_eq!(
            numbers("runs at 35 dB, cuts bills by 30%, hits 1.0 at 3pm for $49."),
            ["35 dB", "30%", "1.0", "3pm", "$49"]
        );
        assert_eq!(number_core("３５"), Some("35".into()));
        assert_eq!(number_core("1,200"), Some("1200".into()));
        assert_eq!(numbers("営業時間は9時から"), ["9"]);
        assert_eq!(numbers("夏祭り：8月10日、花火"), ["8", "10"]);
        assert_eq!(numbers("42 km along the coast, 8,000 runners"), ["42 km", "8,000"]);
    }

    #[test]
    fn quotes_are_found_but_apostrophes_are_not() {
        assert_eq!(quoted("end with the store logo text 'StrideLab'."), ["StrideLab"]);
        assert_eq!(quoted("next Saturday's home match, the keeper's night"), Vec::<String>::new());
        assert_eq!(quoted("「抹茶ラテ」と «Le Fournil»"), ["抹茶ラテ", "Le Fournil"]);
    }

    #[test]
    fn names_are_capitalised_words_that_do_not_open_a_sentence() {
        assert_eq!(names("Weekly recap: three goals and a home match against Riverside at 3pm.", "en"), ["Riverside"]);
        assert_eq!(names("Visit Café Lumière in Lyon. Fresh coffee.", "fr"), ["Café Lumière", "Lyon"]);
        assert_eq!(names("Der neue Laden von StrideLab öffnet am Montag.", "de"), ["StrideLab"]);
        assert_eq!(names("Our app hits 1.0 with NASA data", "en"), ["NASA"]);
    }
}
