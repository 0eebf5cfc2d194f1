//! The Illustrator: picks the pictures a scene shows by what the scene says.
//!
//! The index joins the Fluent Emoji Flat set (each illustration is an emoji, named in
//! `chars.json`) to the CLDR annotations of emojibase (a label and keywords per language),
//! and embeds each illustration's English annotation with all-MiniLM-L6-v2. It is built once
//! and cached under the assets directory. A scene is matched by the cosine similarity of its
//! text's embedding to every annotation, plus a bonus when the scene's text names an
//! illustration's label or keyword in the scene's own language (all-MiniLM-L6-v2 is an
//! English model; the CLDR keywords carry Japanese, Chinese, Korean and the European
//! languages). Below a relevance floor nothing is chosen: a scene with no fitting picture
//! keeps its typography rather than showing a wrong one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::agent::AgentError;
use crate::domain::{Illustration, Rgb};
use crate::models::embed::{Embedder, cosine};
use crate::render::icons::ICON_SET_DIR;

/// Bumped whenever the index's content or layout changes; a cached index of another version
/// is rebuilt.
pub const INDEX_VERSION: &str = "illustrations-1 fluent-emoji-flat@1.2.6 emojibase-data@17.0.0 all-MiniLM-L6-v2";
/// Where the cached index lives under the assets directory.
pub const INDEX_DIR: &str = "illustration-index";
/// The languages whose CLDR keywords are indexed (the languages the pipeline accepts).
pub const LANGUAGES: &[&str] = &["en", "fr", "es", "de", "it", "pt", "ja", "zh", "ko"];
/// Emojibase groups left out: skin-tone and hair components are not pictures of anything.
const COMPONENT_GROUP: u32 = 2;

/// The lowest score a picture needs to be shown at all.
pub const RELEVANCE_FLOOR: f32 = 0.5;
/// A second or third picture must score at least this fraction of the first.
const COMPANION_RATIO: f32 = 0.85;
/// Bonus when the scene's text contains an illustration's label (its CLDR name).
const LABEL_BONUS: f32 = 0.3;
/// Bonus when the scene's text contains one of its keywords.
const KEYWORD_BONUS: f32 = 0.08;
/// all-MiniLM-L6-v2 reads English only: in another language a keyword the scene names
/// outright lifts the similarity to at least this before the bonus.
const LEXICAL_FLOOR: f32 = 0.45;
/// Penalty for a prohibition sign ("no bicycles") when the scene says nothing negative.
const PROHIBITION_PENALTY: f32 = 0.25;
/// Words that make a prohibition sign fit.
const NEGATIONS: &[&str] = &[
    "no",
    "not",
    "don't",
    "dont",
    "never",
    "without",
    "forbidden",
    "prohibited",
    "pas",
    "nicht",
    "kein",
    "keine",
    "sin",
    "senza",
    "sem",
];
/// Penalty for a picture an earlier scene showed, unless this scene names it too.
const REPEAT_PENALTY: f32 = 0.12;
/// Two pictures closer than this (cosine of their annotations) are one subject twice.
const SAME_SUBJECT: f32 = 0.8;
/// Penalty for a picture whose main colour nearly matches the scene's background.
const CAMOUFLAGE_PENALTY: f32 = 0.05;

/// One illustration in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Icon name in the set (e.g. `bread`).
    pub name: String,
    /// The emoji it draws.
    pub emoji: String,
    /// Per language: the CLDR label first, then its keywords, lowercased.
    pub keywords: BTreeMap<String, Vec<String>>,
    /// The English annotation that was embedded ("bread: carbs, food, loaf, …").
    pub text: String,
    /// The illustration's most used fill colour, for colour harmony.
    pub main_color: Option<Rgb>,
}

/// The searchable index: entries and their unit-length embeddings.
pub struct IllustrationIndex {
    /// Entries in a stable order.
    pub entries: Vec<IndexEntry>,
    /// `entries.len() * dim` floats, row per entry.
    embeddings: Vec<f32>,
    dim: usize,
}

