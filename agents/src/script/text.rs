//! Small text helpers the script module shares: sentences with their punctuation, words,
//! script detection and the normalisation used to compare a script with its brief.

/// Whether `c` belongs to a script written without spaces between words (Chinese,
/// Japanese kana and kanji, CJK punctuation, full-width forms).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xf900..=0xfaff | 0xff00..=0xffef)
}

/// Whether `c` is an emoji or pictograph (not speakable, not drawn by the caption font).
pub fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1f000..=0x1faff | 0x2600..=0x27bf | 0x2b00..=0x2bff | 0xfe0f | 0x200d)
}

/// Characters that end a sentence, in the scripts we write and narrate.
const SENTENCE_END: [char; 7] = ['.', '!', '?', '。', '！', '？', '…'];

/// Sentences of `text` with their end punctuation kept, whitespace trimmed; pieces without a
/// letter or digit are dropped. A full stop between digits (`1.0`) or after a German day
/// number before its month (`8. Juli`) does not end a sentence; repeated marks (`!!!`, `?!`,
/// `...`) and closing quotes stay with their sentence; text without final punctuation is one
/// sentence. The script's analysis and the voices (one synthesis per sentence) cut text the
/// same way.
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
        if next.is_some_and(|n| SENTENCE_END.contains(&n) || matches!(n, '"' | '\'' | '”' | '’' | '»' | '」')) {
            continue;
        }
        let decimal = c == '.' && prev.is_some_and(|p| p.is_ascii_digit()) && next.is_some_and(|n| n.is_ascii_digit());
        if decimal || (c == '.' && ordinal_date(&chars, i)) {
            continue;
        }
        if next.is_none_or(char::is_whitespace) || is_cjk(c) || next.is_some_and(is_emoji) {
            push_sentence(&mut out, &current);
            current.clear();
        }
    }
    push_sentence(&mut out, &current);
    out
}

/// German months: "am 8. Juli" writes the day as an ordinal with a full stop.
const MONTHS_DE: [&str; 12] = [
    "januar",
    "februar",
    "märz",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "dezember",
];

/// Whether the full stop at `i` ends a day number before a month ("8. Juli").
fn ordinal_date(chars: &[char], i: usize) -> bool {
    let digits = chars[..i].iter().rev().take_while(|c| c.is_ascii_digit()).count();
    if !(1..=2).contains(&digits) {
        return false;
    }
    let rest: String = chars[i + 1..].iter().collect();
    let next = rest.split_whitespace().next().unwrap_or("").to_lowercase();
    let next = next.trim_matches(|c: char| !c.is_alphabetic());
    MONTHS_DE.contains(&next)
}

/// Split at commas and semicolons (Latin and CJK), but not at a comma between digits
/// ("8,000 runners").
pub fn split_commas(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let digit_comma =
            c == ',' && i > 0 && chars[i - 1].is_ascii_digit() && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if matches!(c, ',' | ';' | '、' | '，' | '；') && !digit_comma {
            out.push(std::mem::take(&mut cur).trim().to_owned());
        } else {
            cur.push(c);
        }
    }
    out.push(cur.trim().to_owned());
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

fn push_sentence(out: &mut Vec<String>, s: &str) {
    let t = s.trim();
    if t.chars().any(char::is_alphanumeric) {
        out.push(t.to_owned());
    }
}

/// Words of `text`, lowercased, split on anything that is not a letter, digit, an inner
/// hyphen or apostrophe, or a decimal point between digits. CJK runs are kept whole (the
/// callers compare them by substring).
pub fn words(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let inner = |c: char| {
            matches!(c, '-' | '\'' | '’' | '.' | ',')
                && !cur.is_empty()
                && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())
                && (c != '.' && c != ','
                    || (cur.chars().last().is_some_and(|p| p.is_ascii_digit())
                        && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit())))
        };
        if c.is_alphanumeric() || inner(c) {
            cur.extend(c.to_lowercase());
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur).replace('’', "'"));
        }
    }
    if !cur.is_empty() {
        out.push(cur.replace('’', "'"));
    }
    out
}

/// `text` with its first letter capitalised.
pub fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `text` with its first letter lowercased, unless the first word looks like a name
/// (an acronym, a word with inner capitals or digits).
pub fn decapitalise(text: &str) -> String {
    let first_word = text.split_whitespace().next().unwrap_or("");
    let inner_caps = first_word.chars().skip(1).any(char::is_uppercase);
    if inner_caps || first_word.chars().any(|c| c.is_ascii_digit()) || first_word == "I" {
        return text.to_owned();
    }
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `text` without emoji, with runs of `!`/`?` reduced to one mark and spaces collapsed.
pub fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last: Option<char> = None;
    for c in text.chars() {
        if is_emoji(c) {
            continue;
        }
        if matches!(c, '!' | '?' | '！' | '？') && last == Some(c) {
            continue;
        }
        out.push(c);
        last = Some(c);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ").replace(" ,", ",").replace(" .", ".").replace(" !", "!")
}

/// Whether the lowercase `needle` occurs in `hay` (lowercase) as whole words, or as a
/// substring when either is written without spaces.
pub fn contains_words(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    if needle.chars().any(is_cjk) || hay.chars().any(is_cjk) {
        return hay.contains(needle);
    }
    let hw = words(hay);
    let nw = words(needle);
    !nw.is_empty() && hw.windows(nw.len()).any(|w| w == nw.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_keep_marks_and_numbers() {
        assert_eq!(
            sentences("🚀 Launch day!!! Our app hits 1.0 🎉🎉 — faster sync. Done"),
            ["🚀 Launch day!!!", "Our app hits 1.0 🎉🎉 — faster sync.", "Done"]
        );
        assert_eq!(sentences("東京の朝。パン屋が開く。"), ["東京の朝。", "パン屋が開く。"]);
        assert_eq!(sentences("Stadtfest am 8. Juli: Musik. Ende"), ["Stadtfest am 8. Juli: Musik.", "Ende"]);
        assert_eq!(split_commas("42 km, 8,000 runners; a pier"), ["42 km", "8,000 runners", "a pier"]);
    }

    #[test]
    fn words_keep_decimals_hyphens_and_apostrophes() {
        assert_eq!(words("It's 1.0, high-visibility vests; 3pm."), ["it's", "1.0", "high-visibility", "vests", "3pm"]);
        assert_eq!(words("1,200 people"), ["1,200", "people"]);
    }

    #[test]
    fn tidy_drops_emoji_and_repeated_marks() {
        assert_eq!(tidy("🚀 Launch day!!! 🎉🎉"), "Launch day!");
        assert!(contains_words("it runs at 35 db", "35 db"));
        assert!(!contains_words("calmer days", "calm"));
    }
}
