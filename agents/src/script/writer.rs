//! The deterministic script writer: the brief's content, in order, spread over the scenes
//! so that each scene's narration fits the time its voice has (see [`super::speech`]), with
//! a short caption that heads each scene. Lists read as lists ("faster sync, dark mode and
//! offline notes"), the hook opens and the closing line ends. What does not fit the
//! narration goes on screen instead, so no fact is lost to the time limit.

use serde::{Deserialize, Serialize};

use super::analysis::{BriefAnalysis, Role, Unit};
use super::facts;
use super::lexicon::{self as lx, has};
use super::speech;
use super::text::{self, is_cjk};
use crate::voice::fit::FitSettings;

/// Most words a caption holds.
pub const MAX_CAPTION_WORDS: usize = 8;

/// The words of one scene.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneText {
    /// What the voice says.
    pub narration: String,
    /// The on-screen caption: a headline of the narration, at most eight words.
    pub caption: String,
    /// What the scene shows (the content it covers), for the visual stages.
    pub description: String,
}

/// Whether the units are written in a script without word spaces.
fn cjk(units: &[&Unit]) -> bool {
    units.iter().any(|u| u.text.chars().any(is_cjk))
}

/// One unit said as a clause: its implied pronoun restored.
fn clause(u: &Unit) -> String {
    match &u.pronoun {
        Some(p) => format!("{p} {}", u.text),
        None => u.text.clone(),
    }
}

/// The narration for a group of units: units of one list joined into one sentence with
/// commas and the language's "and", other units as sentences of their own.
pub fn compose(units: &[&Unit], lang: &str) -> String {
    let ja = cjk(units);
    let mut sentences: Vec<String> = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let mut j = i + 1;
        while j < units.len() && units[j].list.is_some() && units[j].list == units[i].list {
            j += 1;
        }
        let run = &units[i..j];
        let mut parts: Vec<String> = Vec::with_capacity(run.len());
        for (k, u) in run.iter().enumerate() {
            // German nouns keep their capital inside a sentence.
            let said = if k == 0 || lang == "de" { clause(u) } else { text::decapitalise(&u.text) };
            parts.push(said);
        }
        let body = if ja {
            parts.join("、")
        } else if parts.len() == 1 {
            parts.remove(0)
        } else {
            let last = parts.pop().unwrap_or_default();
            format!("{} {} {last}", parts.join(", "), lx::conjunction(lang))
        };
        let mark = run.last().and_then(|u| u.mark).unwrap_or(if ja { '。' } else { '.' });
        let mark = if ja && mark == '.' { '。' } else { mark };
        sentences.push(format!("{}{}", text::capitalise(body.trim()), mark));
        i = j;
    }
    sentences.join(if ja { "" } else { " " })
}

/// A caption that heads `unit`: without a leading pronoun and verb ("it is"), without a
/// leading article, cut to eight words at a clause break when longer.
pub fn headline(unit: &str, max_chars: usize) -> String {
    if unit.chars().any(is_cjk) {
        let t: String = unit.chars().take(max_chars.min(16)).collect();
        return t;
    }
    let mut words: Vec<&str> = unit.split_whitespace().collect();
    let lower = |w: &str| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_lowercase();
    let leads: [&[&str]; 2] = [&["it", "we", "they", "this"], &["is", "are", "was", "will"]];
    if words.len() > 3 && leads[0].contains(&lower(words[0]).as_str()) && leads[1].contains(&lower(words[1]).as_str()) {
        words.drain(..2);
    } else if words.len() > 2 && ["it's", "we're", "they're"].contains(&lower(words[0]).as_str()) {
        words.drain(..1);
    }
    if words.len() > 2 && has(lx::ARTICLES, &lower(words[0])) {
        words.remove(0);
    }
    if words.len() > MAX_CAPTION_WORDS {
        const BREAKS: [&str; 16] = [
            "that", "which", "who", "with", "from", "before", "into", "while", "because", "when", "and", "y", "et",
            "und", "con", "avec",
        ];
        let cut = (3..=MAX_CAPTION_WORDS).rev().find(|&i| BREAKS.contains(&lower(words[i]).as_str()));
        words.truncate(cut.unwrap_or(MAX_CAPTION_WORDS));
        while words.len() > 2 && has(lx::STOPWORDS, &lower(words[words.len() - 1])) {
            words.pop();
        }
    }
    let mut out = words.join(" ").trim_end_matches([',', ';', ':', '.']).to_owned();
    while out.chars().count() > max_chars && out.contains(' ') {
        out = out.rsplit_once(' ').map(|(a, _)| a.to_owned()).unwrap_or(out);
    }
    text::capitalise(&out)
}

