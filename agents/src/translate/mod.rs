//! Subtitle translation behind one trait, with a measured quality bar.
//!
//! Backends: [`marian::MarianTranslator`] (candle's Marian model, when a model directory is
//! configured), [`apertium::ApertiumTranslator`] (the rule-based Apertium tool with an
//! installed language pair), [`LlmTranslator`] (a prompt to the local SmolLM2) and none. A
//! backend is only used for a language after it has been scored on the [`reference`] set with [`chrf`] and
//! reached the configured bar; the scores are stored in `translation-quality.json` in the
//! models directory (`aiprod models evaluate-translation` writes it). Anything else leaves the
//! language `unavailable` with the reason — translations are never invented.

pub mod apertium;
pub mod chrf;
pub mod marian;
pub mod reference;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::models::{GenerationParams, Registry, SMOLLM2_ID};

/// File in the models directory holding measured backend quality.
pub const QUALITY_FILE: &str = "translation-quality.json";

/// Why a translation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("translation with {backend} failed: {message}")]
pub struct TranslateError {
    /// Backend id.
    pub backend: String,
    /// What went wrong.
    pub message: String,
}

/// A caption translator.
pub trait Translator: Send + Sync {
    /// Stable id, e.g. `marian:opus-mt-en-fr` or `llm:smollm2-135m-instruct`.
    fn id(&self) -> String;
    /// Whether this backend can translate `from` → `to` at all.
    fn supports(&self, from: &str, to: &str) -> bool;
    /// Translate each text (blocking, CPU-bound).
    fn translate(&self, texts: &[&str], from: &str, to: &str) -> Result<Vec<String>, TranslateError>;
}

/// One measured score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Corpus chrF on the reference set, 0–100.
    pub chrf: f64,
    /// Sentences scored.
    pub sentences: usize,
}

/// Scores per backend id, then per `from-to` pair.
pub type QualityTable = BTreeMap<String, BTreeMap<String, Quality>>;

/// Score `t` on the first `limit` reference sentences of `from` → `to`.
pub fn evaluate(t: &dyn Translator, from: &str, to: &str, limit: usize) -> Result<Quality, TranslateError> {
    let err = |m: String| TranslateError { backend: t.id(), message: m };
    if from != "en" {
        return Err(err(format!("the reference set's source language is English, not '{from}'")));
    }
    let pairs = reference::pairs(to).ok_or_else(|| err(format!("no reference translations for '{to}'")))?;
    let pairs: Vec<_> = pairs.into_iter().take(limit.max(1)).collect();
    let sources: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let out = t.translate(&sources, from, to)?;
    let scored: Vec<(String, String)> = out.into_iter().zip(pairs.iter().map(|p| p.1.to_owned())).collect();
    Ok(Quality { chrf: chrf::corpus(&scored), sentences: scored.len() })
}

/// Read the quality table (empty when the file does not exist).
pub fn load_quality(models_dir: &Path) -> Result<QualityTable, String> {
    let path = models_dir.join(QUALITY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => serde_json::from_str(&s).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(QualityTable::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Write the quality table atomically.
pub fn save_quality(models_dir: &Path, table: &QualityTable) -> Result<(), String> {
    let path = models_dir.join(QUALITY_FILE);
    let tmp = models_dir.join(format!(".{QUALITY_FILE}.partial"));
    let text = serde_json::to_string_pretty(table).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The first backend whose measured chrF for `from-to` reaches `bar`, or why there is none.
pub fn choose<'a>(
    backends: &'a [Arc<dyn Translator>],
    table: &QualityTable,
    from: &str,
    to: &str,
    bar: f64,
) -> Result<(&'a Arc<dyn Translator>, f64), String> {
    let pair = format!("{from}-{to}");
    let mut why = Vec::new();
    for b in backends {
        if !b.supports(from, to) {
            continue;
        }
        match table.get(&b.id()).and_then(|m| m.get(&pair)) {
            Some(q) if q.chrf >= bar => return Ok((b, q.chrf)),
            Some(q) => why.push(format!("{} scored chrF {:.1} < bar {bar:.1}", b.id(), q.chrf)),
            None => why.push(format!("{} has not been evaluated for {pair}", b.id())),
        }
    }
    if why.is_empty() { Err(format!("no translation model installed for {pair}")) } else { Err(why.join("; ")) }
}

/// Translation by prompting the local SmolLM2 (greedy decoding).
#[derive(Debug, Clone)]
pub struct LlmTranslator {
    /// Where the model comes from.
    pub registry: Arc<Registry>,
    /// Most tokens per caption.
    pub max_tokens: usize,
}

fn language_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "en" => "English",
        "fr" => "French",
        "es" => "Spanish",
        "de" => "German",
        "it" => "Italian",
        "pt" => "Portuguese",
        _ => return None,
    })
}

