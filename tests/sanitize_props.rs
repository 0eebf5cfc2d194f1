//! Property tests for the InputSanitizer: whatever a user sends, `sanitize` must not panic,
//! must only accept clean text within the limits, must be idempotent on what it accepts, and
//! must name a real request field when it refuses.

use std::sync::LazyLock;

use aiprod::config::Config;
use aiprod::sanitize::{BriefRequest, FieldError, SanitizedInput, is_visible, sanitize};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

static CONFIG: LazyLock<Config> = LazyLock::new(Config::builtin);

const FIELDS: [&str; 9] =
    ["content", "duration_sec", "aspect_ratio", "languages", "preset", "priority", "budget", "brand_id", "tier"];
const RULES: [&str; 6] = ["required", "min_length", "max_length", "range", "allowed_values", "format"];

const LANGUAGES: [&str; 9] = ["en", "fr", "es", "de", "it", "pt", "ja", "zh", "ko"];
const PRESETS: [&str; 3] = ["quick_social", "brand_campaign", "premium_spot"];
const TIERS: [&str; 3] = ["economy", "standard", "premium"];
const PRIORITIES: [&str; 3] = ["low", "normal", "high"];
const ASPECT_RATIOS: [&str; 4] = ["16:9", "9:16", "1:1", "4:5"];

// ---------------------------------------------------------------------------------------
// strategies

/// Characters that exercise every branch of the text cleaner: plain letters, all kinds of
/// whitespace and line breaks, controls and invisible format characters, other scripts,
/// joiners and combining marks, and anything at all.
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        10 => prop::char::range('a', 'z'),
        3 => Just(' '),
        2 => prop::sample::select(vec![
            '\n', '\t', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{a0}', '\u{3000}', '\u{2028}', '\u{2029}',
        ]),
        2 => prop::sample::select(vec![
            '\0', '\u{7}', '\u{1b}', '\u{7f}', '\u{9f}', '\u{200B}', '\u{202A}', '\u{202C}', '\u{202E}', '\u{2066}',
            '\u{2069}', '\u{FEFF}', '\u{2060}',
        ]),
        2 => prop::sample::select(vec![
            '東', '京', 'ف', 'ي', 'ש', 'ל', 'न', '\u{94d}', '\u{200D}', '\u{200C}', '\u{200F}', '\u{301}',
            '\u{308}', '😀', '👩', '\u{FE0F}', '\u{E0067}',
        ]),
        2 => any::<char>(),
    ]
}

fn content() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::collection::vec(text_char(), 0..200).prop_map(|cs| cs.into_iter().collect::<String>()),
        1 => any::<String>(),
        1 => (9_995usize..10_006, prop::collection::vec(text_char(), 0..8))
            .prop_map(|(n, tail)| format!("{}{}", "x".repeat(n), tail.into_iter().collect::<String>())),
    ]
}

/// One of `valid`, possibly upper-cased and padded with whitespace, or any string at all.
fn name_like(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    let variant = (prop::sample::select(valid), any::<bool>(), 0usize..3).prop_map(|(v, upper, pad)| {
        let v = if upper { v.to_uppercase() } else { v.to_owned() };
        format!("{}{v}{}", " ".repeat(pad), "\t".repeat(pad))
    });
    prop_oneof![8 => variant, 1 => any::<String>()]
}

fn duration() -> impl Strategy<Value = u32> {
    prop_oneof![5 => 5u32..=30, 2 => 0u32..=320, 1 => any::<u32>()]
}

fn budget() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0f64..2_000_000.0,
        1 => any::<f64>(),
        1 => prop::sample::select(vec![
            f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, 1_000_000.0, f64::MIN_POSITIVE, f64::MAX,
        ]),
    ]
}

fn brand_id() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[ ]{0,2}[A-Za-z0-9_-]{0,70}[ ]{0,2}", 1 => any::<String>()]
}

/// Requests biased towards valid values, so a fair share is accepted.
fn plausible_request() -> impl Strategy<Value = BriefRequest> {
    (
        content(),
        prop::option::of(duration()),
        prop::option::of(name_like(&ASPECT_RATIOS)),
        prop::option::of(prop::collection::vec(name_like(&LANGUAGES), 0..6)),
        prop::option::weighted(0.3, name_like(&PRESETS)),
        prop::option::of(name_like(&PRIORITIES)),
        prop::option::of(budget()),
        prop::option::of(brand_id()),
        prop::option::of(name_like(&TIERS)),
    )
        .prop_map(|(content, duration_sec, aspect_ratio, languages, preset, priority, budget, brand_id, tier)| {
            BriefRequest {
                content,
                duration_sec,
                aspect_ratio,
                languages,
                preset,
                priority,
                budget,
                brand_id,
                tier,
                ..Default::default()
            }
        })
}

/// Requests made of arbitrary values in every field.
fn arbitrary_request() -> impl Strategy<Value = BriefRequest> {
    (
        any::<String>(),
        any::<Option<u32>>(),
        any::<Option<String>>(),
        any::<Option<Vec<String>>>(),
        any::<Option<String>>(),
        any::<Option<String>>(),
        any::<Option<f64>>(),
        any::<Option<String>>(),
        any::<Option<String>>(),
    )
        .prop_map(|(content, duration_sec, aspect_ratio, languages, preset, priority, budget, brand_id, tier)| {
            BriefRequest {
                content,
                duration_sec,
                aspect_ratio,
                languages,
                preset,
                priority,
                budget,
                brand_id,
                tier,
                ..Default::default()
            }
        })
}