/// Syllable-weighted "cost" of a group of units said together.
fn cost(units: &[&Unit], lang: &str) -> f64 {
    speech::seconds(&compose(units, lang))
}

/// Split `units` into `budgets.len()` contiguous non-empty groups minimising the largest
/// ratio of speech time to budget (then the sum of squared ratios), so every scene says
/// about as much as its length allows and the brief's order is kept.
fn partition(units: &[&Unit], budgets: &[f64], lang: &str) -> Vec<std::ops::Range<usize>> {
    let (m, n) = (units.len(), budgets.len());
    // best[k][j]: the best (max ratio, sum of squares) for the first j units in k groups.
    let inf = (f64::INFINITY, f64::INFINITY);
    let mut best = vec![vec![inf; m + 1]; n + 1];
    let mut from = vec![vec![0usize; m + 1]; n + 1];
    best[0][0] = (0.0, 0.0);
    for k in 1..=n {
        for j in k..=m - (n - k) {
            for i in (k - 1)..j {
                let prev = best[k - 1][i];
                if prev.0.is_infinite() {
                    continue;
                }
                let r = cost(&units[i..j], lang) / budgets[k - 1];
                let cand = (prev.0.max(r), prev.1 + r * r);
                if cand.0 < best[k][j].0 - 1e-9 || ((cand.0 - best[k][j].0).abs() <= 1e-9 && cand.1 < best[k][j].1) {
                    best[k][j] = cand;
                    from[k][j] = i;
                }
            }
        }
    }
    let mut ranges = Vec::with_capacity(n);
    let mut j = m;
    for k in (1..=n).rev() {
        let i = from[k][j];
        ranges.push(i..j);
        j = i;
    }
    ranges.reverse();
    ranges
}

/// Where a long unit may be split in two.
const SPLIT_BREAKS: [&str; 9] =
    [" and ", " from ", " with ", " into ", " before ", " while ", " that ", " for ", " at "];

/// The byte offset where `text` splits most evenly at a natural break, when it is long
/// enough (seven words or more) and has one.
fn split_point(text: &str) -> Option<usize> {
    if text.split_whitespace().count() < 7 {
        return None;
    }
    let mid = text.len() / 2;
    SPLIT_BREAKS
        .iter()
        .flat_map(|b| text.match_indices(b).map(|(p, _)| p))
        .filter(|&p| p > 0)
        .min_by_key(|&p| (p as i64 - mid as i64).abs())
}

/// Split the longest splittable unit in two at a natural break ("…moves heat | from cold
/// outdoor air…"), so a brief with fewer points than scenes still fills them in order.
fn split_one(units: &mut Vec<Unit>) -> bool {
    let pick = units
        .iter()
        .enumerate()
        .filter(|(_, u)| split_point(&u.text).is_some())
        .max_by_key(|(_, u)| u.text.split_whitespace().count())
        .map(|(i, _)| i);
    let Some(i) = pick else { return false };
    let t = units[i].text.clone();
    let Some(p) = split_point(&t) else { return false };
    let (a, b) = (t[..p].trim().to_owned(), t[p..].trim().to_owned());
    let mut second = units[i].clone();
    second.text = b;
    second.pronoun = None;
    second.role = if units[i].role == Role::Closing { Role::Closing } else { Role::Point };
    units[i].text = a;
    units.insert(i + 1, second);
    true
}

