//! The InputSanitizer: the single gate every brief passes before the pipeline sees it.
//!
//! A [`BriefRequest`] arrives from the CLI or the HTTP API exactly as the user typed it.
//! [`sanitize`] cleans the text, applies defaults and checks every field against the limits
//! in `config/v33.json` ([`crate::config::InputSanitizer`], the presets and the render tiers).
//! The result is a [`SanitizedInput`], the only form the rest of the pipeline accepts, or a
//! [`FieldError`] that names the field, the rule it broke and the limit, so a user can fix
//! the request without reading the source.
//!
//! Text cleaning keeps every script intact (CJK, Arabic, Hebrew, Devanagari, emoji sequences
//! with ZWJ, combining marks) and does not normalise to NFC, so what the user wrote is what
//! gets captioned. It removes only characters that are invisible and useful for spoofing or
//! terminal/log injection: C0/C1 control characters, Unicode bidi overrides and isolates, and
//! zero-width spaces. Whitespace runs collapse to one space, or to one `\n` when the run
//! contains a line break, and the text is trimmed.

use agents::domain::AspectRatio;
use agents::voice::VoiceChoice;
use serde::{Deserialize, Serialize};

use crate::config::{Config, InputSanitizer, Preset};

/// A brief as submitted (CLI flags or API JSON body, e.g. `POST /v1/cost-estimate`). Unknown
/// JSON fields are rejected.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BriefRequest {
    /// The brief text: what the video should say and show.
    pub content: String,
    /// Wanted length of the video in seconds; defaults to the configured default.
    #[serde(default, deserialize_with = "whole_seconds")]
    pub duration_sec: Option<u32>,
    /// Frame shape such as `"16:9"`; defaults to 16:9.
    pub aspect_ratio: Option<String>,
    /// Subtitle languages (ISO 639-1); the first is the source language of the captions.
    pub languages: Option<Vec<String>>,
    /// Named preset from the config; defaults to `quick_social`.
    pub preset: Option<String>,
    /// Scheduling priority (`low`, `normal`, `high`).
    pub priority: Option<String>,
    /// Most the user is willing to spend on this job.
    pub budget: Option<f64>,
    /// Brand whose consistency markers the job may reuse.
    pub brand_id: Option<String>,
    /// Render tier; defaults to the preset's default tier.
    pub tier: Option<String>,
    /// Narrator voice: `auto`, `piper` or `espeak-ng`; defaults to the preset's.
    #[serde(default)]
    pub voice: Option<String>,
    /// `false` for a video with music only; defaults to the preset's (narrated).
    #[serde(default)]
    pub narration: Option<bool>,
}

/// How urgently a job should be scheduled; a closed set so the queue can order jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Run when nothing else waits.
    Low,
    /// The default.
    Normal,
    /// Run before normal and low jobs.
    High,
}

impl Priority {
    /// The lowercase name used in requests and config, so a priority can be written back out.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }

    /// The priority for a normalised (trimmed, lowercase) name, if the enum knows it.
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "low" => Some(Priority::Low),
            "normal" => Some(Priority::Normal),
            "high" => Some(Priority::High),
            _ => None,
        }
    }
}

/// A brief that passed every rule; the only form the pipeline accepts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SanitizedInput {
    /// Cleaned brief text: no control or invisible formatting characters, whitespace
    /// collapsed, trimmed, length within the configured limits.
    pub content: String,
    /// Video length in seconds, within the global and the preset's limits.
    pub duration_sec: u32,
    /// Frame shape.
    pub aspect_ratio: AspectRatio,
    /// Subtitle languages without duplicates; the first is the source language of the
    /// captions. Defaults to `["en"]`.
    pub languages: Vec<String>,
    /// Name of an existing preset; defaults to `quick_social`.
    pub preset: String,
    /// Scheduling priority; defaults to normal.
    pub priority: Priority,
    /// Spending cap, when the user gave one: finite, > 0 and ≤ 1,000,000.
    pub budget: Option<f64>,
    /// Lowercase brand id made of `[a-z0-9_-]`.
    pub brand_id: Option<String>,
    /// Name of an existing render tier; defaults to the preset's default tier.
    pub tier: String,
    /// The narrator voice asked for (the preset's when the brief names none).
    #[serde(default)]
    pub voice: VoiceChoice,
    /// Whether the video is narrated (the preset's default unless the brief says).
    #[serde(default = "narrated")]
    pub narration: bool,
    /// What sanitising changed that the user may want to know (removed characters,
    /// dropped duplicate languages, capped defaults). Never a reason to reject.
    pub warnings: Vec<String>,
}

/// Turns an accepted brief back into a request, so a stored job can be re-submitted and
/// sanitising it again gives the same values.
impl From<&SanitizedInput> for BriefRequest {
    fn from(s: &SanitizedInput) -> Self {
        BriefRequest {
            content: s.content.clone(),
            duration_sec: Some(s.duration_sec),
            aspect_ratio: Some(s.aspect_ratio.to_string()),
            languages: Some(s.languages.clone()),
            preset: Some(s.preset.clone()),
            priority: Some(s.priority.as_str().to_owned()),
            budget: s.budget,
            brand_id: s.brand_id.clone(),
            tier: Some(s.tier.clone()),
            voice: Some(s.voice.as_str().to_owned()),
            narration: Some(s.narration),
        }
    }
}

/// Briefs stored before narration existed were narrated by default.
fn narrated() -> bool {
    true
}