impl Translator for LlmTranslator {
    fn id(&self) -> String {
        format!("llm:{SMOLLM2_ID}")
    }
    fn supports(&self, from: &str, to: &str) -> bool {
        language_name(from).is_some() && language_name(to).is_some() && from != to
    }
    fn translate(&self, texts: &[&str], from: &str, to: &str) -> Result<Vec<String>, TranslateError> {
        let err = |m: String| TranslateError { backend: self.id(), message: m };
        let (Some(src), Some(dst)) = (language_name(from), language_name(to)) else {
            return Err(err(format!("unsupported pair {from}-{to}")));
        };
        let (llm, _) = self.registry.llm().map_err(|e| err(e.to_string()))?;
        let llm = llm.lock().unwrap_or_else(|p| p.into_inner());
        let params = GenerationParams {
            max_tokens: self.max_tokens,
            temperature: 0.0,
            repeat_penalty: 1.0,
            ..Default::default()
        };
        texts
            .iter()
            .map(|t| {
                let prompt = crate::models::llm::chat_prompt(
                    &format!("You translate {src} into {dst}. Reply with the translation only."),
                    t,
                );
                let g = llm.generate(&prompt, &params, &mut |_, _| true).map_err(|e| err(e.to_string()))?;
                Ok(g.text.lines().next().unwrap_or("").trim().to_owned())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend that copies its input: a real (if useless) translator, for the gate logic.
    struct Copy;
    impl Translator for Copy {
        fn id(&self) -> String {
            "copy".into()
        }
        fn supports(&self, _: &str, _: &str) -> bool {
            true
        }
        fn translate(&self, texts: &[&str], _: &str, _: &str) -> Result<Vec<String>, TranslateError> {
            Ok(texts.iter().map(|t| t.to_string()).collect())
        }
    }

    #[test]
    fn the_reference_set_covers_three_languages_with_distinct_references() {
        for lang in ["fr", "es", "de"] {
            let p = pairs_for(lang);
            assert!(p.len() >= 30);
            assert!(p.iter().all(|(en, tr)| !tr.is_empty() && en != tr));
        }
        assert!(reference::pairs("ja").is_none());
    }

    fn pairs_for(lang: &str) -> Vec<(&'static str, &'static str)> {
        reference::pairs(lang).unwrap()
    }

    #[test]
    fn copying_the_source_scores_low_and_is_kept_below_the_bar() {
        let q = evaluate(&Copy, "en", "de", 32).unwrap();
        assert_eq!(q.sentences, 32);
        assert!(q.chrf < 40.0, "copying English scored {}", q.chrf);
        let mut table = QualityTable::new();
        table.entry("copy".into()).or_default().insert("en-de".into(), q.clone());
        let backends: Vec<Arc<dyn Translator>> = vec![Arc::new(Copy)];
        let why = choose(&backends, &table, "en", "de", 50.0).err().unwrap();
        assert!(why.contains("copy scored chrF") && why.contains("< bar 50.0"), "{why}");
        let not_scored = choose(&backends, &table, "en", "fr", 50.0).err().unwrap();
        assert!(not_scored.contains("has not been evaluated for en-fr"), "{not_scored}");
        let (b, score) = choose(&backends, &table, "en", "de", 10.0).unwrap();
        assert_eq!((b.id(), score), ("copy".to_owned(), q.chrf));
        assert!(choose(&[], &table, "en", "de", 10.0).err().unwrap().contains("no translation model"));
    }

    #[test]
    fn quality_tables_round_trip_through_the_models_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_quality(dir.path()).unwrap().is_empty());
        let mut t = QualityTable::new();
        t.entry("x".into()).or_default().insert("en-fr".into(), Quality { chrf: 12.5, sentences: 3 });
        save_quality(dir.path(), &t).unwrap();
        assert_eq!(load_quality(dir.path()).unwrap(), t);
    }
}
