//! The QA corpus: good renders of several briefs and languages, and broken variants with one
//! defect each (a Japanese caption set in a Latin-only font, a muted soundtrack, audio pushed
//! to about −6 LUFS and clipped, a black scene, a frozen scene). The whole gate — technical
//! QA, semantic QA with its perception checks, the supervisor — must accept every good video
//! and reject every broken one; the confusion matrix is printed.
//!
//! Model-free: the planner, the visual translator and the renderer are deterministic code,
//! the defects are made with the `ffmpeg` CLI, the checks run `tesseract` and `ffmpeg`.

use std::path::Path;
use std::process::Command;

use agents::domain::{ProductionManifest, RenderPlan, VideoSettings};
use agents::planner::{PlanLimits, PlanRequest, plan};
use agents::render::{PreviewSettings, RenderOutput, RenderRequest, render};
use agents::visual::{TranslateRequest, translate};
use agents::{AgentContext, CancelToken, Progress};
use aiprod::app::qa::{QaOutcome, QaSubject, describe, qa_file};
use aiprod::config::Config;

const LATIN_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
const CJK_FONT: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc";

/// A brief planned and laid out for a 640×360 render.
struct Job {
    brief: String,
    manifest: ProductionManifest,
    plan: RenderPlan,
}

fn job(brief: &str, lang: &str) -> Job {
    let manifest = plan(&PlanRequest {
        brief: brief.into(),
        duration_s: 12,
        language: lang.into(),
        fast_track: true,
        limits: PlanLimits { max_scenes: 3, max_caption_chars: 40, min_scene_s: 3.0 },
        reuse_markers: None,
        speech: Default::default(),
    })
    .expect("the planner plans the brief");
    let video = VideoSettings {
        width: 640,
        height: 360,
        fps: 12,
        x264_preset: "ultrafast".into(),
        crf: 23,
        audio_bitrate: 128_000,
    };
    let translation = translate(
        &TranslateRequest {
            manifest: manifest.clone(),
            video,
            transition_s: 0.5,
            languages: vec![lang.into()],
            translations: Default::default(),
            unavailable: Default::default(),
        },
        7,
    )
    .expect("the visual translator lays the plan out");
    Job { brief: brief.into(), manifest, plan: translation.plan }
}

fn render_job(job: &Job, font: &str, dir: &Path) -> RenderOutput {
    let request = RenderRequest {
        out_dir: dir.to_path_buf(),
        font_path: font.into(),
        preview: PreviewSettings { max_seconds: 2.0, short_side: 180 },
        assets_dir: None,
    };
    let ctx = AgentContext { seed: 7, cancel: CancelToken::new(), progress: Progress::new(|_| {}) };
    render(&job.plan, &request, &ctx).unwrap_or_else(|e| panic!("render failed: {e}"))
}

