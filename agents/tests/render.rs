//! End-to-end tests of the RenderExecutor: real files, checked with ffprobe/ffmpeg.

use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};

use agents::domain::{
    AudioPlan, Camera, CaptionPosition, Cue, Gradient, Motion, RenderPlan, Rgb, Scale, ScenePlan, Shape, ShapeKind,
    SubtitleTrack, Typography, VideoSettings,
};
use agents::render::{PreviewSettings, RenderExecutor, RenderOutput, RenderRequest, render};
use agents::{Agent, AgentContext, AgentError, CancelToken, Progress};
use serde_json::Value;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

fn typography(position: CaptionPosition) -> Typography {
    Typography {
        size: 0.08,
        color: Rgb(255, 255, 255),
        box_color: Rgb(0, 0, 0),
        box_alpha: 0.55,
        position,
        safe_margin: 0.06,
        max_lines: 2,
    }
}

fn scene(i: usize, start: f64, dur: f64, caption: &str, camera: Camera) -> ScenePlan {
    let palette =
        [(Rgb(20, 30, 80), Rgb(90, 20, 60)), (Rgb(10, 60, 50), Rgb(200, 160, 40)), (Rgb(60, 10, 10), Rgb(20, 20, 90))];
    let (from, to) = palette[i % 3];
    ScenePlan {
        start_s: start,
        duration_s: dur,
        caption: caption.into(),
        narration: String::new(),
        background: Gradient { from, to, angle_deg: 30.0 * i as f32 },
        shapes: vec![
            Shape { kind: ShapeKind::Circle, color: Rgb(250, 200, 80), alpha: 0.8, x: 0.3, y: 0.4, size: 0.22 },
            Shape { kind: ShapeKind::Rect, color: Rgb(80, 200, 250), alpha: 0.6, x: 0.7, y: 0.35, size: 0.18 },
            Shape { kind: ShapeKind::Ring, color: Rgb(240, 240, 240), alpha: 0.7, x: 0.55, y: 0.6, size: 0.15 },
        ],
        motion: Motion { camera, intensity: 0.8 },
        typography: typography(if i == 0 { CaptionPosition::Center } else { CaptionPosition::Bottom }),
        words: Vec::new(),
        illustrations: Vec::new(),
    }
}

/// 3 scenes, 6 s, 320x180 @ 12 fps, ultrafast, English and French subtitles.
fn plan_with(captions: [&str; 3], width: u32, height: u32) -> RenderPlan {
    let cameras = [Camera::Zoom, Camera::Pan, Camera::Orbital];
    let scenes: Vec<ScenePlan> = (0..3).map(|i| scene(i, 2.0 * i as f64, 2.0, captions[i], cameras[i])).collect();
    let cues = |prefix: &str| {
        captions
            .iter()
            .enumerate()
            .map(|(i, c)| Cue { start_s: 2.0 * i as f64, end_s: 2.0 * (i + 1) as f64, text: format!("{prefix}{c}") })
            .collect()
    };
    RenderPlan {
        video: VideoSettings {
            width,
            height,
            fps: 12,
            x264_preset: agents::domain::X264Preset::Ultrafast,
            crf: 28,
            audio_bitrate: 96_000,
        },
        audio: AudioPlan {
            sample_rate: 48_000,
            tempo_bpm: 110.0,
            root_hz: 220.0,
            scale: Scale::Major,
            energy: 0.7,
            gain: 0.8,
        },
        scenes,
        transition_s: 0.5,
        subtitles: vec![
            SubtitleTrack { lang: "en".into(), cues: cues("") },
            SubtitleTrack { lang: "fr".into(), cues: cues("FR: ") },
        ],
        seed: 7,
        narration: Vec::new(),
        mix: Default::default(),
    }
}

fn small_plan() -> RenderPlan {
    plan_with(["A calm morning", "Coffee, then work", "See you tomorrow"], 320, 180)
}

fn request(dir: &Path) -> RenderRequest {
    RenderRequest {
        out_dir: dir.to_path_buf(),
        font_path: PathBuf::from(FONT),
        assets_dir: None,
        preview: PreviewSettings { max_seconds: 3.0, short_side: 90 },
    }
}

fn ctx() -> AgentContext {
    AgentContext::with_seed(1)
}

fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams", "-show_format"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("ffprobe prints JSON")
}

fn streams_of<'a>(probe: &'a Value, codec_type: &str) -> Vec<&'a Value> {
    probe["streams"].as_array().unwrap().iter().filter(|s| s["codec_type"] == codec_type).collect()
}

fn duration(probe: &Value) -> f64 {
    probe["format"]["duration"].as_str().unwrap().parse().unwrap()
}

/// Extracts subtitle stream `index` as SRT text.
fn extract_srt(video: &Path, index: usize, dir: &Path) -> String {
    let srt = dir.join(format!("extracted_{index}.srt"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(video)
        .args(["-map", &format!("0:s:{index}")])
        .arg(&srt)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    std::fs::read_to_string(srt).unwrap()
}

/// Mean volume in dB of the file's audio, from ffmpeg's volumedetect filter.
fn mean_volume_db(path: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-v", "info", "-nostats", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-af", "volumedetect", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let log = String::from_utf8_lossy(&out.stderr);
    let line =
        log.lines().find(|l| l.contains("mean_volume:")).unwrap_or_else(|| panic!("no volumedetect output: {log}"));
    line.split("mean_volume:").nth(1).unwrap().trim().trim_end_matches("dB").trim().parse().unwrap()
}

struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

fn read_png(path: &Path) -> Image {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    Image { width: info.width, height: info.height, rgb: buf }
}

fn row(img: &Image, y: usize) -> &[u8] {
    let w = img.width as usize * 3;
    &img.rgb[y * w..(y + 1) * w]
}

fn variance(values: impl Iterator<Item = u8>) -> f64 {
    let v: Vec<f64> = values.map(f64::from).collect();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64
}

/// Parses WebVTT cue timing lines into (start, end) milliseconds, checking the header.
fn parse_vtt(doc: &str) -> Vec<(u64, u64, String)> {
    assert!(doc.starts_with("WEBVTT"), "missing header");
    let ts = |s: &str| -> u64 {
        let (hms, ms) = s.split_once('.').expect("HH:MM:SS.mmm");
        assert_eq!(ms.len(), 3, "{s}");
        let parts: Vec<u64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts.len(), 3, "{s}");
        ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + ms.parse::<u64>().unwrap()
    };
    let lines: Vec<&str> = doc.lines().collect();
    let mut cues = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some((a, b)) = line.split_once(" --> ") {
            cues.push((ts(a), ts(b), lines[i + 1].to_owned()));
        }
    }
    cues
}