/// The scene count for a brief: the count it asks for, else one scene per ~6 s but no more
/// scenes than it has points; within `max_scenes` and scenes of at least `min_scene_s`.
pub fn scene_count(analysis: &BriefAnalysis, duration_s: f64, max_scenes: usize, min_scene_s: f64) -> usize {
    let by_duration = ((duration_s / 6.0).ceil() as usize).max(1);
    let max_by_length = ((duration_s / min_scene_s).floor() as usize).max(1);
    // Points, plus one for each long point that can be split at a natural break.
    let long = analysis.content.units.iter().filter(|u| split_point(&u.text).is_some()).count();
    let points = (analysis.content.units.len() + long).max(1);
    analysis.direction.scenes.unwrap_or(by_duration.min(points)).clamp(1, max_scenes.max(1)).min(max_by_length)
}

/// Write one [`SceneText`] per share of the duration from the analysed brief.
pub fn write(analysis: &BriefAnalysis, shares: &[f64], max_caption_chars: usize, fit: &FitSettings) -> Vec<SceneText> {
    let n = shares.len().max(1);
    let lang = analysis.language.as_str();
    let mut units: Vec<Unit> = analysis.content.units.clone();
    if units.is_empty() {
        // Nothing but direction: say nothing invented; the caption names the video's subject
        // as the brief's remaining words do.
        return shares
            .iter()
            .map(|_| SceneText { narration: String::new(), caption: String::new(), description: String::new() })
            .collect();
    }
    while units.len() < n && split_one(&mut units) {}
    // Still fewer points than scenes: the subject is said again as a sign-off, before any
    // closing line.
    while units.len() < n {
        let sign = units.iter().find(|u| u.role == Role::Subject).unwrap_or(&units[0]).clone();
        let at = units.iter().position(|u| u.role == Role::Closing).unwrap_or(units.len());
        units.insert(at, Unit { list: None, pronoun: None, role: Role::Point, ..sign });
    }
    let budgets: Vec<f64> = shares.iter().map(|s| speech::speech_budget(*s, fit)).collect();
    let total_budget: f64 = budgets.iter().sum();

    // When everything cannot be said in time, some units are shown instead of said: the
    // subject first (a caption names it well), then the hook, then the longest points — at
    // most one per scene, and every scene keeps something to say.
    let mut shown_only = vec![false; units.len()];
    let said = |shown_only: &[bool]| -> f64 {
        units.iter().zip(shown_only).filter(|(_, s)| !**s).map(|(u, _)| speech::seconds(&compose(&[u], lang))).sum()
    };
    let mut order: Vec<usize> = Vec::new();
    for role in [Role::Subject, Role::Hook, Role::Point] {
        let mut of_role: Vec<usize> = (0..units.len()).filter(|&i| units[i].role == role).collect();
        of_role.sort_by(|&a, &b| speech::seconds(&units[b].text).total_cmp(&speech::seconds(&units[a].text)));
        order.extend(of_role);
    }
    for i in order {
        let hidden = shown_only.iter().filter(|s| **s).count();
        if said(&shown_only) <= total_budget || hidden >= n || units.len() - hidden <= n {
            break;
        }
        shown_only[i] = true;
    }
    let voiced: Vec<&Unit> = units.iter().zip(&shown_only).filter(|(_, s)| !**s).map(|(u, _)| u).collect();
    let voiced_index: Vec<usize> = (0..units.len()).filter(|&i| !shown_only[i]).collect();
    let ranges = partition(&voiced, &budgets, lang);
    // Each shown-only unit heads the scene that says its neighbour (the next unit said, else
    // the one before), or the nearest scene without one.
    let group_of = |unit: usize| -> usize {
        let pos = voiced_index.iter().position(|&v| v > unit).unwrap_or(voiced_index.len() - 1);
        ranges.iter().position(|r| r.contains(&pos)).unwrap_or(0)
    };
    let mut headed: Vec<Option<usize>> = vec![None; ranges.len()];
    for i in (0..units.len()).filter(|&i| shown_only[i]) {
        let want = group_of(i);
        let slot = (0..ranges.len()).filter(|&g| headed[g].is_none()).min_by_key(|&g| (g as i64 - want as i64).abs());
        if let Some(g) = slot {
            headed[g] = Some(i);
        }
    }

    let end_card = analysis.direction.end_card.clone();
    let last = ranges.len() - 1;
    ranges
        .iter()
        .enumerate()
        .map(|(g, r)| {
            let said: Vec<&Unit> = voiced[r.clone()].to_vec();
            let shown = headed[g].map(|i| &units[i]);
            let narration = compose(&said, lang);
            let caption = match (&end_card, shown) {
                (Some(card), _) if g == last && said.iter().any(|u| u.role == Role::Closing) => card.clone(),
                (_, Some(u)) => headline(&u.text, max_caption_chars),
                _ => caption_for(&said, max_caption_chars),
            };
            let description = shown.into_iter().chain(said.iter().copied()).map(clause).collect::<Vec<_>>().join(", ");
            SceneText { narration, caption, description }
        })
        .collect()
}