/// Runs ffmpeg on `input` with `args` (between input and output) into `output`.
fn ffmpeg(input: &Path, args: &[&str], output: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(input)
        .args(args)
        .arg(output)
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Copies every stream, re-encoding only the audio through `filter`.
fn audio_variant(good: &Path, filter: &str, out: &Path) {
    ffmpeg(good, &["-map", "0", "-c:v", "copy", "-c:s", "copy", "-af", filter, "-c:a", "aac", "-b:a", "128k"], out);
}

/// Copies audio and subtitles, re-encoding the video through `filter_complex` (`[0:v]` in, `[v]` out).
fn video_variant(good: &Path, filter_complex: &str, out: &Path) {
    ffmpeg(
        good,
        &[
            "-filter_complex",
            filter_complex,
            "-map",
            "[v]",
            "-map",
            "0:a",
            "-map",
            "0:s?",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "copy",
            "-c:s",
            "copy",
        ],
        out,
    );
}

struct Case {
    name: &'static str,
    broken: bool,
    outcome: QaOutcome,
}

fn qa(name: &'static str, broken: bool, video: &Path, job: &Job, render: &RenderOutput, config: &Config) -> Case {
    let subject = QaSubject::from_render(&job.brief, job.manifest.clone(), job.plan.clone(), render);
    let outcome = qa_file(video, &subject, config).unwrap_or_else(|e| panic!("{name}: QA could not run: {e}"));
    eprintln!("── {name} ({})\n{}", if broken { "broken" } else { "good" }, describe(&outcome));
    Case { name, broken, outcome }
}

#[test]
fn the_gate_rejects_every_broken_video_and_accepts_every_good_one() {
    let config = Config::builtin();
    let root = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let d = root.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let mut cases = Vec::new();

    let en = job("Fresh bread at dawn. A small bakery opens its doors. Warm light fills the street.", "en");
    let en_out = render_job(&en, LATIN_FONT, &dir("en"));
    assert_eq!(en_out.caption_boxes.len(), en.plan.scenes.len(), "the renderer records every caption box");
    cases.push(qa("english bakery", false, &en_out.video, &en, &en_out, &config));

    let fr = job("Le pain frais à l'aube. Une petite boulangerie ouvre ses portes.", "fr");
    let fr_out = render_job(&fr, LATIN_FONT, &dir("fr"));
    cases.push(qa("french bakery", false, &fr_out.video, &fr, &fr_out, &config));

    let ja = job("朝の光。小さなパン屋が扉を開ける。温かい光が通りを満たす。", "ja");
    let ja_out = render_job(&ja, CJK_FONT, &dir("ja"));
    cases.push(qa("japanese bakery, CJK font", false, &ja_out.video, &ja, &ja_out, &config));

    // One defect each.
    // The renderer refuses a glyph no installed font covers, so the tofu a renderer without
    // the fallback fonts produced is painted over the good video: each caption box filled and
    // its text set in a Latin-only font by ffmpeg's drawtext, which draws missing glyphs as boxes.
    let tofu_dir = dir("ja-tofu");
    let mut chain = Vec::new();
    for b in &ja_out.caption_boxes {
        let text = tofu_dir.join(format!("caption_{}.txt", b.scene));
        std::fs::write(&text, &b.text).unwrap();
        let r = b.rect;
        chain.push(format!("drawbox=x={}:y={}:w={}:h={}:color=0x3c2a20:t=fill", r.x, r.y, r.width, r.height));
        chain.push(format!(
            "drawtext=fontfile={LATIN_FONT}:textfile={}:x={}:y={}:fontsize={}:fontcolor=white",
            text.display(),
            r.x + 8,
            r.y + r.height / 4,
            (r.height / 2).max(8)
        ));
    }
    let tofu = tofu_dir.join("tofu.mp4");
    video_variant(&ja_out.video, &format!("[0:v]{}[v]", chain.join(",")), &tofu);
    cases.push(qa("japanese captions drawn as tofu", true, &tofu, &ja, &ja_out, &config));

    let variants = dir("variants");
    let muted = variants.join("muted.mp4");
    audio_variant(&en_out.video, "volume=0", &muted);
    cases.push(qa("muted soundtrack", true, &muted, &en, &en_out, &config));

    let loud = variants.join("loud.mp4");
    audio_variant(&en_out.video, "volume=16dB,aformat=sample_fmts=s16", &loud);
    cases.push(qa("clipped audio near -6 LUFS", true, &loud, &en, &en_out, &config));

    let s = &en.plan.scenes[1];
    let (from, to) = (s.start_s + 0.3, s.start_s + s.duration_s - 0.3);
    let black = variants.join("black.mp4");
    video_variant(
        &en_out.video,
        &format!("[0:v]drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='between(t,{from:.2},{to:.2})'[v]"),
        &black,
    );
    cases.push(qa("black scene", true, &black, &en, &en_out, &config));

    let fps = en.plan.video.fps as f64;
    let (first, last) = ((from * fps).round() as u64, (to * fps).round() as u64);
    let frozen = variants.join("frozen.mp4");
    video_variant(
        &en_out.video,
        &format!("[0:v]split[a][b];[a][b]freezeframes=first={first}:last={last}:replace={first}[v]"),
        &frozen,
    );
    cases.push(qa("frozen scene", true, &frozen, &en, &en_out, &config));

    // The confusion matrix.
    let count = |broken: bool, approved: bool| {
        cases.iter().filter(|c| c.broken == broken && c.outcome.approved() == approved).count()
    };
    eprintln!("QA corpus confusion matrix ({} videos):", cases.len());
    eprintln!("                 accepted  rejected");
    eprintln!("  good videos    {:>8}  {:>8}", count(false, true), count(false, false));
    eprintln!("  broken videos  {:>8}  {:>8}", count(true, true), count(true, false));
    for c in &cases {
        eprintln!(
            "  {:<40} {:<6} semantic {:.2} technical {:.2} → {:?}",
            c.name,
            if c.broken { "broken" } else { "good" },
            c.outcome.semantic.score,
            c.outcome.technical.technical_score,
            c.outcome.verdict.decision
        );
    }
    let wrong: Vec<&str> = cases.iter().filter(|c| c.broken == c.outcome.approved()).map(|c| c.name).collect();
    assert!(wrong.is_empty(), "misjudged: {wrong:?}");

    // The tofu video is rejected naming the scenes whose captions did not read back.
    let tofu = cases.iter().find(|c| c.name.contains("tofu")).unwrap();
    let reason = format!("{:?}", tofu.outcome.verdict.decision);
    assert!(reason.contains("caption_readback (scene"), "{reason}");
}
