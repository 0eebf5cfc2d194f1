//! The RenderExecutor: turns a [`RenderPlan`] into real files — `video.mp4` (H.264 + AAC +
//! one mov_text track per subtitle language), a low-resolution `preview.mp4`, one keyframe
//! PNG per scene and one WebVTT file per subtitle language.
//!
//! Everything happens in one streaming pass: each frame is composed in Rust
//! ([`compose`]), converted and encoded ([`encode`]) for the full video and, while inside
//! the preview window, scaled and encoded for the preview; the soundtrack ([`mix`]: the
//! music bed of [`audio`], ducked under the narration clips, normalised to the loudness
//! target) is produced in AAC-frame chunks that keep pace with the video. Memory does not grow with
//! the duration. Files are written under temporary names and renamed into place only once
//! complete (`video.mp4` last), so a crash never leaves a truncated `video.mp4` behind.

mod audio;
pub mod compose;
pub mod encode;
pub mod fonts;
pub mod icons;
mod keyframe;
pub mod kinetic;
pub mod mix;
mod movtext;
pub mod shape;
pub mod subtitles;
pub mod text;
mod vtt;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};

use crate::agent::{Agent, AgentContext, AgentError, AgentMetadata, AgentOutput};
use crate::domain::{NarrationClip, RenderPlan, X264Preset};
use compose::{ChannelOrder, Compositor, FrameMut};
use encode::{AAC_SAMPLE_RATES, AudioSpec, FrameSource, Mp4Spec, Mp4Writer, VideoSpec};
use mix::{LoudnessReport, Mixer};
use subtitles::{TimedCue, iso639_2, normalize_cues};
pub use text::{CaptionBox, PixelRect};

/// Bumped whenever the same plan would render differently.
pub const RENDER_VERSION: &str = "1.0.0";

/// The fastest preset the preview uses when the plan's is slower: the preview is a quick
/// look, not the deliverable.
const PREVIEW_PRESET: X264Preset = X264Preset::Veryfast;

/// Where the preview is cut and how small it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewSettings {
    /// The preview covers the first `min(max_seconds, duration)` seconds.
    pub max_seconds: f64,
    /// Length of the preview's shorter side in pixels (aspect kept, sides even); never
    /// larger than the video's.
    pub short_side: u32,
}

/// Where a render writes and what it needs besides the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderRequest {
    /// Directory that receives `video.mp4`, `preview.mp4`, `keyframes/` and the VTT files;
    /// created if missing.
    pub out_dir: PathBuf,
    /// TrueType/OpenType font used for the burned-in captions; Debian's Noto faces follow it
    /// as fallbacks for scripts it lacks.
    pub font_path: PathBuf,
    /// Directory of the installed assets (the illustration set that also draws emoji in
    /// captions); `None` renders without it, and a caption with emoji then fails.
    #[serde(default)]
    pub assets_dir: Option<PathBuf>,
    /// Preview cut and size.
    pub preview: PreviewSettings,
}

/// What a render produced, recorded in the job's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderOutput {
    /// The deliverable MP4.
    pub video: PathBuf,
    /// The low-resolution preview MP4.
    pub preview: PathBuf,
    /// One PNG per scene, in scene order.
    pub keyframes: Vec<PathBuf>,
    /// One WebVTT file per subtitle track: (language as given in the plan, path).
    pub subtitles: Vec<(String, PathBuf)>,
    /// Video frames encoded.
    pub frames: u64,
    /// Video duration in seconds (`frames / fps`).
    pub duration_s: f64,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Frames per wall-clock second over the whole render (composition, both encodes, IO).
    pub encode_fps: f64,
    /// Wall-clock time of the render in milliseconds.
    pub elapsed_ms: u64,
    /// Loudness and true peak of the (first) soundtrack as mixed (narration, ducking,
    /// normalisation).
    #[serde(default)]
    pub loudness: Option<LoudnessReport>,
    /// Every soundtrack in stream order: its narration language and how it measured.
    #[serde(default)]
    pub soundtracks: Vec<Soundtrack>,
    /// The caption rectangle drawn in each captioned scene, with its text and when it is fully
    /// shown: what QA crops and reads back.
    #[serde(default)]
    pub caption_boxes: Vec<CaptionBox>,
    /// The fonts that drew the captions, with version and licence, for the credits.
    #[serde(default)]
    pub fonts: Vec<fonts::FontCredit>,
}

