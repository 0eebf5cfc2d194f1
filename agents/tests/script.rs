//! The deterministic planner's scripts on a labelled set of briefs (tests/data/
//! script_briefs.jsonl: English, French, Spanish, German and Japanese; promos,
//! announcements, explainers, safety notices, events; injection attempts among them). Each
//! brief lists the facts a script must keep and the direction phrases it must never say or
//! show. The figures are measured here independently of the script module's own checks:
//! labelled facts found verbatim in narration or captions, numbers and capitalised names in
//! the script that the brief does not contain, and labelled direction phrases found.
//!
//! `cargo test -p agents --test script -- --nocapture` prints every script and the figures.

use agents::planner::{PlanLimits, PlanRequest, Planned, plan_with_report};
use agents::script::speech;
use agents::voice::fit::FitSettings;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    lang: String,
    kind: String,
    duration: u32,
    brief: String,
    facts: Vec<String>,
    direction: Vec<String>,
}

fn cases() -> Vec<Case> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/script_briefs.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect(l)).collect()
}

/// The limits the planning stage gives the full path: up to eight scenes, captions readable
/// in their scene, scenes of at least 3 s.
fn request(c: &Case) -> PlanRequest {
    PlanRequest {
        brief: c.brief.clone(),
        duration_s: c.duration,
        language: c.lang.clone(),
        fast_track: false,
        limits: PlanLimits {
            max_scenes: 8,
            max_caption_chars: ((c.duration as usize * 15) / 3).clamp(24, 72),
            min_scene_s: 3.0,
        },
        reuse_markers: None,
        speech: FitSettings::default(),
    }
}

/// Every narration line and caption, one per line.
fn lines(p: &Planned) -> Vec<String> {
    p.manifest.scenes.iter().flat_map(|s| [s.narration.clone(), s.caption.clone()]).collect()
}

/// Digit runs in `text` (commas inside numbers dropped).
fn digit_runs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            cur.push(c);
        } else if c == ',' && !cur.is_empty() && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
            continue;
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Numbers and capitalised names in the script that the brief does not contain. A word
/// opening a sentence, a caption or a caption list item is capitalised for grammar and
/// not counted as a name.
fn inventions(c: &Case, p: &Planned) -> (Vec<String>, Vec<String>) {
    let brief_lower = c.brief.to_lowercase();
    let brief_digits = digit_runs(&c.brief);
    let mut numbers = Vec::new();
    let mut names = Vec::new();
    for line in lines(p) {
        for d in digit_runs(&line) {
            if !brief_digits.contains(&d) {
                numbers.push(format!("{d} in {line:?}"));
            }
        }
        if c.lang == "de" || c.lang == "ja" {
            continue; // German capitalises every noun; Japanese has no capitals.
        }
        let mut opening = true;
        for raw in line.split_whitespace() {
            let w = raw.trim_matches(|ch: char| !ch.is_alphanumeric());
            if !opening && w.chars().next().is_some_and(char::is_uppercase) && !brief_lower.contains(&w.to_lowercase())
            {
                names.push(format!("{w} in {line:?}"));
            }
            opening = raw.ends_with(['.', '!', '?', ':']) || raw == "·" || w.is_empty() && opening;
        }
    }
    (numbers, names)
}