/// Why a brief was rejected: the field, the rule it broke and a message naming the limit,
/// so CLI and API can report it to the user as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The request field, e.g. `duration_sec` or `languages[2]`.
    pub field: String,
    /// Machine-readable rule: `required`, `min_length`, `max_length`, `range`,
    /// `allowed_values` or `format`.
    pub rule: &'static str,
    /// Human-readable explanation naming the limit and the offending value.
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), rule, message: message.into() }
    }
}

/// `duration_sec` as JSON writes a whole number: `27` or `27.0`. JSON Schema's `integer`
/// (the spec's type) counts both, and some clients and generators send the second; serde's
/// `u32` alone refuses it. A fraction, a negative number or one beyond `u32` is refused.
pub fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(x) if x.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&x) => Ok(Some(x as u32)),
        Some(x) => Err(serde::de::Error::custom(format!("expected a whole number of seconds, got {x}"))),
    }
}

const REQUIRED: &str = "required";
const MIN_LENGTH: &str = "min_length";
const MAX_LENGTH: &str = "max_length";
const RANGE: &str = "range";
const ALLOWED_VALUES: &str = "allowed_values";
const FORMAT: &str = "format";

/// Most subtitle languages one job may ask for.
const MAX_LANGUAGES: usize = 9;
/// Largest budget accepted; anything above is a typo, not a plan.
const MAX_BUDGET: f64 = 1_000_000.0;
const DEFAULT_LANGUAGE: &str = "en";
const DEFAULT_PRESET: &str = "quick_social";
const DEFAULT_ASPECT_RATIO: &str = "16:9";
/// How much of a user-supplied value an error message echoes.
const ECHO_CHARS: usize = 40;

/// The only way to obtain a [`SanitizedInput`]: cleans the brief, applies defaults and checks
/// every field against `cfg`; the first broken rule is returned as the error.
pub fn sanitize(req: &BriefRequest, cfg: &Config) -> Result<SanitizedInput, FieldError> {
    let limits = &cfg.input_sanitizer;
    let mut warnings = Vec::new();
    let content = sanitize_content(&req.content, limits, &mut warnings)?;
    let (preset_name, preset) = resolve_preset(req.preset.as_deref(), cfg)?;
    let duration_sec = resolve_duration(req.duration_sec, limits, &preset_name, preset, &mut warnings)?;
    let aspect_ratio = resolve_aspect_ratio(req.aspect_ratio.as_deref(), limits)?;
    let languages = resolve_languages(req.languages.as_deref(), limits, &mut warnings)?;
    let priority = resolve_priority(req.priority.as_deref(), limits)?;
    let budget = check_budget(req.budget)?;
    let brand_id = resolve_brand_id(req.brand_id.as_deref(), limits)?;
    let tier = resolve_tier(req.tier.as_deref(), cfg, preset)?;
    let voice = resolve_voice(req.voice.as_deref(), preset)?;
    Ok(SanitizedInput {
        content,
        duration_sec,
        aspect_ratio,
        languages,
        preset: preset_name,
        priority,
        budget,
        brand_id,
        tier,
        voice,
        narration: req.narration.unwrap_or(preset.narration),
        warnings,
    })
}

fn resolve_voice(given: Option<&str>, preset: &Preset) -> Result<VoiceChoice, FieldError> {
    let Some(raw) = given else {
        return Ok(preset.voice);
    };
    raw.parse::<VoiceChoice>().map_err(|_| {
        FieldError::new(
            "voice",
            ALLOWED_VALUES,
            format!("{} is not a voice (allowed: {})", echo(&normalize_name(raw)), VoiceChoice::NAMES.join(", ")),
        )
    })
}

// ---------------------------------------------------------------------------------------
// content

/// What one input character becomes in the cleaned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharClass {
    /// Part of a whitespace run that becomes a single `\n`.
    LineBreak,
    /// Part of a whitespace run that becomes a single space.
    Space,
    /// Removed: control or invisible formatting character.
    Drop,
    /// Kept unchanged.
    Keep,
}

fn classify(c: char) -> CharClass {
    if is_line_break(c) {
        CharClass::LineBreak
    } else if c.is_whitespace() {
        CharClass::Space
    } else if c.is_control() || is_invisible_format(c) {
        CharClass::Drop
    } else {
        CharClass::Keep
    }
}

/// Characters that end a line (Unicode mandatory breaks), `\r\n` included.
fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Invisible format characters that can reorder or hide text (Trojan Source, spoofed brand
/// names). ZWJ (U+200D, emoji sequences) and ZWNJ (U+200C, Persian and Indic spelling) are
/// kept because real text needs them; so are LRM/RLM, which mark direction in mixed RTL text.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{200B}' // zero-width space
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{206A}'..='\u{206F}' // deprecated format controls
            | '\u{FEFF}' // BOM / zero-width no-break space
    )
}

/// The cleaned text and how many characters were removed (whitespace folding not counted).
/// Leading and trailing whitespace never reaches the output because a pending whitespace
/// run is only written between two kept characters.
fn clean_text(raw: &str) -> (String, usize) {
    let mut out = String::with_capacity(raw.len());
    let mut pending: Option<char> = None;
    let mut dropped = 0;
    for c in raw.chars() {
        match classify(c) {
            CharClass::Drop => dropped += 1,
            CharClass::LineBreak => pending = Some('\n'),
            CharClass::Space => {
                pending.get_or_insert(' ');
            }
            CharClass::Keep => {
                if let Some(ws) = pending.take()
                    && !out.is_empty()
                {
                    out.push(ws);
                }
                out.push(c);
            }
        }
    }
    (out, dropped)
}

