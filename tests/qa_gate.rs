//! The technical QA gate against real MP4 files made with the `ffmpeg` CLI: a good file passes
//! every check, and each kind of defect fails the check that exists to catch it.

use std::path::{Path, PathBuf};
use std::process::Command;

use aiprod::config::{Config, TechnicalQa};
use aiprod::qa_gate::{Expectations, TechnicalReport, inspect};
use tempfile::TempDir;

const WIDTH: u32 = 320;
const HEIGHT: u32 = 180;
const FPS: u32 = 25;
/// Three 3 s scenes joined by two 0.5 s crossfades.
const DURATION_S: f64 = 8.0;

const SRT: &str = "1\n00:00:00,000 --> 00:00:02,500\nRed scene\n\n\
2\n00:00:03,000 --> 00:00:05,000\nBlue scene\n\n\
3\n00:00:05,500 --> 00:00:08,000\nGreen scene\n";

/// How a fixture differs from the good file.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Good,
    Mpeg4,
    NoAudio,
    SilentAudio,
    NoSubtitles,
    /// Good, with the index (moov) at the front, so a truncated copy still opens.
    FastStart,
}

fn qa() -> (TechnicalQa, f64) {
    let config = Config::builtin();
    (config.technical_qa, config.quality_gates.technical)
}

fn expectations() -> Expectations {
    Expectations {
        width: WIDTH,
        height: HEIGHT,
        fps: FPS,
        duration_s: DURATION_S,
        scene_count: 3,
        subtitle_languages: vec!["en".into()],
        audio_languages: vec![],
    }
}

fn colour_input(colour: &str) -> [String; 4] {
    ["-f".into(), "lavfi".into(), "-i".into(), format!("color=c={colour}:s={WIDTH}x{HEIGHT}:r={FPS}:d=3")]
}