#[test]
fn the_planner_keeps_facts_invents_nothing_and_never_says_its_directions() {
    let cases = cases();
    assert!(cases.len() >= 40, "the labelled set has {} briefs", cases.len());
    let (mut facts, mut kept) = (0usize, 0usize);
    let (mut invented_numbers, mut invented_names, mut spoken_direction) = (Vec::new(), Vec::new(), Vec::new());
    let mut over_time = Vec::new();
    let mut long_captions = Vec::new();
    let mut by_lang: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for c in &cases {
        let p = plan_with_report(&request(c)).unwrap_or_else(|e| panic!("{}: {e}", c.id));
        println!("── {} ({}, {}, {} s)", c.id, c.lang, c.kind, c.duration);
        for (i, s) in p.manifest.scenes.iter().enumerate() {
            println!("  {}. [{}] {}", i + 1, s.caption, s.narration);
        }
        let all = lines(&p).join("\n").to_lowercase();
        let entry = by_lang.entry(c.lang.clone()).or_default();
        for f in &c.facts {
            facts += 1;
            entry.0 += 1;
            if all.contains(&f.to_lowercase()) {
                kept += 1;
                entry.1 += 1;
            } else {
                println!("  missing fact: {f:?}");
            }
        }
        let (n, m) = inventions(c, &p);
        invented_numbers.extend(n.into_iter().map(|x| format!("{}: {x}", c.id)));
        invented_names.extend(m.into_iter().map(|x| format!("{}: {x}", c.id)));
        for d in &c.direction {
            if all.contains(&d.to_lowercase()) {
                spoken_direction.push(format!("{}: {d:?}", c.id));
            }
        }
        // The voicing stage may speed speech up by 12 % and overrun by 2 s at most.
        let fit = FitSettings::default();
        let n = p.manifest.scenes.len() as f64;
        let allowed =
            (c.duration as f64 + fit.tolerance_s - n * (fit.lead_in_s + fit.tail_s)) * (1.0 + fit.max_rate_change);
        let said: f64 = p.manifest.scenes.iter().map(|s| speech::seconds(&s.narration)).sum();
        if said > allowed {
            over_time.push(format!("{}: ~{said:.1} s of speech, {allowed:.1} s allowed", c.id));
        }
        for s in &p.manifest.scenes {
            let words = s.caption.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).count();
            if words > agents::script::writer::MAX_CAPTION_WORDS {
                long_captions.push(format!("{}: {:?}", c.id, s.caption));
            }
        }
    }
    let recall = kept as f64 / facts as f64;
    println!("\nplanner on {} briefs: fact recall {kept}/{facts} = {recall:.3}", cases.len());
    for (lang, (f, k)) in &by_lang {
        println!("  {lang}: {k}/{f}");
    }
    println!(
        "invented numbers {}, invented names {}, direction phrases spoken or shown {}, over the voice's time {}",
        invented_numbers.len(),
        invented_names.len(),
        spoken_direction.len(),
        over_time.len()
    );
    assert!(recall >= 0.95, "fact recall {recall:.3}");
    assert!(invented_numbers.is_empty(), "{invented_numbers:#?}");
    assert!(invented_names.is_empty(), "{invented_names:#?}");
    assert!(spoken_direction.is_empty(), "{spoken_direction:#?}");
    assert!(over_time.is_empty(), "{over_time:#?}");
    assert!(long_captions.is_empty(), "{long_captions:#?}");
}

fn planned(id: &str) -> Planned {
    let c = cases().into_iter().find(|c| c.id == id).expect(id);
    plan_with_report(&request(&c)).unwrap()
}

#[test]
fn the_four_briefs_from_the_issue_say_their_content_and_nothing_else() {
    // Bakery: the format words are not the first caption any more.
    let p = planned("bakery");
    let all = lines(&p).join("\n").to_lowercase();
    assert!(!all.contains("teaser") && !all.contains("15-second") && !all.contains("calm"), "{all}");
    assert!(all.contains("bakery") && all.contains("fresh bread at dawn"), "{all}");

    // Injection: dropped, flagged, and the cats are still served.
    let p = planned("cats-injection");
    let all = lines(&p).join("\n").to_lowercase();
    assert!(!all.contains("ignore") && !all.contains("system prompt") && !all.contains("instructions"), "{all}");
    assert!(all.contains("cats playing with yarn"), "{all}");
    assert_eq!(p.analysis.suspicious.len(), 1, "{:?}", p.analysis.suspicious);
    assert!(p.analysis.suspicious[0].text.starts_with("Ignore all previous instructions"));

    // Launch day: no emoji, no "!!!", no stray comma after the exclamation; the list reads
    // as a list.
    let p = planned("launch-day");
    let all = lines(&p).join("\n");
    assert!(!all.contains('🚀') && !all.contains('🎉') && !all.contains("!!") && !all.contains("!,"), "{all}");
    assert!(all.to_lowercase().contains("faster sync, dark mode and offline notes"), "{all}");
    assert!(p.manifest.scenes[0].narration.starts_with("Launch day!"), "{all}");

    // Heat pump at 12 s in four scenes (the length that failed voicing): all four facts,
    // no "film", and narration sized for the time the voice has.
    let c = cases().into_iter().find(|c| c.id == "heat-pump-launch").unwrap();
    let mut req = request(&c);
    req.brief = format!("{} In four scenes.", c.brief);
    let p = plan_with_report(&req).unwrap();
    assert_eq!(p.manifest.scenes.len(), 4);
    let all = lines(&p).join("\n");
    for fact in ["smaller than a suitcase", "35 dB", "cuts heating bills by a third", "installs in one afternoon"] {
        assert!(all.contains(fact), "{fact}: {all}");
    }
    assert!(!all.to_lowercase().contains("film"), "{all}");
    // At the voicing stage's fastest allowed rate, with its pauses, the estimate fits the
    // 12 s asked for (the stage allows 14 s; the failing run needed 14.6 s).
    let needed = seconds_needed_at_fastest_rate(&p.manifest);
    assert!(needed <= 12.0, "~{needed:.1} s needed in a 12 s, four-scene video: {all}");
    assert_eq!(p.script.fact_recall, 1.0, "{:#?}", p.script);
    assert!(p.script.invented.is_empty() && p.script.direction_spoken.is_empty(), "{:#?}", p.script);
}