impl std::fmt::Debug for IllustrationIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IllustrationIndex").field("entries", &self.entries.len()).field("dim", &self.dim).finish()
    }
}

#[derive(Debug, Deserialize)]
struct EmojibaseEntry {
    label: String,
    hexcode: String,
    #[serde(default)]
    tags: Vec<String>,
    emoji: String,
    group: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CachedMeta {
    version: String,
    dim: usize,
    entries: Vec<IndexEntry>,
}

/// `1F35E`, `2764-FE0F` → `1f35e`, `2764` (the key form of the icon set's `chars.json`).
fn hex_key(hexcode: &str) -> String {
    hexcode.split('-').filter(|h| !h.eq_ignore_ascii_case("fe0f")).map(str::to_lowercase).collect::<Vec<_>>().join("-")
}

/// The fill colour that appears most often in an SVG body.
fn main_color(svg_body: &str) -> Option<Rgb> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for part in svg_body.split("fill=\"#").skip(1) {
        let hex: String = part.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        if hex.len() == 6 {
            *counts.entry(hex.to_lowercase()).or_default() += 1;
        }
    }
    let (hex, _) = counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))?;
    format!("#{hex}").parse().ok()
}

impl IllustrationIndex {
    /// Loads the cached index from `assets_dir`, or builds it (embedding every annotation
    /// once, tens of seconds on a laptop core) and caches it.
    pub fn load_or_build(assets_dir: &Path, embedder: &Embedder) -> Result<IllustrationIndex, AgentError> {
        if let Some(index) = Self::load_cached(assets_dir) {
            return Ok(index);
        }
        let index = Self::build(assets_dir, embedder)?;
        index.save(assets_dir)?;
        Ok(index)
    }

    /// The cached index, if present and of this version.
    pub fn load_cached(assets_dir: &Path) -> Option<IllustrationIndex> {
        let dir = assets_dir.join(INDEX_DIR);
        let meta: CachedMeta = serde_json::from_slice(&std::fs::read(dir.join("entries.json")).ok()?).ok()?;
        if meta.version != INDEX_VERSION {
            return None;
        }
        let bytes = std::fs::read(dir.join("embeddings.f32")).ok()?;
        if bytes.len() != meta.entries.len() * meta.dim * 4 {
            return None;
        }
        let embeddings = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Some(IllustrationIndex { entries: meta.entries, embeddings, dim: meta.dim })
    }