/// Make a fixture with the ffmpeg CLI: red, blue and green scenes crossfaded, a sine (or
/// silent) AAC track and a mov_text English subtitle track with one cue per scene.
fn make_fixture(dir: &Path, variant: Variant) -> PathBuf {
    let srt = dir.join("cues.srt");
    std::fs::write(&srt, SRT).expect("write srt");
    let out = dir.join("video.mp4");
    let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error", "-y"].map(String::from).to_vec();
    for colour in ["red", "blue", "green"] {
        args.extend(colour_input(colour));
    }
    let audio = if variant == Variant::SilentAudio {
        "anullsrc=r=48000:cl=stereo".to_string()
    } else {
        "sine=frequency=440:sample_rate=48000".to_string()
    };
    args.extend(["-f".into(), "lavfi".into(), "-t".into(), DURATION_S.to_string(), "-i".into(), audio]);
    args.extend(["-i".into(), srt.display().to_string()]);
    args.extend([
        "-filter_complex".into(),
        "[0:v][1:v]xfade=transition=fade:duration=0.5:offset=2.5[ab];\
         [ab][2:v]xfade=transition=fade:duration=0.5:offset=5[v]"
            .into(),
        "-map".into(),
        "[v]".into(),
    ]);
    if variant != Variant::NoAudio {
        args.extend(["-map", "3:a", "-c:a", "aac", "-b:a", "96k"].map(String::from));
    }
    if variant != Variant::NoSubtitles {
        args.extend(["-map", "4:s", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng"].map(String::from));
    }
    if variant == Variant::Mpeg4 {
        args.extend(["-c:v", "mpeg4", "-q:v", "4"].map(String::from));
    } else {
        args.extend(["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"].map(String::from));
    }
    if variant == Variant::FastStart {
        args.extend(["-movflags", "+faststart"].map(String::from));
    }
    args.push(out.display().to_string());
    let status = Command::new("ffmpeg").args(&args).status().expect("run the ffmpeg CLI");
    assert!(status.success(), "ffmpeg failed for fixture: {args:?}");
    out
}

fn inspect_default(path: &Path, expect: &Expectations) -> TechnicalReport {
    let (cfg, gate) = qa();
    inspect(path, expect, &cfg, gate)
}

fn passed(report: &TechnicalReport, name: &str) -> bool {
    report.check(name).unwrap_or_else(|| panic!("report has no '{name}' check: {report:#?}")).passed
}

fn fixture_report(variant: Variant) -> TechnicalReport {
    let dir = TempDir::new().expect("tempdir");
    let path = make_fixture(dir.path(), variant);
    inspect_default(&path, &expectations())
}

/// Copy the first `fraction` of a file's bytes to a new file next to it.
fn truncated_copy(path: &Path, fraction: f64) -> PathBuf {
    let bytes = std::fs::read(path).expect("read fixture");
    let cut = path.with_file_name("truncated.mp4");
    std::fs::write(&cut, &bytes[..(bytes.len() as f64 * fraction) as usize]).expect("write truncated copy");
    cut
}

#[test]
fn a_good_file_passes_every_check() {
    let report = fixture_report(Variant::Good);
    let failed: Vec<_> = report.failed().collect();
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
    assert_eq!(report.technical_score, 1.0);
    assert!(report.passed);
    assert_eq!(report.checks.len(), 10);
    assert_eq!(report.frames_decoded, 200);
    let scenes = &report.check("scene_count").expect("scene_count").measured;
    assert_eq!(scenes["from_video"], 3, "{scenes}");
    assert_eq!(scenes["from_subtitles"], 3, "{scenes}");
    let duration = &report.check("duration").expect("duration").measured;
    assert!((duration["decoded_s"].as_f64().expect("decoded_s") - DURATION_S).abs() < 0.05, "{duration}");
}

#[test]
fn the_report_round_trips_through_json() {
    let report = fixture_report(Variant::Good);
    let json = serde_json::to_string(&report).expect("serialize");
    let back: TechnicalReport = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back.checks, report.checks);
    assert_eq!(back.file, report.file);
}

#[test]
fn a_truncated_file_fails() {
    let dir = TempDir::new().expect("tempdir");
    let good = make_fixture(dir.path(), Variant::Good);
    let report = inspect_default(&truncated_copy(&good, 0.6), &expectations());
    assert!(!report.passed);
    assert!(!passed(&report, "opens") || !passed(&report, "decodes") || !passed(&report, "duration"), "{report:#?}");
}

#[test]
fn a_truncated_faststart_file_opens_but_fails_decoding_and_duration() {
    let dir = TempDir::new().expect("tempdir");
    let good = make_fixture(dir.path(), Variant::FastStart);
    assert!(inspect_default(&good, &expectations()).passed, "the untruncated faststart file passes");
    let report = inspect_default(&truncated_copy(&good, 0.6), &expectations());
    assert!(passed(&report, "opens"), "{report:#?}");
    assert!(!passed(&report, "decodes"), "{report:#?}");
    assert!(!passed(&report, "duration"), "{report:#?}");
    assert!(!report.passed);
}

#[test]
fn the_wrong_codec_fails_the_codec_check() {
    let report = fixture_report(Variant::Mpeg4);
    assert!(!passed(&report, "codec"));
    assert_eq!(report.check("codec").expect("codec").measured, "mpeg4");
    assert!(passed(&report, "decodes"), "mpeg4 still decodes: {report:#?}");
    assert!(!report.passed, "codec is critical");
}

#[test]
fn a_missing_audio_track_fails_audio_present() {
    let report = fixture_report(Variant::NoAudio);
    assert!(!passed(&report, "audio_present"));
    assert!(!passed(&report, "audio_not_silent"));
    assert!(!report.passed);
}

#[test]
fn silent_audio_fails_audio_not_silent() {
    let report = fixture_report(Variant::SilentAudio);
    assert!(passed(&report, "audio_present"));
    assert!(!passed(&report, "audio_not_silent"), "{report:#?}");
    let level = report.check("audio_not_silent").expect("check").measured["rms_dbfs"].as_f64().expect("level");
    assert!(level < -60.0, "{level}");
}

#[test]
fn audible_audio_is_measured_near_a_sines_level() {
    let report = fixture_report(Variant::Good);
    let level = report.check("audio_not_silent").expect("check").measured["rms_dbfs"].as_f64().expect("level");
    // lavfi's sine source plays at 1/8 of full scale: RMS ≈ 20·log10(0.125/√2) ≈ -21 dBFS.
    assert!((-25.0..-17.0).contains(&level), "{level}");
}

#[test]
fn a_resolution_mismatch_fails_the_resolution_check() {
    let dir = TempDir::new().expect("tempdir");
    let path = make_fixture(dir.path(), Variant::Good);
    let expect = Expectations { width: 1280, height: 720, ..expectations() };
    let report = inspect_default(&path, &expect);
    assert!(!passed(&report, "resolution"));
    assert_eq!(report.check("resolution").expect("check").measured["width"], WIDTH);
    assert!(!report.passed);
}

#[test]
fn a_duration_mismatch_fails_duration_and_decodes() {
    let dir = TempDir::new().expect("tempdir");
    let path = make_fixture(dir.path(), Variant::Good);
    let expect = Expectations { duration_s: 30.0, ..expectations() };
    let report = inspect_default(&path, &expect);
    assert!(!passed(&report, "duration"));
    assert!(!passed(&report, "decodes"), "200 frames is not 750");
    assert!(!report.passed);
}

#[test]
fn a_missing_subtitle_track_fails_subtitle_tracks() {
    let report = fixture_report(Variant::NoSubtitles);
    assert!(!passed(&report, "subtitle_tracks"));
    assert!(passed(&report, "scene_count"), "the picture alone still shows 3 scenes: {report:#?}");
    assert_eq!(report.technical_score, 0.9);
    assert!(report.passed, "subtitles are not critical and 0.9 clears the 0.8 gate");
}

#[test]
fn a_subtitle_track_in_another_language_does_not_count() {
    let dir = TempDir::new().expect("tempdir");
    let path = make_fixture(dir.path(), Variant::Good);
    let expect = Expectations { subtitle_languages: vec!["en".into(), "fr".into()], ..expectations() };
    let report = inspect_default(&path, &expect);
    let check = report.check("subtitle_tracks").expect("check");
    assert!(!check.passed);
    assert!(check.detail.contains("fr"), "{}", check.detail);
    assert_eq!(check.measured[0]["language"], "eng");
    assert_eq!(check.measured[0]["lang"], "en");
}

#[test]
fn a_narrated_language_without_its_own_audio_stream_fails_audio_present() {
    let dir = TempDir::new().expect("tempdir");
    let path = make_fixture(dir.path(), Variant::Good);
    let expect = Expectations { audio_languages: vec!["es".into()], ..expectations() };
    let report = inspect_default(&path, &expect);
    let check = report.check("audio_present").expect("check");
    assert!(!check.passed, "{check:#?}");
    assert!(check.detail.contains("es"), "{}", check.detail);
    assert_eq!(check.measured["streams"], 1);
    // Without narrated languages any audio stream will do.
    assert!(passed(&inspect_default(&path, &expectations()), "audio_present"));
}

#[test]
fn a_wrong_scene_count_fails_scene_count() {
    let dir = TempDir::new().expect("tempdir");
    let path = make_fixture(dir.path(), Variant::Good);
    let report = inspect_default(&path, &Expectations { scene_count: 5, ..expectations() });
    assert!(!passed(&report, "scene_count"));
}

#[test]
fn a_nonexistent_path_fails_to_open_with_score_zero() {
    let report = inspect_default(Path::new("/nonexistent/dir/video.mp4"), &expectations());
    assert!(!passed(&report, "opens"));
    assert!(report.checks.iter().all(|c| !c.passed));
    assert_eq!(report.technical_score, 0.0);
    assert!(!report.passed);
    assert_eq!(report.frames_decoded, 0);
}

#[test]
fn random_bytes_fail_to_open_with_score_zero() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("noise.mp4");
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(&path, bytes).expect("write noise");
    let report = inspect_default(&path, &expectations());
    assert!(!passed(&report, "opens"), "{report:#?}");
    assert_eq!(report.technical_score, 0.0);
    assert!(!report.passed);
}