fn no_partial_files(dir: &Path) {
    for entry in walk(dir) {
        assert!(!entry.to_string_lossy().ends_with(".partial"), "left behind: {}", entry.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn render_ok(plan: &RenderPlan, dir: &Path) -> RenderOutput {
    render(plan, &request(dir), &ctx()).unwrap_or_else(|e| panic!("render failed: {e}"))
}

#[test]
fn renders_a_playable_subtitled_mp4_with_preview_keyframes_and_vtt() {
    let dir = tempfile::tempdir().unwrap();
    let plan = small_plan();
    let reported = Arc::new(AtomicU32::new(0));
    let seen = reported.clone();
    let context = AgentContext {
        seed: 1,
        cancel: CancelToken::new(),
        progress: Progress::new(move |f| {
            seen.fetch_add(1, Ordering::SeqCst);
            assert!((0.0..=1.0).contains(&f));
        }),
    };
    let out = render(&plan, &request(dir.path()), &context).unwrap();
    assert!(reported.load(Ordering::SeqCst) >= 2, "progress was reported");
    assert_eq!((out.width, out.height, out.fps, out.frames), (320, 180, 12, 72));
    assert!((out.duration_s - 6.0).abs() < 1e-9);
    assert!(out.encode_fps > 0.0);

    // The MP4: H.264 + AAC + two mov_text tracks with their languages.
    let probe = ffprobe(&out.video);
    let video = streams_of(&probe, "video");
    assert_eq!(video.len(), 1);
    assert_eq!(video[0]["codec_name"], "h264");
    assert_eq!(video[0]["pix_fmt"], "yuv420p");
    assert_eq!((video[0]["width"].as_u64(), video[0]["height"].as_u64()), (Some(320), Some(180)));
    let audio = streams_of(&probe, "audio");
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0]["codec_name"], "aac");
    assert_eq!(audio[0]["channels"].as_u64(), Some(2));
    assert_eq!(audio[0]["sample_rate"], "48000");
    let subs = streams_of(&probe, "subtitle");
    assert_eq!(subs.len(), 2);
    assert!(subs.iter().all(|s| s["codec_name"] == "mov_text"));
    assert_eq!(subs[0]["tags"]["language"], "eng");
    assert_eq!(subs[1]["tags"]["language"], "fra");
    assert!((duration(&probe) - 6.0).abs() <= 0.5, "duration {}", duration(&probe));

    // The cues come back out of the MP4 with their text and timing.
    let srt = extract_srt(&out.video, 0, dir.path());
    for text in ["A calm morning", "Coffee, then work", "See you tomorrow"] {
        assert!(srt.contains(text), "{text} missing from {srt}");
    }
    assert!(srt.contains("00:00:02,000 --> 00:00:04,000\nCoffee, then work\n"), "{srt}");
    assert!(extract_srt(&out.video, 1, dir.path()).contains("FR: Coffee, then work"));

    // Music, not silence.
    let volume = mean_volume_db(&out.video);
    assert!(volume > -40.0, "mean volume {volume} dB");

    // WebVTT side files.
    assert_eq!(out.subtitles.len(), 2);
    assert_eq!(out.subtitles[0].0, "en");
    assert!(out.subtitles[0].1.ends_with("subtitles.en.vtt"));
    let cues = parse_vtt(&std::fs::read_to_string(&out.subtitles[0].1).unwrap());
    assert_eq!(
        cues,
        vec![
            (0, 2000, "A calm morning".to_owned()),
            (2000, 4000, "Coffee, then work".to_owned()),
            (4000, 6000, "See you tomorrow".to_owned())
        ]
    );

    // Keyframes: one per scene, full size, not flat.
    assert_eq!(out.keyframes.len(), 3);
    for (i, kf) in out.keyframes.iter().enumerate() {
        assert!(kf.ends_with(format!("keyframes/scene_{:02}.png", i + 1)), "{}", kf.display());
        let img = read_png(kf);
        assert_eq!((img.width, img.height), (320, 180));
        assert!(variance(img.rgb.iter().copied()) > 10.0, "keyframe {i} is flat");
    }

    // The keyframe is the frame the video shows (same colours: no channel swap on the way).
    let decoded = dir.path().join("decoded_frame_12.png");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&out.video)
        .args(["-vf", "select=eq(n\\,12)", "-frames:v", "1", "-pix_fmt", "rgb24"])
        .arg(&decoded)
        .status()
        .unwrap();
    assert!(status.success());
    let (kf, dec) = (read_png(&out.keyframes[0]), read_png(&decoded));
    let mean_abs_diff =
        kf.rgb.iter().zip(&dec.rgb).map(|(&a, &b)| (a as f64 - b as f64).abs()).sum::<f64>() / kf.rgb.len() as f64;
    assert!(mean_abs_diff < 5.0, "keyframe and decoded frame differ by {mean_abs_diff:.1} per channel");

    // Preview: small, h264 + aac, no longer than asked.
    let preview = ffprobe(&out.preview);
    let pv = streams_of(&preview, "video");
    assert_eq!(pv[0]["codec_name"], "h264");
    assert_eq!((pv[0]["width"].as_u64(), pv[0]["height"].as_u64()), (Some(160), Some(90)));
    assert_eq!(streams_of(&preview, "audio")[0]["codec_name"], "aac");
    let pd = duration(&preview);
    assert!((2.5..=3.05).contains(&pd), "preview lasts {pd} s");

    no_partial_files(dir.path());
}