    /// Builds the index from the installed packages.
    pub fn build(assets_dir: &Path, embedder: &Embedder) -> Result<IllustrationIndex, AgentError> {
        let read = |p: PathBuf| {
            std::fs::read(&p).map_err(|e| {
                AgentError::Permanent(format!("{} is missing ({e}); run scripts/install_assets.sh", p.display()))
            })
        };
        let chars: HashMap<String, String> =
            serde_json::from_slice(&read(assets_dir.join(ICON_SET_DIR).join("chars.json"))?)
                .map_err(|e| AgentError::Permanent(format!("chars.json: {e}")))?;
        #[derive(Deserialize)]
        struct Icons {
            icons: HashMap<String, Body>,
        }
        #[derive(Deserialize)]
        struct Body {
            body: String,
        }
        let icons: Icons = serde_json::from_slice(&read(assets_dir.join(ICON_SET_DIR).join("icons.json"))?)
            .map_err(|e| AgentError::Permanent(format!("icons.json: {e}")))?;
        let mut entries: BTreeMap<String, IndexEntry> = BTreeMap::new();
        for lang in LANGUAGES {
            let path = assets_dir.join("emojibase-data").join(lang).join("data.json");
            let data: Vec<EmojibaseEntry> = serde_json::from_slice(&read(path.clone())?)
                .map_err(|e| AgentError::Permanent(format!("{}: {e}", path.display())))?;
            for e in data {
                if e.group.is_none_or(|g| g == COMPONENT_GROUP) {
                    continue;
                }
                let Some(name) = chars.get(&hex_key(&e.hexcode)) else { continue };
                let Some(icon) = icons.icons.get(name) else { continue };
                let entry = entries.entry(name.clone()).or_insert_with(|| IndexEntry {
                    name: name.clone(),
                    emoji: e.emoji.clone(),
                    keywords: BTreeMap::new(),
                    text: String::new(),
                    main_color: main_color(&icon.body),
                });
                let mut words = vec![e.label.to_lowercase()];
                words.extend(e.tags.iter().map(|t| t.to_lowercase()).filter(|t| *t != e.label.to_lowercase()));
                if *lang == "en" {
                    entry.text = format!("{}: {}", e.label, e.tags.join(", "));
                }
                entry.keywords.insert((*lang).to_owned(), words);
            }
        }
        let entries: Vec<IndexEntry> = entries.into_values().filter(|e| !e.text.is_empty()).collect();
        let mut embeddings = Vec::with_capacity(entries.len() * 384);
        let mut dim = 0;
        for batch in entries.chunks(64) {
            let texts: Vec<&str> = batch.iter().map(|e| e.text.as_str()).collect();
            let rows = embedder.embed(&texts).map_err(|e| AgentError::Transient(e.to_string()))?;
            for row in rows {
                dim = row.len();
                embeddings.extend(row);
            }
        }
        Ok(IllustrationIndex { entries, embeddings, dim })
    }

    /// Writes the index under `assets_dir` (atomically: temporary names, then renames).
    pub fn save(&self, assets_dir: &Path) -> Result<(), AgentError> {
        let dir = assets_dir.join(INDEX_DIR);
        let io = |e: std::io::Error| AgentError::Transient(format!("cannot write the illustration index: {e}"));
        std::fs::create_dir_all(&dir).map_err(io)?;
        let meta = CachedMeta { version: INDEX_VERSION.into(), dim: self.dim, entries: self.entries.clone() };
        let json = serde_json::to_vec(&meta).map_err(|e| AgentError::Transient(e.to_string()))?;
        let bytes: Vec<u8> = self.embeddings.iter().flat_map(|f| f.to_le_bytes()).collect();
        std::fs::write(dir.join(".embeddings.f32.partial"), bytes).map_err(io)?;
        std::fs::rename(dir.join(".embeddings.f32.partial"), dir.join("embeddings.f32")).map_err(io)?;
        std::fs::write(dir.join(".entries.json.partial"), json).map_err(io)?;
        std::fs::rename(dir.join(".entries.json.partial"), dir.join("entries.json")).map_err(io)?;
        Ok(())
    }

    /// Number of illustrations indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn embedding(&self, i: usize) -> &[f32] {
        &self.embeddings[i * self.dim..(i + 1) * self.dim]
    }

    /// Position of the entry named `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }

    /// The illustrations a text asks for with its own emoji (🚀, 🎉): the names of the entries
    /// that draw them, in order of first appearance, without repeats. Variation selectors do
    /// not matter; an emoji the set does not draw is skipped.
    pub fn requested_by(&self, text: &str) -> Vec<String> {
        let strip = |s: &str| s.chars().filter(|c| *c != '\u{fe0f}').collect::<String>();
        let mut out: Vec<String> = Vec::new();
        for c in text.chars().filter(|c| crate::script::text::is_emoji(*c) && !matches!(*c, '\u{fe0f}' | '\u{200d}')) {
            let wanted = c.to_string();
            if let Some(e) = self.entries.iter().find(|e| strip(&e.emoji) == wanted)
                && !out.contains(&e.name)
            {
                out.push(e.name.clone());
            }
        }
        out
    }
}