#[test]
fn audio_checks_are_skipped_when_audio_is_not_required() {
    let dir = TempDir::new().expect("tempdir");
    let path = make_fixture(dir.path(), Variant::NoAudio);
    let (mut cfg, gate) = qa();
    cfg.audio_required = false;
    let report = inspect(&path, &expectations(), &cfg, gate);
    assert!(report.check("audio_present").is_none());
    assert!(report.check("audio_not_silent").is_none());
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.technical_score, 1.0);
}

#[test]
fn a_file_missing_only_its_last_packets_fails_decodes() {
    let dir = TempDir::new().expect("tempdir");
    let good = make_fixture(dir.path(), Variant::FastStart);
    let report = inspect_default(&truncated_copy(&good, 0.97), &expectations());
    let decodes = report.check("decodes").expect("decodes");
    assert!(!decodes.passed, "{decodes:#?}");
    assert!(decodes.detail.contains("truncated"), "{}", decodes.detail);
    assert!(!report.passed);
}

/// Two-colour palettes for gradient scenes, one per scene.
const PALETTES: [(&str, &str); 5] = [
    ("0x1d3557", "0xe63946"),
    ("0xf1faee", "0x457b9d"),
    ("0x2a9d8f", "0xe9c46a"),
    ("0x264653", "0xf4a261"),
    ("0x6d597a", "0xb56576"),
];