#[test]
fn captions_are_burned_into_the_keyframes() {
    let with = tempfile::tempdir().unwrap();
    let without = tempfile::tempdir().unwrap();
    let a = render_ok(&small_plan(), with.path());
    let b = render_ok(&plan_with(["", "", ""], 320, 180), without.path());
    // Scene 2's caption sits at the bottom inside the safe margin.
    let (ia, ib) = (read_png(&a.keyframes[1]), read_png(&b.keyframes[1]));
    let band = 120..170;
    let differing = band.clone().filter(|&y| row(&ia, y) != row(&ib, y)).count();
    assert!(differing > 10, "caption band differs on only {differing} rows");
    let bright = band
        .flat_map(|y| row(&ia, y).chunks(3).map(|p| p.iter().map(|&c| c as u32).sum::<u32>()).collect::<Vec<_>>())
        .filter(|&s| s > 700)
        .count();
    assert!(bright > 50, "only {bright} near-white text pixels");
    // Outside the caption (top band), the two renders are identical.
    assert!((0..40).all(|y| row(&ia, y) == row(&ib, y)));
}

#[test]
fn vertical_9_16_renders_at_the_right_size() {
    let dir = tempfile::tempdir().unwrap();
    let out = render_ok(&plan_with(["Tall one", "Stories format", "Swipe up"], 180, 320), dir.path());
    let probe = ffprobe(&out.video);
    let v = streams_of(&probe, "video");
    assert_eq!((v[0]["width"].as_u64(), v[0]["height"].as_u64()), (Some(180), Some(320)));
    let img = read_png(&out.keyframes[0]);
    assert_eq!((img.width, img.height), (180, 320));
    let p = ffprobe(&out.preview);
    let pv = streams_of(&p, "video");
    assert_eq!((pv[0]["width"].as_u64(), pv[0]["height"].as_u64()), (Some(90), Some(160)));
}

#[test]
#[ignore = "needs models (the illustration set draws the emoji; scripts/install_models.sh installs it)"]
fn cjk_emoji_and_rtl_captions_render_and_survive_in_subtitles() {
    let dir = tempfile::tempdir().unwrap();
    let captions = [
        "東京の夜景はとても美しいです。東京の夜景はとても美しいです。",
        "🎬🚀 Ready ✨ ça marche — Ελληνικά, Русский",
        "مرحبا بالعالم · שלום עולם",
    ];
    let mut req = request(dir.path());
    req.assets_dir = Some(agents::render::icons::default_assets_dir());
    let out = render(&plan_with(captions, 320, 180), &req, &ctx()).unwrap_or_else(|e| panic!("render failed: {e}"));
    let srt = extract_srt(&out.video, 0, dir.path());
    for c in captions {
        assert!(srt.contains(c), "{c} missing from {srt}");
    }
    let vtt = std::fs::read_to_string(&out.subtitles[0].1).unwrap();
    assert!(vtt.contains("東京の夜景"));
    assert_eq!(read_png(&out.keyframes[0]).width, 320);
}

#[test]
fn a_cancelled_token_stops_the_render_and_leaves_no_video() {
    let dir = tempfile::tempdir().unwrap();
    let context = ctx();
    context.cancel.cancel();
    let err = render(&small_plan(), &request(dir.path()), &context).unwrap_err();
    assert!(matches!(err, AgentError::Cancelled), "{err:?}");
    assert!(!dir.path().join("video.mp4").exists());
    no_partial_files(dir.path());

    // Cancelling mid-render (from the progress callback) also stops it.
    let token = CancelToken::new();
    let trigger = token.clone();
    let context = AgentContext {
        seed: 1,
        cancel: token,
        progress: Progress::new(move |f| {
            if f > 0.3 {
                trigger.cancel();
            }
        }),
    };
    let err = render(&small_plan(), &request(dir.path()), &context).unwrap_err();
    assert!(matches!(err, AgentError::Cancelled), "{err:?}");
    // Nothing from the cancelled render is left: no video, preview, keyframes or VTT.
    let left: Vec<PathBuf> = walk(dir.path());
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn invalid_plans_fail_permanently_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let permanent = |plan: &RenderPlan, req: &RenderRequest| match render(plan, req, &ctx()) {
        Err(AgentError::Permanent(msg)) => msg,
        other => panic!("expected a permanent error, got {other:?}"),
    };
    let mut no_scenes = small_plan();
    no_scenes.scenes.clear();
    assert!(permanent(&no_scenes, &request(dir.path())).contains("no scenes"));

    let mut odd = small_plan();
    odd.video.width = 321;
    assert!(permanent(&odd, &request(dir.path())).contains("odd"));

    // An unknown preset cannot reach the encoder: a plan naming one does not parse.
    let mut preset = serde_json::to_value(small_plan()).unwrap();
    preset["video"]["x264_preset"] = "warp9".into();
    let refused = serde_json::from_value::<RenderPlan>(preset).unwrap_err().to_string();
    assert!(refused.contains("warp9") && refused.contains("veryfast"), "{refused}");

    let mut req = request(dir.path());
    req.font_path = PathBuf::from("/nowhere/Missing-Font.ttf");
    assert!(permanent(&small_plan(), &req).contains("/nowhere/Missing-Font.ttf"));
    assert!(!dir.path().join("video.mp4").exists());
}

