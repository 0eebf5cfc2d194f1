//! What of a brief reaches the planner, the director and the embedder: bounded, whatever
//! the brief.
//!
//! A legal brief can be 10,000 characters of anything; 9,000 emoji are some 36,000 bytes and
//! as many model tokens, and the local model's memory and time grow faster than linearly
//! with its prompt. So the text the planning stages see is capped in one linear pass:
//!
//! 1. runs of one repeated non-alphanumeric character (`!!!!!`, `😀😀😀😀`) collapse to
//!    [`MAX_RUN`] (letters and digits are left alone: `1000000` means something);
//! 2. the text is cut after [`MAX_CLAUSES`] clauses, and
//! 3. at the last clause end that fits an estimated [`TOKEN_BUDGET`] tokens (mid-clause only
//!    when the first clause alone is longer).
//!
//! The estimate is conservative for byte-level BPE tokenizers (SmolLM2's): a tenth of a token
//! per ASCII space, three tenths per ASCII letter or digit, one per ASCII punctuation mark,
//! and one per UTF-8 byte of anything else. The stored brief is never changed; the plan's
//! metadata says what was cut.

use serde::Serialize;

/// The most estimated model tokens of brief text the planning stages get.
pub const TOKEN_BUDGET: usize = 768;
/// The longest run of one repeated non-alphanumeric character kept.
pub const MAX_RUN: usize = 3;
/// The most clauses kept (a clause ends at `.`, `!`, `?`, `;`, a line break or their CJK
/// forms).
pub const MAX_CLAUSES: usize = 48;

/// The text the planning stages see, and what capping did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanningBrief {
    /// The capped text.
    pub text: String,
    /// Characters in the brief.
    pub chars_in: usize,
    /// Characters in the capped text.
    pub chars_used: usize,
    /// Characters removed by collapsing repeated runs.
    pub collapsed_chars: usize,
    /// Whether the clause limit or the token budget cut the text.
    pub truncated: bool,
    /// The token estimate of the capped text.
    pub estimated_tokens: usize,
}

impl PlanningBrief {
    /// Whether the planning stages see the brief exactly as stored.
    pub fn unchanged(&self) -> bool {
        self.collapsed_chars == 0 && !self.truncated
    }
}

/// Estimated tokens of one character, in tenths.
fn cost_tenths(c: char) -> usize {
    if c == ' ' {
        1
    } else if c.is_ascii_alphanumeric() {
        3
    } else if c.is_ascii() {
        10
    } else {
        10 * c.len_utf8()
    }
}

fn ends_clause(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | ';' | '\n' | '。' | '！' | '？' | '；')
}

/// Cap `content` for planning (see the module documentation). Linear in its length; the
/// result is at most [`TOKEN_BUDGET`] estimated tokens.
pub fn planning_brief(content: &str) -> PlanningBrief {
    let budget = TOKEN_BUDGET * 10;
    let mut text = String::with_capacity(content.len().min(budget));
    let (mut chars_in, mut collapsed_chars) = (0, 0);
    let (mut prev, mut run) = (None, 0usize);
    let (mut spent, mut clauses) = (0usize, 0usize);
    // Byte length and token estimate of the text up to the last clause end.
    let mut clause_end: Option<(usize, usize)> = None;
    let mut truncated = false;
    let mut chars = content.chars();
    for c in chars.by_ref() {
        chars_in += 1;
        run = if prev == Some(c) { run + 1 } else { 1 };
        prev = Some(c);
        if run > MAX_RUN && !c.is_alphanumeric() {
            collapsed_chars += 1;
            continue;
        }
        let cost = cost_tenths(c);
        if spent + cost > budget {
            truncated = true;
            if let Some((len, at)) = clause_end {
                text.truncate(len);
                spent = at;
            }
            break;
        }
        text.push(c);
        spent += cost;
        // A run of clause marks (`!!!`) ends one clause, at its last mark.
        if ends_clause(c) && run == 1 {
            clauses += 1;
            if clauses > MAX_CLAUSES {
                truncated = true;
                if let Some((len, at)) = clause_end {
                    text.truncate(len);
                    spent = at;
                }
                break;
            }
        }
        if ends_clause(c) {
            clause_end = Some((text.len(), spent));
        }
    }
    chars_in += chars.count();
    let text = text.trim_end().to_owned();
    PlanningBrief {
        chars_used: text.chars().count(),
        text,
        chars_in,
        collapsed_chars,
        truncated,
        estimated_tokens: spent.div_ceil(10),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_briefs_pass_unchanged() {
        for brief in [
            "A calm teaser for a neighbourhood bakery: fresh bread at dawn, warm light.",
            "Spring sale!!! Everything must go. 1000000 reasons to come — 東京の夜景 😀😀",
            "First line.\nSecond line; third clause? Yes!",
        ] {
            let p = planning_brief(brief);
            assert_eq!(p.text, brief);
            assert!(p.unchanged(), "{p:?}");
            assert_eq!(p.chars_in, brief.chars().count());
        }
    }

    #[test]
    fn repeated_symbols_collapse_and_the_budget_holds() {
        let emoji = planning_brief(&format!("Spring sale {}", "😀".repeat(9000)));
        assert_eq!(emoji.text, "Spring sale 😀😀😀");
        assert_eq!((emoji.chars_in, emoji.collapsed_chars), (9012, 8997));
        let bangs = planning_brief(&format!("Spring sale {}", "!".repeat(5000)));
        assert_eq!(bangs.text, "Spring sale !!!");
        // Alternating emoji do not collapse: the token budget cuts them.
        let mixed = planning_brief(&"😀🎉".repeat(4500));
        assert!(mixed.truncated && mixed.estimated_tokens <= TOKEN_BUDGET, "{mixed:?}");
        assert!(mixed.text.chars().count() < 200);
    }

    #[test]
    fn long_prose_is_cut_at_a_clause_end_within_the_budget() {
        let sentence = "The bakery opens at dawn and the bread is still warm. ";
        let p = planning_brief(&sentence.repeat(200));
        assert!(p.truncated);
        assert!(p.estimated_tokens <= TOKEN_BUDGET);
        assert!(p.text.ends_with("warm."), "{}", &p.text[p.text.len() - 20..]);
        let many = planning_brief(&"Go. ".repeat(100));
        assert_eq!(many.text.matches('.').count(), MAX_CLAUSES);
    }

    #[test]
    fn the_cap_never_exceeds_the_budget_and_keeps_a_prefix() {
        // Every shape of input, up to the sanitizer's 10,000 characters.
        let pieces = ["a", "😀", "!", " ", "東", "\n", "ab.", "🎉😀", "1", "\u{200D}", "é"];
        for (i, p) in pieces.iter().enumerate() {
            for q in pieces.iter().skip(i) {
                let brief = format!("{p}{q}").repeat(5000);
                let cap = planning_brief(&brief);
                assert!(cap.estimated_tokens <= TOKEN_BUDGET, "{p}{q}: {}", cap.estimated_tokens);
                assert!(cap.text.len() <= TOKEN_BUDGET * 10, "{p}{q}");
                if cap.collapsed_chars == 0 {
                    assert!(brief.starts_with(&cap.text), "{p}{q}: not a prefix");
                }
            }
        }
    }
}