/// Seconds the manifest's narration needs at the voicing stage's fastest allowed rate, with
/// its pauses (the estimate the planner sizes lines by).
fn seconds_needed_at_fastest_rate(manifest: &agents::domain::ProductionManifest) -> f64 {
    let fit = FitSettings::default();
    manifest
        .scenes
        .iter()
        .map(|s| fit.lead_in_s + fit.tail_s + speech::seconds(&s.narration) / (1.0 + fit.max_rate_change))
        .sum()
}

#[test]
fn the_explainer_that_failed_voicing_at_twelve_seconds_now_fits() {
    // The models end-to-end test's brief, at its 12 s and four scenes: the planner's lines
    // (which also replace the model's lines that are too long) fit the voice's time.
    let brief = "Explain in four scenes how a heat pump moves heat from cold outdoor air into a warm house: \
                 the outdoor unit, the refrigerant loop, the compressor, and the indoor radiators. Friendly, clear, \
                 educational tone.";
    let c = Case {
        id: "ci".into(),
        lang: "en".into(),
        kind: "explainer".into(),
        duration: 12,
        brief: brief.into(),
        facts: vec![],
        direction: vec![],
    };
    let p = plan_with_report(&request(&c)).unwrap();
    assert_eq!(p.manifest.scenes.len(), 4);
    let needed = seconds_needed_at_fastest_rate(&p.manifest);
    assert!(needed <= 12.0, "~{needed:.1} s needed: {:#?}", p.manifest.scenes);
    assert_eq!(p.script.fact_recall, 1.0, "{:#?}", p.script);
}