/// Scenes of rotating two-colour gradients (motion inside every scene, like our renderer's
/// camera moves), `scene_s` seconds each, crossfaded over 0.5 s, with a sine track. Returns
/// the file and its duration.
fn make_gradient_fixture(dir: &Path, size: &str, scenes: usize, scene_s: f64, speed: f64) -> (PathBuf, f64) {
    let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error", "-y"].map(String::from).to_vec();
    for (k, (c0, c1)) in PALETTES[..scenes].iter().enumerate() {
        // A fixed seed: the filter otherwise picks its gradient lines at random on every run
        // (with random lines the detector misses the low-contrast 3→4 crossfade about 1 run in 10).
        let seed = 1 + k;
        let source = format!("gradients=s={size}:r={FPS}:d={scene_s}:c0={c0}:c1={c1}:speed={speed}:seed={seed}");
        args.extend(["-f".into(), "lavfi".into(), "-i".into(), source]);
    }
    let duration = scene_s * scenes as f64 - 0.5 * (scenes - 1) as f64;
    let sine = "sine=frequency=220:sample_rate=48000".to_string();
    args.extend(["-f".into(), "lavfi".into(), "-t".into(), duration.to_string(), "-i".into(), sine]);
    let mut graph = Vec::new();
    let mut last = "0:v".to_string();
    for i in 1..scenes {
        let offset = (scene_s - 0.5) * i as f64;
        graph.push(format!("[{last}][{i}:v]xfade=transition=fade:duration=0.5:offset={offset:.2}[x{i}]"));
        last = format!("x{i}");
    }
    args.extend(["-filter_complex".into(), graph.join(";"), "-map".into(), format!("[{last}]")]);
    args.extend(["-map".into(), format!("{scenes}:a"), "-c:a".into(), "aac".into()]);
    args.extend(["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"].map(String::from));
    let out = dir.join("gradients.mp4");
    args.push(out.display().to_string());
    let status = Command::new("ffmpeg").args(&args).status().expect("run the ffmpeg CLI");
    assert!(status.success(), "ffmpeg failed: {args:?}");
    (out, duration)
}

#[test]
fn scene_changes_are_found_through_fast_motion() {
    let dir = TempDir::new().expect("tempdir");
    // speed 0.1 turns each gradient a full circle every 2.5 s: far more motion than a render.
    let (path, duration_s) = make_gradient_fixture(dir.path(), "320x180", 4, 3.0, 0.1);
    let expect = Expectations { duration_s, scene_count: 4, subtitle_languages: vec![], ..expectations() };
    let report = inspect_default(&path, &expect);
    let scenes = report.check("scene_count").expect("scene_count");
    assert!(scenes.passed, "{scenes:#?}");
    assert_eq!(scenes.measured["from_video"], 4);
    assert!(report.passed, "{report:#?}");
}

#[test]
#[ignore = "encodes a 30 s 720p fixture (slow); run with --ignored --nocapture to see the gate's time"]
fn a_30_second_720p_file_passes_every_check() {
    let dir = TempDir::new().expect("tempdir");
    let (path, duration_s) = make_gradient_fixture(dir.path(), "1280x720", 5, 6.4, 0.02);
    let expect = Expectations {
        width: 1280,
        height: 720,
        fps: FPS,
        duration_s,
        scene_count: 5,
        subtitle_languages: vec![],
        audio_languages: vec![],
    };
    let report = inspect_default(&path, &expect);
    println!("inspected {duration_s} s of 1280x720 in {} ms", report.probe_ms);
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.frames_decoded, 750);
}

/// The gate on what our own renderer produces: a planned, rendered video passes every check;
/// the same file cut short fails.
#[test]
fn our_rendered_video_passes_and_its_truncation_fails() {
    use agents::domain::{AspectRatio, VideoSettings};
    use agents::planner::{PlanLimits, PlanRequest, plan};
    use agents::render::{PreviewSettings, RenderRequest, render};
    use agents::visual::{TranslateRequest, translate};

    let config = Config::builtin();
    let manifest = plan(&PlanRequest {
        brief: "Teaser for a science podcast about octopus intelligence: eight arms, three hearts, problem solving."
            .into(),
        duration_s: 9,
        language: "en".into(),
        fast_track: true,
        limits: PlanLimits { max_scenes: 3, max_caption_chars: 45, min_scene_s: 3.0 },
        reuse_markers: None,
        speech: Default::default(),
    })
    .unwrap();
    let (width, height) = AspectRatio::Square1x1.frame_size(240);
    let video = VideoSettings {
        width,
        height,
        fps: 15,
        x264_preset: agents::domain::X264Preset::Ultrafast,
        crf: 28,
        audio_bitrate: 64_000,
    };
    let request = TranslateRequest {
        manifest,
        video,
        transition_s: 0.5,
        languages: vec!["en".into()],
        translations: Default::default(),
        unavailable: Default::default(),
    };
    let plan = translate(&request, 42).unwrap().plan;
    let dir = TempDir::new().unwrap();
    let request = RenderRequest {
        out_dir: dir.path().to_path_buf(),
        font_path: config.render.font_path.clone(),
        assets_dir: Some(config.render.assets_dir.clone()),
        preview: PreviewSettings { max_seconds: 3.0, short_side: 120 },
    };
    let out = render(&plan, &request, &agents::AgentContext::with_seed(42)).unwrap();

    let expect = Expectations::from_plan(&plan);
    let report = inspect_default(&out.video, &expect);
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.technical_score, 1.0, "{report:#?}");

    let cut = truncated_copy(&out.video, 0.7);
    let broken = inspect_default(&cut, &expect);
    assert!(!broken.passed, "{broken:#?}");
}
