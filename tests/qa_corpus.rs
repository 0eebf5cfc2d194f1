//! The QA corpus: good renders of several briefs and languages, and broken variants with one
//! defect each (a Japanese caption set in a Latin-only font, a muted soundtrack, audio pushed
//! to about −6 LUFS and clipped, a black scene, a frozen scene; and on a narrated render: the
//! narration missing, cut off mid-word, replaced by speech in another language, and music
//! mixed so loud that it drowns the voice). The whole gate — technical
//! QA, semantic QA with its perception checks, the supervisor — must accept every good video
//! and reject every broken one; the confusion matrix is printed.
//!
//! Model-free: the planner, the visual translator and the renderer are deterministic code,
//! the narration is spoken by espeak-ng (a system package), the defects are made with the
//! `ffmpeg` CLI or by rendering the plan with altered clips, the checks run `tesseract` and
//! `ffmpeg`.

use std::path::Path;
use std::process::Command;

use agents::domain::{ProductionManifest, RenderPlan, VideoSettings};
use agents::planner::{PlanLimits, PlanRequest, plan};
use agents::render::{PreviewSettings, RenderOutput, RenderRequest, render};
use agents::visual::{TranslateRequest, translate};
use agents::voice::cues::CueRules;
use agents::voice::espeak::EspeakVoice;
use agents::voice::fit::FitSettings;
use agents::voice::narrate::{NarrationRequest, SceneText, narrate};
use agents::voice::wav::{self, Pcm};
use agents::voice::{Voice, VoiceChoice, VoiceEngine, VoiceSettings};
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
        x264_preset: agents::domain::X264Preset::Ultrafast,
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

/// Speaks `job`'s narration with espeak-ng into `dir/narration/` and applies it to the plan
/// (scene timings, words, clips, subtitles), as the voicing stage does.
fn narrated(mut job: Job, dir: &Path) -> Job {
    let request = NarrationRequest {
        scenes: job
            .plan
            .scenes
            .iter()
            .map(|s| SceneText { text: s.narration.clone(), planned_s: s.duration_s, caption: s.caption.clone() })
            .collect(),
        languages: vec![job.manifest.language.clone()],
        requested_s: job.plan.duration_s(),
        choice: VoiceChoice::EspeakNg,
        disabled: None,
        job_dir: dir.to_path_buf(),
        fit: FitSettings::default(),
        voices: VoiceSettings { piper_voices: Default::default(), onnx_runtime: "none".into(), threads: 1 },
        translated: Default::default(),
        untranslated: Default::default(),
    };
    let n = narrate(&request, &AgentContext::with_seed(7)).expect("espeak-ng narrates the plan");
    assert!(n.spoken().is_some(), "{n:?}");
    n.apply(&mut job.plan, dir, &CueRules::default());
    assert!(!job.plan.narration.is_empty());
    job
}