/// What one scene says, for matching.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneText {
    /// Everything the scene says (description, caption, narration), joined.
    pub text: String,
    /// The language of the text (ISO 639-1).
    pub lang: String,
    /// The scene's background colour, for colour harmony.
    pub background: Option<Rgb>,
}

/// How well `keyword` occurs in `text` (already lowercased): whole words for scripts with
/// spaces (a plural "s" tolerated), substrings of at least two characters for CJK.
fn contains_keyword(text: &str, words: &HashSet<String>, keyword: &str, cjk: bool) -> bool {
    if keyword.is_empty() {
        return false;
    }
    let hangul = keyword.chars().any(|c| ('\u{AC00}'..='\u{D7AF}').contains(&c));
    if hangul {
        // Korean separates words by spaces but attaches particles: 빵을, 빵이.
        return words.iter().any(|w| w.starts_with(keyword));
    }
    if cjk || keyword.chars().any(|c| c as u32 >= 0x2E80) {
        return keyword.chars().count() >= 2 && text.contains(keyword);
    }
    if keyword.contains(' ') {
        return text.contains(keyword);
    }
    words.contains(keyword) || words.contains(&format!("{keyword}s")) || words.contains(&format!("{keyword}es"))
}

/// The words of `text`, lowercased, letters and digits only.
fn word_set(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

/// A candidate's score for one scene, before the choice between candidates.
#[derive(Debug, Clone, Copy)]
struct Scored {
    index: usize,
    score: f32,
    named: bool,
}

/// Chooses pictures for every scene in order, by meaning.
pub struct Illustrator<'a> {
    /// The index searched.
    pub index: &'a IllustrationIndex,
    /// The embedder for scene texts (the one the index was built with).
    pub embedder: &'a Embedder,
}