/// One audio stream of the video: the music bed with one language's narration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Soundtrack {
    /// The narration's language (ISO 639-1), `None` for music only.
    pub lang: Option<String>,
    /// How the mix measured.
    pub loudness: LoudnessReport,
}

/// The soundtracks a plan asks for, in stream order: one per narrated language in the order
/// its clips first appear (the first language's first), or one music-only track.
pub fn soundtracks(plan: &RenderPlan) -> Vec<Option<String>> {
    let mut langs: Vec<Option<String>> = Vec::new();
    for clip in &plan.narration {
        if !langs.iter().any(|l| l.as_deref() == Some(clip.lang.as_str())) {
            langs.push(Some(clip.lang.clone()));
        }
    }
    if langs.is_empty() {
        langs.push(None);
    }
    langs
}

/// Renders `plan` into `req.out_dir`. Synchronous and CPU-bound: callers in async code run
/// it on a blocking thread. Checks `ctx.cancel` before every frame and reports progress
/// through `ctx.progress`.
///
/// Errors: [`AgentError::Permanent`] for plans or requests that can never render (no
/// scenes, odd dimensions, unknown preset, missing font, …); [`AgentError::Transient`] for
/// IO and resource failures; [`AgentError::Cancelled`] when the token fires. On any error,
/// partially written files are removed.
pub fn render(plan: &RenderPlan, req: &RenderRequest, ctx: &AgentContext) -> Result<RenderOutput, AgentError> {
    let started = Instant::now();
    validate(plan, req)?;
    let source_lang = plan.subtitles.first().map(|t| t.lang.as_str()).unwrap_or("en");
    let typesetter = text::Typesetter::new(&req.font_path, source_lang, req.assets_dir.as_deref())?;
    encode::init_ffmpeg()?;

    let v = &plan.video;
    let (width, height, fps) = (v.width, v.height, v.fps);
    let frames = plan.frame_count().max(1);
    let duration_s = frames as f64 / fps as f64;
    let rate = plan.audio.sample_rate;

    let out_dir = &req.out_dir;
    let keyframe_dir = out_dir.join("keyframes");
    create_dir(out_dir)?;
    create_dir(&keyframe_dir)?;

    // Every file is written under a temporary name; the guard removes them on failure.
    let mut partial = PartialFiles::default();

    // Subtitle side files first: they are tiny and independent of the encode.
    let tracks: Vec<(String, Vec<TimedCue>)> =
        plan.subtitles.iter().map(|t| (t.lang.clone(), normalize_cues(&t.cues, duration_s))).collect();
    let mut vtt_files: Vec<(String, PathBuf)> = Vec::new();
    for (lang, cues) in &tracks {
        // Two tracks with the same language get distinct files (`subtitles.en.2.vtt`).
        let mut path = out_dir.join(format!("subtitles.{}.vtt", file_safe(lang)));
        let mut n = 1;
        while vtt_files.iter().any(|(_, p)| *p == path) {
            n += 1;
            path = out_dir.join(format!("subtitles.{}.{n}.vtt", file_safe(lang)));
        }
        let tmp = partial.track(temp_name(&path));
        fs::write(&tmp, vtt::document(cues))
            .map_err(|e| AgentError::Transient(format!("cannot write {}: {e}", tmp.display())))?;
        vtt_files.push((lang.clone(), path));
    }

    let video_path = out_dir.join("video.mp4");
    let preview_path = out_dir.join("preview.mp4");
    let video_tmp = partial.track(temp_name(&video_path));
    let preview_tmp = partial.track(temp_name(&preview_path));

    // One soundtrack per narrated language (the first language's first), or music only.
    let soundtracks = soundtracks(plan);
    let main_spec = Mp4Spec {
        video: VideoSpec { width, height, fps, preset: v.x264_preset, crf: v.crf },
        audio: soundtracks
            .iter()
            .map(|lang| AudioSpec {
                sample_rate: rate,
                bitrate: v.audio_bitrate,
                language: lang.as_deref().map(iso639_2),
            })
            .collect(),
        subtitle_languages: tracks.iter().map(|(lang, _)| iso639_2(lang)).collect(),
    };
    let (pw, ph) = preview_size(width, height, req.preview.short_side);
    let preview_frames = ((req.preview.max_seconds * fps as f64).round() as u64).clamp(1, frames);
    let preview_samples = (preview_frames as u128 * rate as u128 / fps as u128) as u64;
    let preview_spec = Mp4Spec {
        video: VideoSpec { width: pw, height: ph, fps, preset: preview_preset(v.x264_preset), crf: v.crf },
        audio: vec![AudioSpec {
            sample_rate: rate,
            bitrate: v.audio_bitrate.min(128_000),
            language: soundtracks[0].as_deref().map(iso639_2),
        }],
        subtitle_languages: Vec::new(),
    };
    // Frames are composed as BGR24 (swscale's fast path to YUV 4:2:0); the preview is
    // scaled down from the main video's YUV frames rather than converted from BGR again.
    let source = FrameSource { format: ffmpeg::format::Pixel::BGR24, width, height };
    let mut main = Mp4Writer::create(&video_tmp, &main_spec, source)?;
    let preview_source = FrameSource { format: ffmpeg::format::Pixel::YUV420P, width, height };
    let mut preview = Some(Mp4Writer::create(&preview_tmp, &preview_spec, preview_source)?);

    let mut compositor = Compositor::new(plan, typesetter, width, height, ChannelOrder::Bgr)?;
    let mut mixers = soundtracks
        .iter()
        .map(|lang| {
            let clips: Vec<NarrationClip> =
                plan.narration.iter().filter(|c| Some(&c.lang) == lang.as_ref()).cloned().collect();
            Mixer::new(&plan.audio, &plan.mix, &clips, duration_s, plan.seed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let chunk = main.audio_frame_size().unwrap_or(1024);
    let (mut left, mut right) = (vec![0.0f32; chunk], vec![0.0f32; chunk]);
    let mut bgr = ffmpeg::frame::Video::new(source.format, width, height);

    let keyframe_at: Vec<u64> = plan
        .scenes
        .iter()
        .map(|s| (((s.start_s + s.duration_s / 2.0) * fps as f64).floor() as u64).min(frames - 1))
        .collect();
    let mut keyframes = vec![PathBuf::new(); plan.scenes.len()];
    let mut next_cue = vec![0usize; tracks.len()];
    let progress_every = (frames / 200).max(1);

    for i in 0..frames {
        if ctx.cancel.is_cancelled() {
            return Err(AgentError::Cancelled);
        }
        let t = i as f64 / fps as f64;
        {
            let stride = bgr.stride(0);
            let mut view = FrameMut { data: bgr.data_mut(0), stride };
            compositor.draw(t, &mut view);
        }
        for (scene, _) in keyframe_at.iter().enumerate().filter(|(_, at)| **at == i) {
            let path = keyframe_dir.join(format!("scene_{:02}.png", scene + 1));
            let tmp = partial.track(temp_name(&path));
            keyframe::write_png(&tmp, bgr.data(0), bgr.stride(0), width, height, ChannelOrder::Bgr)?;
            keyframes[scene] = path;
        }
        main.push_frame(&bgr)?;
        if i < preview_frames
            && let Some(p) = preview.as_mut()
        {
            p.push_frame(main.last_frame())?;
        }

        // Subtitle cues that have started by this frame.
        let now_ms = (i as u128 * 1000 / fps as u128) as i64;
        for (track, (_, cues)) in tracks.iter().enumerate() {
            while let Some(cue) = cues.get(next_cue[track]).filter(|c| c.start_ms <= now_ms) {
                main.write_cue(track, cue)?;
                next_cue[track] += 1;
            }
        }

        // Audio up to the end of this frame, every soundtrack (the preview has the first).
        let audio_due = ((i + 1) as u128 * rate as u128 / fps as u128) as u64;
        for (n, music) in mixers.iter_mut().enumerate() {
            while music.position() < audio_due.min(music.total_samples()) {
                let preview = if n == 0 { &mut preview } else { &mut None };
                write_audio_chunk(music, n, &mut left, &mut right, &mut main, preview, preview_samples)?;
            }
        }

        if i + 1 == preview_frames {
            finish_preview(&mut preview)?;
        }
        if i % progress_every == 0 {
            ctx.progress.report(i as f32 / frames as f32);
        }
    }
    for (n, music) in mixers.iter_mut().enumerate() {
        while music.position() < music.total_samples() {
            let preview = if n == 0 { &mut preview } else { &mut None };
            write_audio_chunk(music, n, &mut left, &mut right, &mut main, preview, preview_samples)?;
        }
    }
    for (track, (_, cues)) in tracks.iter().enumerate() {
        for cue in &cues[next_cue[track]..] {
            main.write_cue(track, cue)?;
        }
    }
    let written = main.finish()?;

    // Everything is complete: move the files into place, the video last, so that a
    // `video.mp4` from this render implies its companions are there too.
    for path in vtt_files.iter().map(|(_, p)| p).chain(&keyframes).chain([&preview_path, &video_path]) {
        promote(&temp_name(path), path, &mut partial)?;
    }
    ctx.progress.report(1.0);

    let elapsed = started.elapsed();
    Ok(RenderOutput {
        video: video_path,
        preview: preview_path,
        keyframes,
        subtitles: vtt_files,
        frames: written,
        duration_s: written as f64 / fps as f64,
        width,
        height,
        fps,
        encode_fps: written as f64 / elapsed.as_secs_f64().max(1e-9),
        elapsed_ms: elapsed.as_millis() as u64,
        loudness: mixers.first().map(Mixer::report),
        soundtracks: soundtracks
            .iter()
            .zip(&mixers)
            .map(|(lang, m)| Soundtrack { lang: lang.clone(), loudness: m.report() })
            .collect(),
        caption_boxes: compositor.caption_boxes(plan.subtitles.first().map(|t| t.lang.as_str()).unwrap_or("und")),
        fonts: compositor.font_credits(),
    })
}

/// Synthesises the next audio chunk and sends it to the video and, while inside the preview
/// window, to the preview.
fn write_audio_chunk(
    music: &mut Mixer,
    stream: usize,
    left: &mut [f32],
    right: &mut [f32],
    main: &mut Mp4Writer,
    preview: &mut Option<Mp4Writer>,
    preview_samples: u64,
) -> Result<(), AgentError> {
    let start = music.position();
    let n = music.fill(left, right)?;
    main.write_audio(stream, &left[..n], &right[..n])?;
    if let Some(p) = preview.as_mut()
        && start < preview_samples
    {
        let m = n.min((preview_samples - start) as usize);
        p.write_audio(0, &left[..m], &right[..m])?;
    }
    Ok(())
}

/// Finalises the preview. Called right after its last frame: the audio synthesised for
/// that frame already reaches the preview's cut, so the preview has all its samples.
fn finish_preview(preview: &mut Option<Mp4Writer>) -> Result<(), AgentError> {
    match preview.take() {
        Some(p) => p.finish().map(|_| ()),
        None => Ok(()),
    }
}

/// Rejects plans and requests that cannot render, before any file is created.
fn validate(plan: &RenderPlan, req: &RenderRequest) -> Result<(), AgentError> {
    let bad = |msg: String| Err(AgentError::Permanent(format!("invalid render plan: {msg}")));
    let v = &plan.video;
    if plan.scenes.is_empty() {
        return bad("it has no scenes".into());
    }
    if v.width < 16 || v.height < 16 || v.width > 8192 || v.height > 8192 {
        return bad(format!("frame size {}x{} is outside 16..=8192", v.width, v.height));
    }
    if !v.width.is_multiple_of(2) || !v.height.is_multiple_of(2) {
        return bad(format!("frame size {}x{} has an odd side (H.264 4:2:0 needs even sides)", v.width, v.height));
    }
    if v.fps == 0 || v.fps > 240 {
        return bad(format!("{} fps is outside 1..=240", v.fps));
    }
    if v.crf > 51 {
        return bad(format!("crf {} is above 51", v.crf));
    }
    if !(8_000..=512_000).contains(&v.audio_bitrate) {
        return bad(format!("audio bitrate {} b/s is outside 8000..=512000", v.audio_bitrate));
    }
    let a = &plan.audio;
    if !AAC_SAMPLE_RATES.contains(&a.sample_rate) {
        return bad(format!("sample rate {} Hz is not one AAC supports", a.sample_rate));
    }
    if !(a.tempo_bpm.is_finite() && a.root_hz.is_finite() && a.energy.is_finite() && a.gain.is_finite()) {
        return bad("the audio plan has a non-finite number".into());
    }
    let m = &plan.mix;
    if !(-40.0..=0.0).contains(&m.target_lufs) || !(-20.0..=0.0).contains(&m.true_peak_dbtp) {
        return bad(format!(
            "mix target {} LUFS / {} dBTP is outside -40..0 / -20..0",
            m.target_lufs, m.true_peak_dbtp
        ));
    }
    if !(m.duck_db.is_finite() && m.duck_attack_ms.is_finite() && m.duck_release_ms.is_finite()) || m.duck_db < 0.0 {
        return bad("the mix's ducking settings are not finite and non-negative".into());
    }
    if let Some(c) = plan.narration.iter().find(|c| !c.path.is_file() || !c.start_s.is_finite() || c.start_s < 0.0) {
        return bad(format!("narration clip {} is missing or starts at {} s", c.path.display(), c.start_s));
    }
    if !plan.transition_s.is_finite() || plan.transition_s < 0.0 {
        return bad(format!("transition of {} s", plan.transition_s));
    }
    let mut previous_start = f64::NEG_INFINITY;
    for (i, s) in plan.scenes.iter().enumerate() {
        let n = i + 1;
        if !(s.start_s.is_finite() && s.duration_s.is_finite()) || s.start_s < 0.0 || s.duration_s <= 0.0 {
            return bad(format!("scene {n} has start {} s and duration {} s", s.start_s, s.duration_s));
        }
        if s.start_s < previous_start {
            return bad(format!("scene {n} starts before the scene preceding it"));
        }
        previous_start = s.start_s;
        let t = &s.typography;
        let shape_numbers = s.shapes.iter().flat_map(|sh| [sh.alpha, sh.x, sh.y, sh.size]);
        let numbers = [s.background.angle_deg, s.motion.intensity, t.size, t.box_alpha, t.safe_margin];
        if !numbers.into_iter().chain(shape_numbers).all(f32::is_finite) {
            return bad(format!("scene {n} has a non-finite number"));
        }
    }
    if plan.duration_s() > 6.0 * 3600.0 {
        return bad(format!("{} s is longer than six hours", plan.duration_s()));
    }
    if !(req.preview.max_seconds.is_finite() && req.preview.max_seconds > 0.0) {
        return Err(AgentError::Permanent(format!("invalid preview length {} s", req.preview.max_seconds)));
    }
    if req.preview.short_side < 16 {
        return Err(AgentError::Permanent(format!("preview short side {} px is below 16", req.preview.short_side)));
    }
    if !req.font_path.is_file() {
        return Err(AgentError::Permanent(format!("caption font not found: {}", req.font_path.display())));
    }
    Ok(())
}

/// Preview frame size: the video's aspect with the short side at `short_side` (never
/// upscaled), both sides even.
fn preview_size(width: u32, height: u32, short_side: u32) -> (u32, u32) {
    let short = width.min(height);
    let target = short_side.min(short);
    let scale = target as f64 / short as f64;
    let even = |v: u32| (((v as f64 * scale) / 2.0).round() as u32 * 2).max(2);
    (even(width), even(height))
}

/// The preview's preset: the plan's, unless it is slower than [`PREVIEW_PRESET`].
fn preview_preset(plan_preset: X264Preset) -> X264Preset {
    plan_preset.min(PREVIEW_PRESET)
}

/// A language tag reduced to characters safe in a file name.
fn file_safe(lang: &str) -> String {
    let s: String = lang.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    if s.is_empty() { "und".into() } else { s }
}

/// `dir/.name.partial`: hidden, and never mistaken for the finished file.
fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

fn create_dir(dir: &Path) -> Result<(), AgentError> {
    fs::create_dir_all(dir).map_err(|e| AgentError::Transient(format!("cannot create {}: {e}", dir.display())))
}

/// Renames a finished temporary file to its final name.
fn promote(tmp: &Path, path: &Path, partial: &mut PartialFiles) -> Result<(), AgentError> {
    fs::rename(tmp, path)
        .map_err(|e| AgentError::Transient(format!("cannot move {} to {}: {e}", tmp.display(), path.display())))?;
    partial.forget(tmp);
    Ok(())
}

/// Temporary files of a render in progress; whatever is still listed when it is dropped
/// (because the render failed or was cancelled) is deleted.
#[derive(Default)]
struct PartialFiles(Vec<PathBuf>);

impl PartialFiles {
    fn track(&mut self, path: PathBuf) -> PathBuf {
        self.0.push(path.clone());
        path
    }
    fn forget(&mut self, path: &Path) {
        self.0.retain(|p| p != path);
    }
}

impl Drop for PartialFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

/// The pipeline stage that renders the plan; a thin [`Agent`] wrapper around [`render`].
#[derive(Debug, Clone)]
pub struct RenderExecutor {
    /// Output directory, font and preview settings for the job.
    pub request: RenderRequest,
}

impl Agent for RenderExecutor {
    type Input = RenderPlan;
    type Output = RenderOutput;
    const NAME: &'static str = "render_executor";

    /// Renders synchronously inside the returned future; the driver polls it from a
    /// blocking thread because the work is CPU-bound.
    async fn run(&self, input: RenderPlan, ctx: &AgentContext) -> Result<AgentOutput<RenderOutput>, AgentError> {
        let started = Instant::now();
        let value = render(&input, &self.request, ctx)?;
        Ok(AgentOutput {
            value,
            metadata: AgentMetadata {
                model_used: "compositor+libx264".into(),
                processing_ms: started.elapsed().as_millis() as u64,
                version: RENDER_VERSION.into(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_keeps_aspect_with_even_sides_and_never_upscales() {
        assert_eq!(preview_size(1280, 720, 360), (640, 360));
        assert_eq!(preview_size(720, 1280, 360), (360, 640));
        assert_eq!(preview_size(852, 480, 270), (480, 270));
        assert_eq!(preview_size(320, 180, 360), (320, 180));
    }

    #[test]
    fn preview_preset_is_never_slower_than_veryfast() {
        assert_eq!(preview_preset(X264Preset::Ultrafast), X264Preset::Ultrafast);
        assert_eq!(preview_preset(X264Preset::Veryfast), X264Preset::Veryfast);
        assert_eq!(preview_preset(X264Preset::Slow), X264Preset::Veryfast);
    }

    #[test]
    fn temp_names_are_hidden_siblings() {
        assert_eq!(temp_name(Path::new("/o/video.mp4")), PathBuf::from("/o/.video.mp4.partial"));
        assert_eq!(file_safe("pt-BR"), "pt-BR");
        assert_eq!(file_safe("../x"), "x");
    }
}