fn qa(name: &'static str, broken: bool, video: &Path, job: &Job, render: &RenderOutput, config: &Config) -> Case {
    let mut subject = QaSubject::from_render(&job.brief, job.manifest.clone(), job.plan.clone(), render);
    if !job.plan.narration.is_empty() {
        // The recogniser cannot follow espeak-ng; the presence checks judge the narration.
        subject.narration_engine = Some(VoiceEngine::EspeakNg);
    }
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

    // A narrated render, and what can go wrong with its narration.
    let voiced_dir = dir("en-narrated");
    let voiced = narrated(
        job("Fresh bread at dawn. A small bakery opens its doors. Warm light fills the street.", "en"),
        &voiced_dir,
    );
    let voiced_out = render_job(&voiced, LATIN_FONT, &voiced_dir);
    cases.push(qa("english bakery, narrated", false, &voiced_out.video, &voiced, &voiced_out, &config));

    // Rendered from the same plan with its narration altered; judged against the real plan.
    let render_altered = |name: &str, alter: &dyn Fn(&mut RenderPlan)| -> std::path::PathBuf {
        let mut plan = voiced.plan.clone();
        alter(&mut plan);
        let altered = Job { brief: voiced.brief.clone(), manifest: voiced.manifest.clone(), plan };
        render_job(&altered, LATIN_FONT, &dir(name)).video
    };
    let silent = render_altered("narration-missing", &|p| p.narration.clear());
    cases.push(qa("narration missing (music only)", true, &silent, &voiced, &voiced_out, &config));

    // Scene 2's clip stops in the middle of its second-to-last word.
    let clip = voiced.plan.narration[1].clone();
    let words = &voiced.plan.scenes[1].words;
    let w = &words[words.len() - 2];
    let pcm = wav::read(&clip.path).unwrap();
    let keep = (((w.start_s + w.end_s) / 2.0 - clip.start_s) * pcm.sample_rate as f64) as usize;
    let cut_clip = dir("narration-cut").join("scene_02.cut.wav");
    wav::write(&cut_clip, &Pcm { samples: pcm.samples[..keep].to_vec(), sample_rate: pcm.sample_rate }).unwrap();
    let cut = render_altered("narration-cut-render", &|p| p.narration[1].path = cut_clip.clone());
    cases.push(qa("narration cut mid-word", true, &cut, &voiced, &voiced_out, &config));

    // Every clip replaced by French speech of the same length or shorter.
    let french = EspeakVoice::for_language("fr").unwrap();
    let other_dir = dir("narration-french");
    let mut swapped = Vec::new();
    for (i, c) in voiced.plan.narration.iter().enumerate() {
        let len = wav::read(&c.path).unwrap().samples.len();
        let u = french.speak("Le pain frais du matin, chaud et doré, pour toute la rue.", 1.0).unwrap();
        let path = other_dir.join(format!("scene_{:02}.fr.wav", i + 1));
        wav::write(&path, &Pcm { samples: u.samples[..u.samples.len().min(len)].to_vec(), sample_rate: u.sample_rate })
            .unwrap();
        swapped.push(path);
    }
    let wrong = render_altered("narration-wrong-language", &|p| {
        for (c, path) in p.narration.iter_mut().zip(&swapped) {
            c.path = path.clone();
        }
    });
    cases.push(qa("narration in another language", true, &wrong, &voiced, &voiced_out, &config));

    // The narrated soundtrack turned down and the music-only render mixed over it, about as
    // loud in all: the voice is there, under the music.
    let drowned = variants.join("drowned.mp4");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(&voiced_out.video)
        .arg("-i")
        .arg(&silent)
        .args([
            "-filter_complex",
            "[0:a]volume=-6dB[v];[1:a]volume=-3dB[m];[v][m]amix=inputs=2:normalize=0[a]",
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-map",
            "0:s?",
            "-c:v",
            "copy",
            "-c:s",
            "copy",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ar",
            "48000",
        ])
        .arg(&drowned)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    cases.push(qa("music drowns the voice", true, &drowned, &voiced, &voiced_out, &config));

    // The subtitle track shifted 0.8 s late against the speech (an edit that moved it).
    let shifted = variants.join("subtitles-late.mp4");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(&voiced_out.video)
        .args(["-itsoffset", "0.8", "-i"])
        .arg(&voiced_out.video)
        .args(["-map", "0:v", "-map", "0:a", "-map", "1:s", "-c", "copy"])
        .arg(&shifted)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    cases.push(qa("subtitles late against the speech", true, &shifted, &voiced, &voiced_out, &config));

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
    let narrated = cases.iter().find(|c| c.name == "english bakery, narrated").unwrap();
    let sync = narrated.outcome.semantic.checks.iter().find(|c| c.name == "subtitle_sync").expect("a sync check");
    assert!(!sync.failed() && sync.reason.contains("within 150 ms"), "{}", sync.summary());
    let tofu = cases.iter().find(|c| c.name.contains("tofu")).unwrap();
    let reason = format!("{:?}", tofu.outcome.verdict.decision);
    assert!(reason.contains("caption_readback (scene"), "{reason}");

    // Each narration defect is rejected for what it is.
    for (name, check, words) in [
        ("narration missing (music only)", "narration_present", "not in the soundtrack"),
        ("narration cut mid-word", "narration_present", "cut off"),
        ("narration in another language", "narration_present", "not in the soundtrack"),
        ("music drowns the voice", "voice_over_music", "drowns"),
        ("subtitles late against the speech", "subtitle_sync", "out of step"),
    ] {
        let case = cases.iter().find(|c| c.name == name).unwrap();
        let failed: Vec<String> =
            case.outcome.semantic.checks.iter().filter(|c| c.failed()).map(|c| c.summary()).collect();
        assert!(failed.iter().any(|f| f.starts_with(check) && f.contains(words)), "{name}: {failed:?}");
    }
}