impl Illustrator<'_> {
    /// Scores every illustration for one scene; `used` are the pictures earlier scenes show.
    fn score(&self, scene: &SceneText, embedding: &[f32], used: &HashSet<usize>) -> Vec<Scored> {
        let text = scene.text.to_lowercase();
        let words = word_set(&text);
        let cjk = matches!(scene.lang.as_str(), "ja" | "zh" | "ko");
        let langs: Vec<&str> = if scene.lang == "en" { vec!["en"] } else { vec![scene.lang.as_str(), "en"] };
        let negative = NEGATIONS.iter().any(|n| words.contains(*n)) || text.contains('禁') || text.contains("금지");
        let mut out = Vec::with_capacity(self.index.len());
        for (i, entry) in self.index.entries.iter().enumerate() {
            let mut score = cosine(embedding, self.index.embedding(i));
            let mut named = false;
            let mut keyword = false;
            let mut own_language = false;
            // The share of an illustration's keywords the text names: breaks ties between
            // pictures that share one keyword in favour of the one it describes best.
            let mut specificity = 0.0f32;
            for lang in &langs {
                if let Some(kw) = entry.keywords.get(*lang) {
                    // A one-character label (狗, 犬) is specific enough to count; tags are not.
                    let label_hit = kw.first().is_some_and(|label| {
                        contains_keyword(&text, &words, label, cjk)
                            || (cjk
                                && label.chars().count() == 1
                                && label.chars().all(|c| c as u32 >= 0x2E80)
                                && text.contains(label.as_str()))
                    });
                    let hits = kw.iter().filter(|k| contains_keyword(&text, &words, k, cjk)).count();
                    specificity = specificity.max(hits as f32 / kw.len().max(1) as f32);
                    let hit = if label_hit {
                        named = true;
                        true
                    } else if kw.iter().skip(1).any(|k| contains_keyword(&text, &words, k, cjk)) {
                        keyword = true;
                        true
                    } else {
                        false
                    };
                    own_language |= hit && *lang == scene.lang && scene.lang != "en";
                }
            }
            if own_language {
                score = score.max(LEXICAL_FLOOR);
            }
            score += 0.05 * specificity;
            if entry.name.starts_with("no-") && !negative {
                score -= PROHIBITION_PENALTY;
            }
            if named {
                score += LABEL_BONUS;
            } else if keyword {
                score += KEYWORD_BONUS;
            }
            if used.contains(&i) && !named {
                score -= REPEAT_PENALTY;
            }
            if let (Some(bg), Some(c)) = (scene.background, entry.main_color) {
                let d = ((bg.0 as f32 - c.0 as f32).powi(2)
                    + (bg.1 as f32 - c.1 as f32).powi(2)
                    + (bg.2 as f32 - c.2 as f32).powi(2))
                .sqrt();
                if d < 60.0 {
                    score -= CAMOUFLAGE_PENALTY;
                }
            }
            out.push(Scored { index: i, score, named });
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
        out
    }

    /// Chooses up to `max` (1–3) pictures for each scene. A scene whose best candidate is
    /// below [`RELEVANCE_FLOOR`] gets none; companions must be near the best one's score and
    /// show a different subject; a picture an earlier scene showed is avoided unless this
    /// scene names it (the same subject keeps its picture).
    pub fn choose(&self, scenes: &[SceneText], max: usize) -> Result<Vec<Vec<Illustration>>, AgentError> {
        let texts: Vec<&str> = scenes.iter().map(|s| s.text.as_str()).collect();
        let embeddings = self.embedder.embed(&texts).map_err(|e| AgentError::Transient(e.to_string()))?;
        let mut used: HashSet<usize> = HashSet::new();
        let mut out = Vec::with_capacity(scenes.len());
        for (scene, embedding) in scenes.iter().zip(&embeddings) {
            let ranked = self.score(scene, embedding, &used);
            let mut chosen: Vec<Scored> = Vec::new();
            for cand in ranked.iter().take(50) {
                if chosen.len() >= max.clamp(1, 3) {
                    break;
                }
                let Some(first) = chosen.first() else {
                    if cand.score >= RELEVANCE_FLOOR {
                        chosen.push(*cand);
                        continue;
                    }
                    break;
                };
                if cand.score < RELEVANCE_FLOOR || cand.score < first.score * COMPANION_RATIO {
                    break;
                }
                let distinct = chosen
                    .iter()
                    .all(|c| cosine(self.index.embedding(c.index), self.index.embedding(cand.index)) < SAME_SUBJECT);
                if distinct {
                    chosen.push(*cand);
                }
            }
            used.extend(chosen.iter().map(|c| c.index));
            out.push(
                chosen
                    .into_iter()
                    .map(|c| {
                        let e = &self.index.entries[c.index];
                        Illustration { name: e.name.clone(), score: c.score, named: c.named }
                    })
                    .collect(),
            );
        }
        Ok(out)
    }
}

/// Fills every scene of `plan` that has none with pictures chosen by meaning: what the scene
/// shows (`descriptions`, one per scene, from the manifest), its caption and its narration,
/// in language `lang`. The pictures the brief asked for with its own emoji (`requested`,
/// index names, see [`IllustrationIndex::requested_by`]) come first: a scene left without a
/// picture gets the next one, the rest lead the scenes in order. Returns the note the
/// translation records (what ran, how many scenes got pictures).
pub fn illustrate_plan(
    plan: &mut crate::domain::RenderPlan,
    descriptions: &[String],
    lang: &str,
    requested: &[String],
    index: &IllustrationIndex,
    embedder: &Embedder,
) -> Result<String, AgentError> {
    let scenes: Vec<SceneText> = plan
        .scenes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let description = descriptions.get(i).map(String::as_str).unwrap_or("");
            let mut parts: Vec<&str> = vec![description, s.caption.as_str()];
            if s.narration != s.caption {
                parts.push(s.narration.as_str());
            }
            SceneText {
                text: parts.into_iter().filter(|p| !p.trim().is_empty()).collect::<Vec<_>>().join(". "),
                lang: lang.to_owned(),
                background: Some(s.background.from.mix(s.background.to, 0.5)),
            }
        })
        .collect();
    let mut chosen = Illustrator { index, embedder }.choose(&scenes, 3)?;
    place_requested(&mut chosen, requested);
    let mut with = 0;
    for (scene, pictures) in plan.scenes.iter_mut().zip(chosen) {
        if scene.illustrations.is_empty() {
            with += usize::from(!pictures.is_empty());
            scene.illustrations = pictures;
        }
    }
    let asked = if requested.is_empty() {
        String::new()
    } else {
        format!("; the brief's own emoji asked for {}", requested.join(", "))
    };
    Ok(format!(
        "illustrations chosen by all-MiniLM-L6-v2 similarity to CLDR annotations (floor {RELEVANCE_FLOOR}): {with} of {} scenes{asked}",
        plan.scenes.len()
    ))
}