/// Speaks every planner script of the labelled set with `voices` and returns, per brief,
/// (id, estimated speech s, measured speech s at the rate used, rate), failing on any brief
/// whose narration the voicing stage could not fit.
fn voice_all(voices: agents::voice::VoiceSettings, langs: &[&str]) -> Vec<(String, f64, f64, f64)> {
    use agents::voice::narrate::{NarrationRequest, NarrationStatus, SceneText, narrate};
    let mut out = Vec::new();
    for c in cases().iter().filter(|c| langs.contains(&c.lang.as_str())) {
        let p = plan_with_report(&request(c)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let req = NarrationRequest {
            scenes: p
                .manifest
                .scenes
                .iter()
                .map(|s| SceneText {
                    text: s.spoken_text().to_owned(),
                    planned_s: s.duration_s,
                    caption: String::new(),
                })
                .collect(),
            languages: vec![c.lang.clone()],
            requested_s: c.duration as f64,
            choice: agents::voice::VoiceChoice::Auto,
            disabled: None,
            job_dir: dir.path().to_path_buf(),
            fit: FitSettings::default(),
            voices: voices.clone(),
            translated: Default::default(),
            untranslated: Default::default(),
        };
        let n = narrate(&req, &agents::AgentContext::with_seed(7)).unwrap_or_else(|e| panic!("{}: {e}", c.id));
        assert_eq!(n.status, NarrationStatus::Narrated, "{}: {n:?}", c.id);
        assert!(n.shortened.is_empty(), "{}: sentences dropped to fit: {:?}", c.id, n.shortened);
        let measured: f64 = n.tracks[0].scenes.iter().map(|s| s.speech_duration_s).sum();
        let estimated: f64 = p.manifest.scenes.iter().map(|s| speech::seconds(s.spoken_text())).sum();
        println!(
            "{:<28} {:>5.1} s estimated {:>5.1} s spoken at {:.2}× → {:.1} s video (asked {} s)",
            c.id, estimated, measured, n.rate, n.total_duration_s, c.duration
        );
        out.push((c.id.clone(), estimated, measured, n.rate));
    }
    out
}

/// espeak-ng (a system package) speaks the planner's French, Spanish, German and Japanese
/// scripts: every one fits its video without dropping a sentence.
#[test]
fn espeak_fits_every_planner_script_in_its_video() {
    let voices = agents::voice::VoiceSettings {
        piper_voices: Default::default(),
        onnx_runtime: std::path::PathBuf::new(),
        threads: 1,
    };
    let r = voice_all(voices, &["fr", "es", "de", "ja"]);
    assert!(r.len() >= 15);
}

/// The installed Piper voice speaks every English planner script of the labelled set: each
/// fits its video (the voicing failure this replaced needed 14.6 s for 12 s + 2 s).
#[test]
#[ignore = "needs models"]
fn piper_fits_every_english_planner_script_in_its_video() {
    let models = agents::models::test_models_dir();
    let voices = agents::voice::VoiceSettings {
        piper_voices: std::collections::BTreeMap::from([(
            "en".to_owned(),
            models.join("piper-en_US-joe-medium/en_US-joe-medium.onnx"),
        )]),
        onnx_runtime: models.join("onnxruntime/libonnxruntime.so.1.32.0"),
        threads: 1,
    };
    let r = voice_all(voices, &["en"]);
    let (est, meas): (f64, f64) = r.iter().fold((0.0, 0.0), |a, x| (a.0 + x.1, a.1 + x.2 * x.3));
    println!("Piper speaks the English scripts in {meas:.1} s at rate 1.0 against {est:.1} s estimated");
}

/// The built-in model's lines through the same checks, on the four briefs of the issue and
/// two more: what it kept, what was trimmed or replaced by the planner's line, and the
/// figures of the final script. Prints them; asserts what the checks guarantee (no invented
/// number or name, no direction said, recall as good as the planner's), not that the 135M
/// model writes usable lines.
#[test]
#[ignore = "needs models"]
fn the_built_in_models_lines_pass_the_same_checks_or_are_replaced() {
    use agents::director::{CreativeDirector, DirectorSettings};
    use agents::models::{self, ModelSettings, Registry};
    let dir = models::test_models_dir();
    for m in [models::SMOLLM2_ID, models::MINILM_ID] {
        models::check_installed(&dir, m).unwrap_or_else(|e| panic!("{e}"));
    }
    let director = CreativeDirector {
        registry: Registry::shared(&ModelSettings { dir, threads: 1 }),
        settings: DirectorSettings { candidates: 2, temperature: 0.7, repair_rounds: 1 },
    };
    let ids = ["bakery", "cats-injection", "launch-day", "heat-pump-launch", "sample-warehouse", "en-marathon"];
    let (mut kept, mut trimmed, mut replaced, mut refused) = (0, 0, 0, 0);
    for c in cases().iter().filter(|c| ids.contains(&c.id.as_str())) {
        let d = match director.direct(&request(c), &agents::AgentContext::with_seed(42)) {
            Ok(d) => d,
            Err(e) => {
                refused += 1;
                println!("── {}: no storyboard ({e}); the planner would write it", c.id);
                continue;
            }
        };
        println!("── {} (director)", c.id);
        for (s, v) in d.manifest.scenes.iter().zip(&d.script.scenes) {
            println!("  [{}] {}  — {:?} {:?}", s.caption, s.narration, v.action, v.reasons);
            match v.action {
                agents::script::LineAction::Kept => kept += 1,
                agents::script::LineAction::Trimmed => trimmed += 1,
                agents::script::LineAction::Replaced => replaced += 1,
                agents::script::LineAction::Flagged => {}
            }
        }
        println!(
            "  recall {:.3}, invented {:?}, direction {:?}",
            d.script.fact_recall, d.script.invented, d.script.direction_spoken
        );
        assert!(d.script.invented.is_empty(), "{}: {:#?}", c.id, d.script);
        assert!(d.script.direction_spoken.is_empty(), "{}: {:#?}", c.id, d.script);
        let planner = plan_with_report(&request(c)).unwrap();
        assert!(d.script.fact_recall >= planner.script.fact_recall.min(0.95), "{}: {:#?}", c.id, d.script);
    }
    println!("model lines: {kept} kept, {trimmed} trimmed, {replaced} replaced; {refused} briefs refused");
}