/// Default-ignorable code points (Unicode `Default_Ignorable_Code_Point`): rendered as
/// nothing, so they never make text visible on their own.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Characters that draw nothing although their category says symbol or letter: the
/// Braille blank, and the Hangul fillers (also default-ignorable, listed for clarity).
fn is_filler(c: char) -> bool {
    matches!(c, '\u{2800}' | '\u{3164}' | '\u{115F}' | '\u{1160}' | '\u{FFA0}')
}

/// A character a viewer can see: a letter, number or symbol (emoji included) that is neither
/// default-ignorable nor a filler. Punctuation, marks and separators alone are not text.
pub fn is_visible(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    !is_default_ignorable(c)
        && !is_filler(c)
        && matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number | GeneralCategoryGroup::Symbol
        )
}

/// Text fit to show back to a user (lists, logs): control and invisible formatting
/// characters (bidi overrides included) removed and whitespace collapsed, as in a brief.
pub fn printable(raw: &str) -> String {
    clean_text(raw).0
}

fn sanitize_content(raw: &str, limits: &InputSanitizer, warnings: &mut Vec<String>) -> Result<String, FieldError> {
    // The limit holds for the text as sent (the spec's maxLength is checked by clients on
    // what they send); cleaning only drops characters and shortens whitespace runs, so the
    // cleaned text is within it too.
    let sent = raw.chars().count();
    if sent > limits.max_content_chars {
        let max = limits.max_content_chars;
        return Err(FieldError::new("content", MAX_LENGTH, format!("must be at most {max} characters, got {sent}")));
    }
    let (text, dropped) = clean_text(raw);
    if !text.chars().any(is_visible) {
        let message =
            if raw.is_empty() { "must not be empty".to_owned() } else { "must contain visible text".to_owned() };
        return Err(FieldError::new("content", REQUIRED, message));
    }
    let chars = text.chars().count();
    let min = limits.min_content_chars;
    if chars < min {
        return Err(FieldError::new(
            "content",
            MIN_LENGTH,
            format!("must be at least {min} characters after cleaning, got {chars}"),
        ));
    }
    if dropped > 0 {
        warnings.push(format!("content: removed {dropped} control or invisible formatting character(s)"));
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------
// choices from the config

fn resolve_preset<'c>(given: Option<&str>, cfg: &'c Config) -> Result<(String, &'c Preset), FieldError> {
    let name = given.map(normalize_name).unwrap_or_else(|| default_preset_name(cfg));
    match cfg.presets.get_key_value(&name) {
        Some((key, preset)) => Ok((key.clone(), preset)),
        None => Err(FieldError::new(
            "preset",
            ALLOWED_VALUES,
            format!("{} is not a known preset (allowed: {})", echo(&name), list(cfg.presets.keys())),
        )),
    }
}

/// `quick_social`, or the first preset when a custom config has none by that name.
pub fn default_preset_name(cfg: &Config) -> String {
    if cfg.presets.contains_key(DEFAULT_PRESET) {
        DEFAULT_PRESET.to_owned()
    } else {
        cfg.presets.keys().next().cloned().unwrap_or_default()
    }
}

fn resolve_duration(
    given: Option<u32>,
    limits: &InputSanitizer,
    preset_name: &str,
    preset: &Preset,
    warnings: &mut Vec<String>,
) -> Result<u32, FieldError> {
    let secs = match given {
        Some(secs) => secs,
        None => default_duration(limits, preset_name, preset, warnings),
    };
    check_duration(secs, limits, preset_name, preset)
}

/// The configured default, capped to what the preset allows.
fn default_duration(limits: &InputSanitizer, preset_name: &str, preset: &Preset, warnings: &mut Vec<String>) -> u32 {
    let default = limits.default_duration_sec;
    if default <= preset.max_duration_sec {
        return default;
    }
    let capped = preset.max_duration_sec;
    warnings.push(format!(
        "duration_sec: default of {default} s capped to {capped} s, the maximum of preset '{preset_name}'"
    ));
    capped
}

fn check_duration(secs: u32, limits: &InputSanitizer, preset_name: &str, preset: &Preset) -> Result<u32, FieldError> {
    let (min, max) = (limits.min_duration_sec, limits.max_duration_sec);
    if !(min..=max).contains(&secs) {
        return Err(FieldError::new(
            "duration_sec",
            RANGE,
            format!("must be between {min} and {max} seconds, got {secs}"),
        ));
    }
    if secs > preset.max_duration_sec {
        return Err(FieldError::new(
            "duration_sec",
            RANGE,
            format!("must be at most {} seconds for preset '{preset_name}', got {secs}", preset.max_duration_sec),
        ));
    }
    Ok(secs)
}

fn resolve_aspect_ratio(given: Option<&str>, limits: &InputSanitizer) -> Result<AspectRatio, FieldError> {
    let allowed = &limits.aspect_ratios;
    let text = match given {
        Some(raw) => raw.trim(),
        None => preferred_or_first(allowed, DEFAULT_ASPECT_RATIO),
    };
    let reject = || {
        FieldError::new(
            "aspect_ratio",
            ALLOWED_VALUES,
            format!("{} is not an allowed aspect ratio (allowed: {})", echo(text), list(allowed)),
        )
    };
    if !allowed.iter().any(|a| a.trim() == text) {
        return Err(reject());
    }
    text.parse::<AspectRatio>().map_err(|_| reject())
}

fn resolve_languages(
    given: Option<&[String]>,
    limits: &InputSanitizer,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, FieldError> {
    let allowed = &limits.languages;
    let Some(codes) = given else {
        return Ok(vec![preferred_or_first(allowed, DEFAULT_LANGUAGE).to_owned()]);
    };
    if codes.is_empty() {
        return Err(FieldError::new("languages", MIN_LENGTH, "must name at least 1 language, got none"));
    }
    // Bounded before any work: more entries than supported languages cannot be a real list.
    if codes.len() > allowed.len() {
        return Err(FieldError::new(
            "languages",
            MAX_LENGTH,
            format!("must name at most {} languages (the supported ones), got {}", allowed.len(), codes.len()),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, raw) in codes.iter().enumerate() {
        let code = normalize_name(raw);
        if !allowed.contains(&code) {
            return Err(FieldError::new(
                format!("languages[{i}]"),
                ALLOWED_VALUES,
                format!("{} is not a supported language (allowed: {})", echo(&code), list(allowed)),
            ));
        }
        if out.contains(&code) {
            warnings.push(format!("languages[{i}]: dropped duplicate '{code}'"));
        } else {
            out.push(code);
        }
    }
    if out.len() > MAX_LANGUAGES {
        return Err(FieldError::new(
            "languages",
            MAX_LENGTH,
            format!("must name at most {MAX_LANGUAGES} distinct languages, got {}", out.len()),
        ));
    }
    Ok(out)
}

fn resolve_priority(given: Option<&str>, limits: &InputSanitizer) -> Result<Priority, FieldError> {
    let Some(raw) = given else {
        return Ok(Priority::Normal);
    };
    let name = normalize_name(raw);
    let known = if limits.priorities.contains(&name) { Priority::from_name(&name) } else { None };
    known.ok_or_else(|| {
        FieldError::new(
            "priority",
            ALLOWED_VALUES,
            format!("{} is not an allowed priority (allowed: {})", echo(&name), list(&limits.priorities)),
        )
    })
}

fn check_budget(given: Option<f64>) -> Result<Option<f64>, FieldError> {
    let Some(budget) = given else {
        return Ok(None);
    };
    if !budget.is_finite() {
        return Err(FieldError::new("budget", FORMAT, format!("must be a finite number, got {budget}")));
    }
    if budget <= 0.0 || budget > MAX_BUDGET {
        return Err(FieldError::new(
            "budget",
            RANGE,
            format!("must be greater than 0 and at most {MAX_BUDGET}, got {budget}"),
        ));
    }
    Ok(Some(budget))
}

fn resolve_brand_id(given: Option<&str>, limits: &InputSanitizer) -> Result<Option<String>, FieldError> {
    let Some(raw) = given else {
        return Ok(None);
    };
    let id = raw.trim();
    let max = limits.max_brand_id_chars;
    let chars = id.chars().count();
    if chars == 0 {
        return Err(FieldError::new("brand_id", MIN_LENGTH, format!("must be between 1 and {max} characters, got 0")));
    }
    if chars > max {
        return Err(FieldError::new(
            "brand_id",
            MAX_LENGTH,
            format!("must be between 1 and {max} characters, got {chars}"),
        ));
    }
    if let Some(bad) = id.chars().find(|&c| !is_brand_id_char(c)) {
        return Err(FieldError::new(
            "brand_id",
            FORMAT,
            format!("may contain only letters A-Z, digits, '_' and '-', found {}", echo(&bad.to_string())),
        ));
    }
    Ok(Some(id.to_ascii_lowercase()))
}

fn is_brand_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn resolve_tier(given: Option<&str>, cfg: &Config, preset: &Preset) -> Result<String, FieldError> {
    let name = given.map(normalize_name).unwrap_or_else(|| preset.default_tier.clone());
    if cfg.render.tiers.contains_key(&name) {
        return Ok(name);
    }
    Err(FieldError::new(
        "tier",
        ALLOWED_VALUES,
        format!("{} is not a render tier (allowed: {})", echo(&name), list(cfg.render.tiers.keys())),
    ))
}

// ---------------------------------------------------------------------------------------
// helpers

/// Names (presets, tiers, languages, priorities) compare trimmed and lowercase.
fn normalize_name(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// `preferred` when the config allows it, otherwise the first allowed value.
fn preferred_or_first<'a>(allowed: &'a [String], preferred: &'a str) -> &'a str {
    if allowed.iter().any(|a| a.trim() == preferred) {
        preferred
    } else {
        allowed.first().map(|a| a.trim()).unwrap_or(preferred)
    }
}

/// A user value quoted for an error message: shortened, with control and invisible
/// characters escaped so the message is safe to print and log.
fn echo(value: &str) -> String {
    let mut out = String::from("'");
    for (i, c) in value.chars().enumerate() {
        if i == ECHO_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || is_invisible_format(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

fn list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items.into_iter().map(String::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BRIEF: &str = "A short video about fresh coffee.";

    fn cfg() -> Config {
        Config::builtin()
    }

    fn brief(content: &str) -> BriefRequest {
        BriefRequest { content: content.to_owned(), ..Default::default() }
    }

    fn ok(req: &BriefRequest) -> SanitizedInput {
        sanitize(req, &cfg()).unwrap_or_else(|e| panic!("expected Ok, got {e}"))
    }

    fn err(req: &BriefRequest) -> FieldError {
        match sanitize(req, &cfg()) {
            Ok(out) => panic!("expected an error, got {out:?}"),
            Err(e) => e,
        }
    }

    fn assert_err(req: &BriefRequest, field: &str, rule: &str) -> FieldError {
        let e = err(req);
        assert_eq!((e.field.as_str(), e.rule), (field, rule), "{e}");
        e
    }

    // --- defaults -----------------------------------------------------------------------

    #[test]
    fn defaults_are_applied() {
        let out = ok(&brief(BRIEF));
        assert_eq!(out.content, BRIEF);
        assert_eq!(out.duration_sec, 30);
        assert_eq!(out.aspect_ratio, AspectRatio::Landscape16x9);
        assert_eq!(out.languages, vec!["en".to_owned()]);
        assert_eq!(out.preset, "quick_social");
        assert_eq!(out.priority, Priority::Normal);
        assert_eq!(out.budget, None);
        assert_eq!(out.brand_id, None);
        assert_eq!(out.tier, "standard");
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    }

    #[test]
    fn default_tier_follows_the_preset() {
        let out = ok(&BriefRequest { preset: Some("premium_spot".into()), ..brief(BRIEF) });
        assert_eq!(out.tier, "premium");
        let out = ok(&BriefRequest { preset: Some("brand_campaign".into()), ..brief(BRIEF) });
        assert_eq!(out.tier, "standard");
    }

    #[test]
    fn default_duration_is_capped_to_the_preset_maximum() {
        let mut c = cfg();
        c.presets.get_mut("quick_social").expect("preset").max_duration_sec = 20;
        let out = sanitize(&brief(BRIEF), &c).expect("ok");
        assert_eq!(out.duration_sec, 20);
        assert!(out.warnings.iter().any(|w| w.contains("capped to 20 s")), "{:?}", out.warnings);
        // a preset that allows more keeps the configured default
        let out = ok(&BriefRequest { preset: Some("premium_spot".into()), ..brief(BRIEF) });
        assert_eq!(out.duration_sec, 30);
    }

    // --- content ------------------------------------------------------------------------

    #[test]
    fn content_is_required() {
        let e = assert_err(&brief(""), "content", "required");
        assert_eq!(e.to_string(), "content: must not be empty");
        assert_err(&brief("  \n\t \r\n "), "content", "required");
        assert_err(&brief("\u{0}\u{7}\u{200B}\u{202E}"), "content", "required");
    }

    /// Briefs made only of characters that draw nothing (fillers, joiners, soft hyphens,
    /// variation selectors, the Braille blank) are refused, whatever their length.
    #[test]
    fn invisible_only_content_is_refused() {
        for c in
            ['\u{3164}', '\u{115F}', '\u{200D}', '\u{200C}', '\u{AD}', '\u{2800}', '\u{FE0F}', '\u{34F}', '\u{FFA0}']
        {
            let e = assert_err(&brief(&c.to_string().repeat(40)), "content", "required");
            assert_eq!(e.message, "must contain visible text", "U+{:04X}", c as u32);
        }
        let mix: String = "\u{3164}\u{115F}\u{200D}\u{200C}\u{AD}\u{2800}\u{FE0F}\u{34F} ".repeat(10);
        assert_err(&brief(&mix), "content", "required");
        assert_err(&brief("!!!!!!!!!!!! ... ??? ,,,"), "content", "required");
        // One visible character among them is enough; the rest are kept as written.
        assert!(ok(&brief(&format!("{mix}a"))).content.ends_with('a'));
        ok(&brief("😀😀😀😀😀😀😀😀😀😀"));
        ok(&brief("1234567890"));
    }

    #[test]
    fn printable_strips_controls_and_bidi_overrides() {
        assert_eq!(printable("a\u{0}b\u{202E}c  d"), "abc d");
    }

    #[test]
    fn content_length_boundaries_count_chars_not_bytes() {
        assert_eq!(ok(&brief(&"a".repeat(10))).content.chars().count(), 10);
        let e = assert_err(&brief(&"a".repeat(9)), "content", "min_length");
        assert_eq!(e.to_string(), "content: must be at least 10 characters after cleaning, got 9");
        assert_eq!(ok(&brief(&"a".repeat(10_000))).content.len(), 10_000);
        let e = assert_err(&brief(&"a".repeat(10_001)), "content", "max_length");
        assert_eq!(e.to_string(), "content: must be at most 10000 characters, got 10001");
        // multi-byte characters: 10 CJK chars are 30 bytes but 10 characters
        ok(&brief(&"東".repeat(10)));
        assert_err(&brief(&"東".repeat(9)), "content", "min_length");
        // 10,000 emoji are 40,000 bytes but within the limit
        ok(&brief(&"😀".repeat(10_000)));
        assert_err(&brief(&"😀".repeat(10_001)), "content", "max_length");
    }

    #[test]
    fn content_length_is_measured_after_cleaning() {
        // 9 visible characters padded with controls and spaces
        assert_err(&brief("\u{0}  abcdefghi \u{1b}\u{7f}  "), "content", "min_length");
        // whitespace runs count as one character
        assert_eq!(ok(&brief("abcde     fghij")).content, "abcde fghij");
    }

    #[test]
    fn whitespace_is_collapsed_and_line_breaks_kept_once() {
        let out = ok(&brief("  Hello \t  world \r\n\r\n\n   Second\u{3000}\u{a0}paragraph\u{2029}Third line  \n"));
        assert_eq!(out.content, "Hello world\nSecond paragraph\nThird line");
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    }

    #[test]
    fn control_characters_are_stripped() {
        let out = ok(&brief("\u{0}Ring\u{7} the\u{1b}[31m bell\u{7f}\u{9f} now\u{8}!"));
        assert_eq!(out.content, "Ring the[31m bell now!");
        assert!(out.content.chars().all(|c| !c.is_control()));
        assert!(out.warnings.iter().any(|w| w.contains("removed 6")), "{:?}", out.warnings);
        // vertical tab, form feed and NEL are line breaks, not glue between words
        assert_eq!(
            ok(&brief("first line\u{b}second\u{c}third\u{85}fourth")).content,
            "first line\nsecond\nthird\nfourth"
        );
    }

    #[test]
    fn bidi_controls_and_zero_width_spaces_are_stripped_but_joiners_kept() {
        let out = ok(&brief("invoice_\u{202E}fdp.exe\u{202C} and \u{2066}isolated\u{2069}"));
        assert_eq!(out.content, "invoice_fdp.exe and isolated");
        assert_eq!(ok(&brief("pay\u{200B}pal\u{FEFF} login\u{2060} page")).content, "paypal login page");
        // ZWJ in emoji sequences and ZWNJ in Persian survive
        let persian = "می\u{200C}خواهم یک ویدیو 👩\u{200D}💻";
        assert_eq!(ok(&brief(persian)).content, persian);
    }

    #[test]
    fn every_script_survives_unchanged() {
        let samples = [
            "東京の夜景を紹介する短い動画を作ってください。",
            "用三十秒介绍我们的新茶饮品牌",
            "서울의 아름다운 야경을 보여주는 영상",
            "فيديو قصير عن القهوة العربية الأصيلة",
            "סרטון קצר על קפה טרי של הבוקר",
            "नमस्ते दुनिया, यह एक छोटा वीडियो है",
            concat!(
                "Family 👩\u{200D}👩\u{200D}👧\u{200D}👦, coder 👨🏽\u{200D}💻, flag 🏳\u{FE0F}\u{200D}🌈 ",
                "and England 🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
            ),
            "Cafe\u{301} noe\u{308}l, Zoe\u{308} and Ha\u{323}\u{302}i — combining marks",
            "Mixed: English, עברית, العربية \u{200F}and 日本語",
        ];
        for text in samples {
            let out = ok(&brief(text));
            assert_eq!(out.content, text, "{text}");
            assert!(out.warnings.is_empty(), "{text}: {:?}", out.warnings);
        }
    }

    // --- duration -----------------------------------------------------------------------

    #[test]
    fn duration_is_a_whole_number_however_json_writes_it() {
        let parse = |json: &str| serde_json::from_str::<BriefRequest>(json).map(|b| b.duration_sec);
        assert_eq!(parse(r#"{"content": "x", "duration_sec": 27}"#).unwrap(), Some(27));
        assert_eq!(parse(r#"{"content": "x", "duration_sec": 27.0}"#).unwrap(), Some(27));
        assert_eq!(parse(r#"{"content": "x", "duration_sec": null}"#).unwrap(), None);
        assert_eq!(parse(r#"{"content": "x"}"#).unwrap(), None);
        for bad in ["27.5", "-1", "1e12", "\"27\""] {
            assert!(parse(&format!(r#"{{"content": "x", "duration_sec": {bad}}}"#)).is_err(), "{bad}");
        }
    }

    #[test]
    fn duration_global_boundaries() {
        let premium =
            |d: u32| BriefRequest { duration_sec: Some(d), preset: Some("premium_spot".into()), ..brief(BRIEF) };
        assert_eq!(ok(&premium(5)).duration_sec, 5);
        let e = assert_err(&premium(4), "duration_sec", "range");
        assert_eq!(e.to_string(), "duration_sec: must be between 5 and 300 seconds, got 4");
        assert_err(&premium(0), "duration_sec", "range");
        let e = assert_err(&premium(1000), "duration_sec", "range");
        assert_eq!(e.to_string(), "duration_sec: must be between 5 and 300 seconds, got 1000");
        assert_err(&premium(301), "duration_sec", "range");
        assert_err(&premium(u32::MAX), "duration_sec", "range");
        // 300 itself passes once a preset allows it
        let mut c = cfg();
        c.presets.get_mut("premium_spot").expect("preset").max_duration_sec = 600;
        assert_eq!(sanitize(&premium(300), &c).expect("ok").duration_sec, 300);
        assert!(sanitize(&premium(301), &c).is_err());
    }

    #[test]
    fn duration_is_limited_by_the_preset() {
        let with =
            |preset: &str, d: u32| BriefRequest { duration_sec: Some(d), preset: Some(preset.into()), ..brief(BRIEF) };
        assert_eq!(ok(&with("quick_social", 30)).duration_sec, 30);
        let e = assert_err(&with("quick_social", 31), "duration_sec", "range");
        assert_eq!(e.to_string(), "duration_sec: must be at most 30 seconds for preset 'quick_social', got 31");
        assert_eq!(ok(&with("premium_spot", 180)).duration_sec, 180);
        let e = assert_err(&with("premium_spot", 181), "duration_sec", "range");
        assert!(e.message.contains("premium_spot"), "{e}");
        assert_eq!(ok(&with("brand_campaign", 120)).duration_sec, 120);
        assert_err(&with("brand_campaign", 121), "duration_sec", "range");
    }

    // --- aspect ratio -------------------------------------------------------------------

    #[test]
    fn aspect_ratio_allowed_values() {
        let with = |a: &str| BriefRequest { aspect_ratio: Some(a.into()), ..brief(BRIEF) };
        assert_eq!(ok(&with("16:9")).aspect_ratio, AspectRatio::Landscape16x9);
        assert_eq!(ok(&with(" 9:16 ")).aspect_ratio, AspectRatio::Vertical9x16);
        assert_eq!(ok(&with("1:1")).aspect_ratio, AspectRatio::Square1x1);
        assert_eq!(ok(&with("4:5\n")).aspect_ratio, AspectRatio::Portrait4x5);
        let e = assert_err(&with("4:3"), "aspect_ratio", "allowed_values");
        assert_eq!(e.to_string(), "aspect_ratio: '4:3' is not an allowed aspect ratio (allowed: 16:9, 9:16, 1:1, 4:5)");
        assert_err(&with(""), "aspect_ratio", "allowed_values");
        assert_err(&with("16/9"), "aspect_ratio", "allowed_values");
        // a ratio the domain knows but the config does not allow is rejected
        let mut c = cfg();
        c.input_sanitizer.aspect_ratios.retain(|a| a != "1:1");
        assert_eq!(sanitize(&with("1:1"), &c).map_err(|e| e.rule), Err("allowed_values"));
    }

    // --- languages ----------------------------------------------------------------------

    fn langs(codes: &[&str]) -> BriefRequest {
        BriefRequest { languages: Some(codes.iter().map(|c| c.to_string()).collect()), ..brief(BRIEF) }
    }

    #[test]
    fn languages_are_normalised_and_deduplicated_in_order() {
        assert_eq!(ok(&langs(&["  EN ", "Fr"])).languages, ["en", "fr"]);
        let out = ok(&langs(&["fr", "en", " FR", "en"]));
        assert_eq!(out.languages, ["fr", "en"]);
        assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
        assert!(out.warnings[0].starts_with("languages[2]"), "{:?}", out.warnings);
        let all = ["en", "fr", "es", "de", "it", "pt", "ja", "zh", "ko"];
        assert_eq!(ok(&langs(&all)).languages, all);
    }

    #[test]
    fn languages_must_be_supported_and_the_error_names_the_index() {
        let e = assert_err(&langs(&["en", "fr", "xx"]), "languages[2]", "allowed_values");
        assert!(e.to_string().starts_with("languages[2]: 'xx' is not a supported language (allowed: en, fr,"), "{e}");
        assert_err(&langs(&["", "en"]), "languages[0]", "allowed_values");
        assert_err(&langs(&["eng"]), "languages[0]", "allowed_values");
    }

    #[test]
    fn languages_list_length_limits() {
        let e = assert_err(&langs(&[]), "languages", "min_length");
        assert_eq!(e.to_string(), "languages: must name at least 1 language, got none");
        ok(&langs(&["ja"]));
        // ten distinct languages need a config that allows ten
        let mut c = cfg();
        c.input_sanitizer.languages.push("nl".into());
        let ten = ["en", "fr", "es", "de", "it", "pt", "ja", "zh", "ko", "nl"];
        let e = sanitize(&langs(&ten), &c).expect_err("ten languages");
        assert_eq!((e.field.as_str(), e.rule), ("languages", "max_length"));
        assert_eq!(e.message, "must name at most 9 distinct languages, got 10");
        assert_eq!(sanitize(&langs(&ten[1..]), &c).expect("nine").languages.len(), 9);
    }

    #[test]
    fn languages_are_bounded_before_deduplication() {
        let many: Vec<&str> = std::iter::repeat_n("en", 10_000).collect();
        let e = assert_err(&langs(&many), "languages", "max_length");
        assert_eq!(e.message, "must name at most 9 languages (the supported ones), got 10000");
        let nine_dupes: Vec<&str> = std::iter::repeat_n("fr", 9).collect();
        assert_eq!(ok(&langs(&nine_dupes)).languages, ["fr"]);
    }

    // --- preset, priority, tier -------------------------------------------------------------

    #[test]
    fn preset_must_exist() {
        let with = |p: &str| BriefRequest { preset: Some(p.into()), ..brief(BRIEF) };
        assert_eq!(ok(&with(" Brand_Campaign ")).preset, "brand_campaign");
        let e = assert_err(&with("viral"), "preset", "allowed_values");
        assert_eq!(
            e.to_string(),
            "preset: 'viral' is not a known preset (allowed: brand_campaign, premium_spot, quick_social)"
        );
        assert_err(&with(""), "preset", "allowed_values");
    }

    #[test]
    fn priority_allowed_values() {
        let with = |p: &str| BriefRequest { priority: Some(p.into()), ..brief(BRIEF) };
        assert_eq!(ok(&with("low")).priority, Priority::Low);
        assert_eq!(ok(&with(" HIGH ")).priority, Priority::High);
        assert_eq!(ok(&with("Normal")).priority, Priority::Normal);
        let e = assert_err(&with("urgent"), "priority", "allowed_values");
        assert_eq!(e.to_string(), "priority: 'urgent' is not an allowed priority (allowed: low, normal, high)");
        // a priority the config does not list is rejected even though the enum knows it
        let mut c = cfg();
        c.input_sanitizer.priorities.retain(|p| p != "high");
        assert_eq!(sanitize(&with("high"), &c).map_err(|e| e.rule), Err("allowed_values"));
    }

    #[test]
    fn tier_must_be_a_render_tier() {
        let with = |t: &str| BriefRequest { tier: Some(t.into()), ..brief(BRIEF) };
        assert_eq!(ok(&with(" PREMIUM ")).tier, "premium");
        assert_eq!(ok(&with("economy")).tier, "economy");
        let e = assert_err(&with("ultra"), "tier", "allowed_values");
        assert_eq!(e.to_string(), "tier: 'ultra' is not a render tier (allowed: economy, premium, standard)");
    }

    // --- budget -------------------------------------------------------------------------

    #[test]
    fn budget_range_and_format() {
        let with = |b: f64| BriefRequest { budget: Some(b), ..brief(BRIEF) };
        assert_eq!(ok(&with(0.01)).budget, Some(0.01));
        assert_eq!(ok(&with(1_000_000.0)).budget, Some(1_000_000.0));
        let e = assert_err(&with(0.0), "budget", "range");
        assert_eq!(e.to_string(), "budget: must be greater than 0 and at most 1000000, got 0");
        assert_err(&with(-0.0), "budget", "range");
        assert_err(&with(-5.0), "budget", "range");
        assert_err(&with(1_000_000.01), "budget", "range");
        assert_err(&with(f64::NAN), "budget", "format");
        assert_err(&with(f64::INFINITY), "budget", "format");
        assert_err(&with(f64::NEG_INFINITY), "budget", "format");
    }

    // --- brand id -----------------------------------------------------------------------

    #[test]
    fn brand_id_length_and_format() {
        let with = |b: &str| BriefRequest { brand_id: Some(b.into()), ..brief(BRIEF) };
        assert_eq!(ok(&with(" Acme_Co-1 ")).brand_id.as_deref(), Some("acme_co-1"));
        assert_eq!(ok(&with("a")).brand_id.as_deref(), Some("a"));
        assert_eq!(ok(&with(&"B".repeat(64))).brand_id, Some("b".repeat(64)));
        let e = assert_err(&with(&"b".repeat(65)), "brand_id", "max_length");
        assert_eq!(e.to_string(), "brand_id: must be between 1 and 64 characters, got 65");
        assert_err(&with(""), "brand_id", "min_length");
        assert_err(&with("   "), "brand_id", "min_length");
        let e = assert_err(&with("acme co"), "brand_id", "format");
        assert!(e.message.ends_with("found ' '"), "{e}");
        assert_err(&with("acmé"), "brand_id", "format");
        assert_err(&with("../etc"), "brand_id", "format");
        let e = assert_err(&with("acme\u{202E}"), "brand_id", "format");
        assert!(e.message.ends_with("found '\\u{202e}'"), "{e}");
    }

    // --- errors, serde, idempotency ------------------------------------------------------

    #[test]
    fn error_messages_echo_values_safely() {
        let long = format!("\u{1b}[2J{}", "x".repeat(500));
        let e = assert_err(&BriefRequest { preset: Some(long), ..brief(BRIEF) }, "preset", "allowed_values");
        assert!(!e.message.contains('\u{1b}'), "{e}");
        assert!(e.message.contains("\\u{1b}[2j"), "{e}");
        assert!(e.message.len() < 200, "{e}");
        let json = serde_json::to_value(&e).expect("serialises");
        assert_eq!(json["rule"], "allowed_values");
        assert_eq!(json["field"], "preset");
    }

    #[test]
    fn json_requests_reject_unknown_fields() {
        let good: BriefRequest =
            serde_json::from_str(r#"{"content":"A brief","duration_sec":20,"languages":["en"]}"#).expect("parses");
        assert_eq!(good.duration_sec, Some(20));
        assert!(serde_json::from_str::<BriefRequest>(r#"{"content":"A brief","colour":"red"}"#).is_err());
        assert!(serde_json::from_str::<BriefRequest>(r#"{"duration_sec":20}"#).is_err());
    }

    #[test]
    fn voice_and_narration_default_to_the_preset_and_reject_unknown_voices() {
        let out = ok(&brief(BRIEF));
        assert_eq!((out.voice, out.narration), (VoiceChoice::Auto, true));
        let out = ok(&BriefRequest { voice: Some("piper".into()), narration: Some(false), ..brief(BRIEF) });
        assert_eq!((out.voice, out.narration), (VoiceChoice::Piper, false));
        let e = assert_err(&BriefRequest { voice: Some("alexa".into()), ..brief(BRIEF) }, "voice", "allowed_values");
        assert!(e.message.contains("auto, piper, espeak-ng"), "{e}");
        // A sanitised brief stored before these fields existed reads as narrated, auto voice.
        let mut json = serde_json::to_value(ok(&brief(BRIEF))).unwrap();
        json.as_object_mut().unwrap().retain(|k, _| k != "voice" && k != "narration");
        let old: SanitizedInput = serde_json::from_value(json).unwrap();
        assert_eq!((old.voice, old.narration), (VoiceChoice::Auto, true));
    }

    #[test]
    fn sanitized_input_round_trips_through_json() {
        let out = ok(&BriefRequest { priority: Some("high".into()), budget: Some(12.5), ..brief(BRIEF) });
        let json = serde_json::to_value(&out).expect("serialises");
        assert_eq!(json["priority"], "high");
        assert_eq!(json["aspect_ratio"], "16:9");
        let back: SanitizedInput = serde_json::from_value(json).expect("deserialises");
        assert_eq!(back, out);
    }

    #[test]
    fn sanitizing_an_accepted_brief_again_changes_nothing() {
        let req = BriefRequest {
            content: "  Launch\u{0} video\t\tfor our\u{202E} tea \r\n\r\n brand 🍵  ".into(),
            duration_sec: None,
            aspect_ratio: Some(" 9:16".into()),
            languages: Some(vec!["FR".into(), "en".into(), "fr".into()]),
            preset: Some("Brand_Campaign".into()),
            priority: Some(" low".into()),
            budget: Some(99.5),
            brand_id: Some(" Tea-Co ".into()),
            tier: None,
            voice: Some(" Espeak-NG".into()),
            narration: None,
        };
        let first = ok(&req);
        assert!(!first.warnings.is_empty());
        let second = ok(&BriefRequest::from(&first));
        assert!(second.warnings.is_empty(), "{:?}", second.warnings);
        assert_eq!(second, SanitizedInput { warnings: Vec::new(), ..first });
    }
}