/// Puts the requested pictures into the scenes' choices: each goes to the next scene without
/// a picture, else leads the next scene in turn (at most 3 per scene, the weakest chosen
/// picture giving way). A requested picture already chosen somewhere stays where it is.
fn place_requested(chosen: &mut [Vec<Illustration>], requested: &[String]) {
    let n = chosen.len();
    if n == 0 {
        return;
    }
    let mut next_lead = 0;
    for name in requested {
        if chosen.iter().flatten().any(|i| &i.name == name) {
            continue;
        }
        let picture = Illustration { name: name.clone(), score: 1.0, named: true };
        if let Some(empty) = chosen.iter_mut().find(|c| c.is_empty()) {
            empty.push(picture);
            continue;
        }
        let scene = &mut chosen[next_lead % n];
        next_lead += 1;
        scene.insert(0, picture);
        scene.truncate(3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_briefs_own_emoji_fill_empty_scenes_first_then_lead() {
        let pic = |n: &str| Illustration { name: n.into(), score: 0.6, named: false };
        let mut chosen = vec![vec![pic("bread")], vec![], vec![pic("door"), pic("key"), pic("house")]];
        let requested = ["rocket", "party popper", "bread", "star", "sparkles"].map(str::to_owned);
        place_requested(&mut chosen, &requested);
        let names: Vec<Vec<&str>> = chosen.iter().map(|c| c.iter().map(|i| i.name.as_str()).collect()).collect();
        assert_eq!(names, [vec!["party popper", "bread"], vec!["star", "rocket"], vec!["sparkles", "door", "key"]]);
        assert!(chosen[1][0].named && chosen[1][0].score == 1.0);
    }

    #[test]
    fn hex_keys_match_the_icon_sets_form() {
        assert_eq!(hex_key("1F35E"), "1f35e");
        assert_eq!(hex_key("2764-FE0F"), "2764");
        assert_eq!(hex_key("1F469-200D-1F4BB"), "1f469-200d-1f4bb");
    }

    #[test]
    fn main_colour_is_the_most_used_fill() {
        let body = r##"<path fill="#ffb02e" d=""/><path fill="#6d4534"/><path fill="#ffb02e"/>"##;
        assert_eq!(main_color(body), Some(Rgb(0xff, 0xb0, 0x2e)));
        assert_eq!(main_color("<g/>"), None);
    }

    #[test]
    fn keywords_match_whole_words_or_cjk_substrings() {
        let text = "fresh loaves of bread at dawn";
        let words = word_set(text);
        assert!(contains_keyword(text, &words, "bread", false));
        assert!(!contains_keyword(text, &words, "loaf", false), "no stemming beyond plurals");
        assert!(!contains_keyword(text, &words, "read", false), "no partial words");
        assert!(contains_keyword(text, &words, "at dawn", false));
        let ja = "焼きたてのパンを朝に";
        assert!(contains_keyword(ja, &word_set(ja), "パン", true));
        assert!(!contains_keyword(ja, &word_set(ja), "朝", true), "single characters are too ambiguous");
    }
}