/// A caption for units that are all said: a short list shown as a list ("Faster sync ·
/// Dark mode · Offline notes"), otherwise the headline of the unit carrying the most facts.
fn caption_for(units: &[&Unit], max_chars: usize) -> String {
    let short_list = units.len() > 1
        && units.iter().all(|u| u.list.is_some() && u.list == units[0].list && u.text.split_whitespace().count() <= 3);
    if short_list {
        let joined = units.iter().map(|u| text::capitalise(&u.text)).collect::<Vec<_>>().join(" · ");
        let words = units.iter().map(|u| u.text.split_whitespace().count()).sum::<usize>();
        if words <= MAX_CAPTION_WORDS && joined.chars().count() <= max_chars {
            return joined;
        }
    }
    let weight = |u: &Unit| {
        let f = facts::numbers(&u.text).len() + facts::quoted(&u.text).len() + facts::names(&u.text, "en").len();
        (f, std::cmp::Reverse(u.role == Role::Subject))
    };
    let pick = units.iter().max_by_key(|u| weight(u)).or(units.first());
    match pick {
        Some(u) if weight(u).0 > 0 => headline(&u.text, max_chars),
        Some(_) => headline(&units[0].text, max_chars),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::equal_shares;
    use crate::script::analysis::analyze;

    fn scenes(brief: &str, duration: f64, n: usize) -> Vec<SceneText> {
        let a = analyze(brief, "en");
        write(&a, &equal_shares(duration, n), 60, &FitSettings::default())
    }

    #[test]
    fn lists_read_as_lists() {
        let s = scenes("🚀 Launch day!!! Our app hits 1.0 🎉🎉 — faster sync, dark mode and offline notes.", 10.0, 2);
        let all: Vec<String> = s.iter().map(|s| s.narration.clone()).collect();
        assert!(all.iter().any(|n| n.to_lowercase().contains("faster sync, dark mode and offline notes.")), "{all:?}");
        assert!(all[0].starts_with("Launch day!"), "{all:?}");
        assert!(s.iter().all(|s| !s.caption.contains('🚀') && !s.narration.contains(",,")));
    }

    #[test]
    fn the_heat_pump_launch_fits_twelve_seconds_and_keeps_its_facts() {
        let s = scenes(
            "Launch film for a quiet heat pump for city apartments: it is smaller than a suitcase, runs at 35 dB, \
             cuts heating bills by a third, and installs in one afternoon.",
            12.0,
            4,
        );
        // What the voicing stage needs at its fastest allowed rate stays within 12 s + 2 s.
        let fit = FitSettings::default();
        let needed: f64 = s.iter().map(|s| fit.lead_in_s + fit.tail_s + speech::seconds(&s.narration) / 1.12).sum();
        assert!(needed <= 12.0, "{needed} s: {s:#?}");
        let all = s.iter().map(|s| format!("{} {}", s.narration, s.caption)).collect::<Vec<_>>().join(" ");
        for fact in ["suitcase", "35 dB", "a third", "one afternoon", "heat pump"] {
            assert!(all.contains(fact), "{fact} missing: {s:#?}");
        }
        assert!(!all.to_lowercase().contains("film"), "{s:#?}");
    }

    #[test]
    fn headlines_drop_pronouns_and_articles_and_stay_short() {
        assert_eq!(headline("it is smaller than a suitcase", 60), "Smaller than a suitcase");
        assert_eq!(headline("the shop opening its doors", 60), "Shop opening its doors");
        let h = headline("a heat pump moves heat from cold outdoor air into a warm house", 60);
        assert_eq!(h, "Heat pump moves heat from cold outdoor air");
    }
}