fn any_request() -> impl Strategy<Value = BriefRequest> {
    prop_oneof![3 => plausible_request(), 1 => arbitrary_request()]
}

// ---------------------------------------------------------------------------------------
// checks

fn assert_clean_output(out: &SanitizedInput) {
    let limits = &CONFIG.input_sanitizer;
    let text = &out.content;
    assert!(text.chars().all(|c| c == '\n' || !c.is_control()), "control char in {text:?}");
    assert_eq!(text.trim(), text.as_str(), "untrimmed {text:?}");
    let n = text.chars().count();
    assert!((limits.min_content_chars..=limits.max_content_chars).contains(&n), "{n} chars");
    assert!(!text.contains("  ") && !text.contains("\n\n") && !text.contains(" \n") && !text.contains("\n "));
    assert!(text.chars().any(is_visible), "no visible character in {text:?}");
    assert!(
        !text.chars().any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')),
        "bidi override or isolate kept in {text:?}"
    );

    let preset = &CONFIG.presets[&out.preset];
    assert!((limits.min_duration_sec..=limits.max_duration_sec).contains(&out.duration_sec));
    assert!(out.duration_sec <= preset.max_duration_sec);
    assert!(!out.languages.is_empty() && out.languages.len() <= 9);
    assert!(out.languages.iter().all(|l| limits.languages.contains(l)));
    for (i, l) in out.languages.iter().enumerate() {
        assert!(!out.languages[..i].contains(l), "duplicate {l}");
    }
    assert!(CONFIG.render.tiers.contains_key(&out.tier));
    if let Some(b) = out.budget {
        assert!(b.is_finite() && b > 0.0 && b <= 1_000_000.0, "{b}");
    }
    if let Some(id) = &out.brand_id {
        assert!((1..=limits.max_brand_id_chars).contains(&id.len()));
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'), "{id}");
    }
}

fn is_known_field(field: &str) -> bool {
    if FIELDS.contains(&field) {
        return true;
    }
    field
        .strip_prefix("languages[")
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|idx| !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()))
}

fn assert_well_formed_error(e: &FieldError) {
    assert!(is_known_field(&e.field), "unknown field {:?}", e.field);
    assert!(RULES.contains(&e.rule), "unknown rule {:?}", e.rule);
    assert!(!e.message.is_empty());
    assert_eq!(e.to_string(), format!("{}: {}", e.field, e.message));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (1) No input, however odd, makes `sanitize` panic.
    #[test]
    fn never_panics(req in any_request()) {
        let _ = sanitize(&req, &CONFIG);
    }

    /// (2) Accepted output is clean and within every limit.
    #[test]
    fn accepted_output_is_clean(req in plausible_request()) {
        if let Ok(out) = sanitize(&req, &CONFIG) {
            assert_clean_output(&out);
        }
    }

    /// (3) Sanitizing an accepted brief again yields the same values and nothing to warn about.
    #[test]
    fn sanitize_is_idempotent(req in plausible_request()) {
        if let Ok(first) = sanitize(&req, &CONFIG) {
            let second = sanitize(&BriefRequest::from(&first), &CONFIG);
            let second = second.map_err(|e| TestCaseError::fail(format!("re-sanitizing failed: {e}")))?;
            prop_assert!(second.warnings.is_empty(), "{:?}", second.warnings);
            prop_assert_eq!(second, SanitizedInput { warnings: Vec::new(), ..first });
        }
    }

    /// (5) Text made only of characters that draw nothing (fillers, joiners, variation
    /// selectors, soft hyphens, the Braille blank, controls, whitespace, punctuation) is
    /// refused as `content: required`, however long.
    #[test]
    fn invisible_only_content_is_refused(cs in prop::collection::vec(prop::sample::select(vec![
        '\u{3164}', '\u{115F}', '\u{1160}', '\u{FFA0}', '\u{200D}', '\u{200C}', '\u{AD}', '\u{2800}', '\u{FE0F}',
        '\u{FE00}', '\u{34F}', '\u{180E}', '\u{E0020}', '\u{200B}', '\u{202E}', '\u{0}', ' ', '\n', '\u{3000}',
        '!', '.', '\u{301}',
    ]), 0..600)) {
        let text: String = cs.into_iter().collect();
        let e = sanitize(&BriefRequest { content: text, ..Default::default() }, &CONFIG);
        let e = e.map(|out| out.content).expect_err("invisible text accepted");
        prop_assert_eq!((e.field.as_str(), e.rule), ("content", "required"));
    }

    /// (4) A rejection names a real request field and a known rule.
    #[test]
    fn errors_name_a_known_field(req in any_request()) {
        if let Err(e) = sanitize(&req, &CONFIG) {
            assert_well_formed_error(&e);
        }
    }
}

/// Guards against vacuous properties: the biased generator must produce both accepted and
/// rejected requests in a healthy mix, or (2) and (3) would prove nothing.
#[test]
fn generator_reaches_both_outcomes() {
    let mut runner = TestRunner::deterministic();
    let strategy = plausible_request();
    let total = 400;
    let mut accepted = 0;
    for _ in 0..total {
        let req = strategy.new_tree(&mut runner).expect("generates").current();
        if sanitize(&req, &CONFIG).is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted * 10 >= total, "only {accepted}/{total} accepted");
    assert!(accepted * 10 <= total * 9, "{accepted}/{total} accepted; rejections are under-tested");
}