#[test]
fn the_agent_wrapper_reports_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let executor = RenderExecutor { request: request(dir.path()) };
    assert_eq!(RenderExecutor::NAME, "render_executor");
    let context = ctx();
    let mut fut = pin!(executor.run(small_plan(), &context));
    // The render is synchronous inside the future, so one poll completes it.
    let Poll::Ready(result) = fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
        panic!("render future was not ready after one poll");
    };
    let out = result.unwrap();
    assert_eq!(out.metadata.model_used, "compositor+libx264");
    assert!(out.value.video.exists());
    let json = serde_json::to_string(&out.value).unwrap();
    let back: RenderOutput = serde_json::from_str(&json).unwrap();
    assert_eq!(back, out.value);
}

#[test]
#[ignore = "needs models"]
fn scenes_show_their_illustrations_and_captions_in_any_script_with_emoji() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = plan_with(["焼きたてのパン 🍞", "Fresh bread — خبز طازج", "לחם טרי 🎉"], 360, 640);
    plan.scenes[0].illustrations = vec![agents::domain::Illustration { name: "bread".into(), score: 0.9, named: true }];
    plan.scenes[0].shapes.clear();
    plan.scenes[0].typography.position = CaptionPosition::Bottom;
    let mut req = request(dir.path());
    req.font_path = PathBuf::from("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf");
    req.assets_dir = Some(agents::render::icons::default_assets_dir());
    let out = render(&plan, &req, &ctx()).unwrap_or_else(|e| panic!("render failed: {e}"));

    assert_eq!(out.caption_boxes.len(), 3);
    for (i, c) in out.caption_boxes.iter().enumerate() {
        assert_eq!(c.scene, i, "every scene has a caption box");
        let b = c.rect;
        assert!(b.x + b.width <= 360 && b.y + b.height <= 640, "{b:?}");
        assert!(((b.y + b.height) as f32) <= 640.0 * 0.8 + 1.0, "clear of the bottom 20 % on 9:16: {b:?}");
    }
    let families: Vec<&str> = out.fonts.iter().map(|f| f.family.as_str()).collect();
    for family in ["Noto Sans", "Noto Sans CJK JP", "Noto Sans Arabic", "Noto Sans Hebrew"] {
        assert!(families.contains(&family), "{family} is credited: {families:?}");
    }
    assert!(out.fonts.iter().all(|f| f.license.contains("Open Font License")), "{:?}", out.fonts);

    // The bread (warm orange crust) sits above the caption in scene 1's keyframe.
    let img = read_png(&out.keyframes[0]);
    let caption_top = out.caption_boxes[0].rect.y as usize;
    let warm = (0..caption_top)
        .flat_map(|y| row(&img, y).chunks(3).map(|p| (p[0], p[1], p[2])).collect::<Vec<_>>())
        .filter(|&(r, g, b)| r > 200 && g > 120 && g < 200 && b < 90)
        .count();
    assert!(warm > 2000, "the bread illustration is drawn: {warm} crust-coloured pixels");
}

#[test]
fn a_caption_no_font_can_draw_fails_the_render_naming_the_character() {
    let dir = tempfile::tempdir().unwrap();
    // U+0378 is unassigned: no font has a glyph for it.
    let plan = plan_with(["A calm morning", "Coffee \u{378} then work", "See you"], 320, 180);
    let err = render(&plan, &request(dir.path()), &ctx()).unwrap_err();
    assert!(matches!(err, AgentError::Permanent(ref m) if m.contains("U+0378") && m.contains("scene 2")), "{err:?}");
    assert!(!dir.path().join("video.mp4").exists());
}
