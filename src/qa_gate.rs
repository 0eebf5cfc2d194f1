//! The technical QA gate: probes a rendered MP4 and checks it against what the plan promised.
//!
//! The gate opens the real file with FFmpeg (through `ffmpeg-next`), decodes every video and
//! audio packet once, and turns what it measured into a list of named [`Check`]s: does the
//! container open, is there an H.264 video stream of the planned size, does every packet
//! decode, is the duration right, is there audible audio, does the picture change scene as
//! often as the plan says, is there a `mov_text` subtitle track per language. The pipeline
//! sends a job back to rendering when the gate fails, so the checks must measure the file
//! itself, never trust the renderer's own account of what it wrote.
//!
//! One pass over the packets does all the work, so a 30 s 720p file inspects in about a
//! second in release builds. Luma and chroma statistics come straight from the decoded
//! planar YUV frames (every Nth pixel, no scaling). Nothing here panics on a bad file: a file
//! that cannot be opened yields a report whose every check failed, with a score of 0.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Instant;

use agents::domain::RenderPlan;
use ffmpeg::format::Pixel;
use ffmpeg::format::sample::Sample;
use ffmpeg::{codec, decoder, frame, media, threading};
use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::TechnicalQa;

/// Length of the crossfade our renderer puts between scenes (`render.transitionSec` in the
/// v33 config). Scene changes are looked for as windows of change about this long.
pub const TRANSITION_S: f64 = 0.5;

/// Checks that must all pass for the gate to pass, whatever the score: a file failing one of
/// them is not a deliverable video (it does not play, is the wrong format or size, is cut
/// short, or lacks the required sound track).
pub const CRITICAL_CHECKS: [&str; 7] =
    ["opens", "video_stream", "codec", "resolution", "decodes", "duration", "audio_present"];

/// Every check name, in report order.
const CHECK_NAMES: [&str; 10] = [
    "opens",
    "video_stream",
    "codec",
    "resolution",
    "decodes",
    "duration",
    "audio_present",
    "audio_not_silent",
    "scene_count",
    "subtitle_tracks",
];

/// Histogram bins per plane in a frame signature.
const BINS: usize = 16;
/// Roughly how many pixels per row and column are sampled from each plane.
const SAMPLES_PER_AXIS: u32 = 64;
/// Smallest windowed signature change (mean absolute difference per feature) that can be a
/// scene change, however still the scenes are. For the gate's frame signatures it is about
/// 40% of one plane's pixels moving by a histogram bin (16 levels), or a uniform shift of
/// about 6 levels in one plane; for a mean-luma sequence it is 4 levels.
const MIN_SCENE_CHANGE: f32 = 4.0;
/// A window counts as a transition when its change exceeds this many times the typical
/// (25th percentile) change of the video, on top of [`MIN_SCENE_CHANGE`].
const BASELINE_FACTOR: f32 = 3.0;
/// RMS level reported for digital silence, where the logarithm would be minus infinity.
const SILENCE_FLOOR_DBFS: f64 = -150.0;
/// Consecutive unreadable packets after which the demuxer is considered stuck.
const MAX_CONSECUTIVE_READ_ERRORS: u32 = 64;

/// What the plan promised, to check the file against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectations {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second; with `duration_s` it gives the frame count to expect.
    pub fps: u32,
    /// Planned duration in seconds.
    pub duration_s: f64,
    /// Number of scenes the plan has; each is separated from the next by a crossfade.
    pub scene_count: usize,
    /// Subtitle languages the file must carry, ISO 639-1 ("en").
    pub subtitle_languages: Vec<String>,
    /// Narrated languages, ISO 639-1: the file must carry an audio stream tagged with each
    /// (empty: any one audio stream will do, e.g. music only).
    pub audio_languages: Vec<String>,
}

impl Expectations {
    /// What a render plan promises: the gate checks the renderer's output against its input.
    pub fn from_plan(plan: &RenderPlan) -> Self {
        Self {
            width: plan.video.width,
            height: plan.video.height,
            fps: plan.video.fps,
            duration_s: plan.duration_s(),
            scene_count: plan.scenes.len(),
            subtitle_languages: plan.subtitles.iter().map(|t| t.lang.clone()).collect(),
            audio_languages: agents::render::soundtracks(plan).into_iter().flatten().collect(),
        }
    }
}

/// One named check with what was measured, so a failure can be explained and acted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable check name (`opens`, `codec`, `duration`, …).
    pub name: String,
    /// Whether the file satisfies the check.
    pub passed: bool,
    /// What the file actually has (`null` when it could not be measured).
    pub measured: Value,
    /// What the plan or the configuration asks for.
    pub expected: Value,
    /// A human-readable explanation, especially of failures.
    pub detail: String,
}

/// The outcome of inspecting one file: the gate's verdict and the evidence behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TechnicalReport {
    /// The file inspected.
    pub file: PathBuf,
    /// Every check, in a fixed order.
    pub checks: Vec<Check>,
    /// Fraction of checks passed (each check weighs the same), 0.0–1.0.
    pub technical_score: f64,
    /// `technical_score >= gate` and every [`CRITICAL_CHECKS`] entry passed.
    pub passed: bool,
    /// Wall time the inspection took, in milliseconds.
    pub probe_ms: u64,
    /// Video frames decoded from the file.
    pub frames_decoded: u64,
}

impl TechnicalReport {
    /// The check with this name, if the report has it (audio checks are absent when audio is
    /// not required).
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The checks that failed, for logs and re-render decisions.
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// Inspect `path` against `expect` and the configured technical QA rules; `gate` is the
/// minimum technical score (`qualityGates.technical`). Never panics: a file that cannot be
/// opened gives a report with every check failed and a score of 0.
pub fn inspect(path: &Path, expect: &Expectations, cfg: &TechnicalQa, gate: f64) -> TechnicalReport {
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| probe(path)))
        .unwrap_or_else(|panic| Err(format!("inspector panicked: {}", panic_message(&panic))));
    let frames_decoded = outcome.as_ref().ok().and_then(|p| p.video.as_ref()).map_or(0, |v| v.frames);
    let checks = match &outcome {
        Ok(probe) => evaluate(probe, expect, cfg),
        Err(reason) => unopened_checks(reason, expect, cfg),
    };
    let technical_score = score(&checks);
    let criticals_pass = checks.iter().filter(|c| CRITICAL_CHECKS.contains(&c.name.as_str())).all(|c| c.passed);
    let report = TechnicalReport {
        file: path.to_owned(),
        technical_score,
        passed: technical_score >= gate && criticals_pass,
        probe_ms: started.elapsed().as_millis() as u64,
        frames_decoded,
        checks,
    };
    tracing::info!(
        file = %path.display(),
        score = report.technical_score,
        passed = report.passed,
        probe_ms = report.probe_ms,
        failed = ?report.failed().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        "technical QA"
    );
    report
}

/// Count the scenes in a sequence of per-frame signatures (see [`detect_transitions`]).
/// An empty sequence has no scenes; any other has one more scene than transitions.
pub fn count_scenes(signatures: &[Vec<f32>], transition_frames: usize) -> usize {
    if signatures.is_empty() { 0 } else { detect_transitions(signatures, transition_frames).len() + 1 }
}

/// Find scene transitions in per-frame signatures: any fixed-length feature vectors on a
/// scale of 8-bit levels, such as mean luma, or the per-plane colour histograms the gate
/// computes (each plane's bins sum to 255). Returns the frame index at the centre of each
/// transition.
///
/// A crossfade of `transition_frames` frames changes the picture a little on every frame, so
/// frame-to-frame differences barely stand out from motion. Instead each frame is compared
/// with the one `transition_frames` earlier: across a crossfade (or a cut) that difference
/// reaches the full palette change, while within a scene it stays at the level of motion.
/// A transition is a run of such windowed differences above a threshold (4.0, plus three
/// times the video's 25th-percentile change so that busy videos need a clearer change)
/// lasting at least half a transition; runs less than half a transition apart are one. Runs
/// touching the first or last frame are fades in or out, not scene changes.
pub fn detect_transitions(signatures: &[Vec<f32>], transition_frames: usize) -> Vec<usize> {
    let lag = transition_frames.max(1);
    if signatures.len() <= lag {
        return Vec::new();
    }
    let changes: Vec<f32> =
        (lag..signatures.len()).map(|t| signature_distance(&signatures[t], &signatures[t - lag])).collect();
    let threshold = MIN_SCENE_CHANGE + BASELINE_FACTOR * percentile(&changes, 0.25);
    let min_run = (lag / 2).max(1);
    let last = changes.len() - 1;
    runs_above(&changes, threshold, min_run)
        .into_iter()
        .filter(|&(start, end)| end - start + 1 >= min_run && start > 0 && end < last)
        .map(|(start, end)| peak_index(&changes, start, end) + lag - lag / 2)
        .collect()
}

/// Map a language code as MP4 stores it (ISO 639-2, bibliographic or terminologic, e.g.
/// "eng", "fre", "fra") to ISO 639-1 ("en"), the form plans and configs use. Two-letter codes
/// pass through; "und" and unknown codes give `None`.
pub fn iso639_1(code: &str) -> Option<&'static str> {
    let code = code.trim().to_ascii_lowercase();
    LANGUAGES.iter().find(|(two, threes)| *two == code || threes.contains(&code.as_str())).map(|(two, _)| *two)
}

/// ISO 639-1 code and its ISO 639-2 forms (terminologic first, bibliographic second).
const LANGUAGES: [(&str, &[&str]); 40] = [
    ("en", &["eng"]),
    ("fr", &["fra", "fre"]),
    ("es", &["spa"]),
    ("de", &["deu", "ger"]),
    ("it", &["ita"]),
    ("pt", &["por"]),
    ("ja", &["jpn"]),
    ("zh", &["zho", "chi"]),
    ("ko", &["kor"]),
    ("nl", &["nld", "dut"]),
    ("ru", &["rus"]),
    ("ar", &["ara"]),
    ("hi", &["hin"]),
    ("pl", &["pol"]),
    ("tr", &["tur"]),
    ("sv", &["swe"]),
    ("da", &["dan"]),
    ("no", &["nor"]),
    ("nb", &["nob"]),
    ("nn", &["nno"]),
    ("fi", &["fin"]),
    ("cs", &["ces", "cze"]),
    ("sk", &["slk", "slo"]),
    ("el", &["ell", "gre"]),
    ("he", &["heb"]),
    ("hu", &["hun"]),
    ("id", &["ind"]),
    ("ms", &["msa", "may"]),
    ("th", &["tha"]),
    ("vi", &["vie"]),
    ("uk", &["ukr"]),
    ("ro", &["ron", "rum"]),
    ("bg", &["bul"]),
    ("hr", &["hrv"]),
    ("sr", &["srp"]),
    ("ca", &["cat"]),
    ("fa", &["fas", "per"]),
    ("bn", &["ben"]),
    ("ta", &["tam"]),
    ("ur", &["urd"]),
];

// ---------------------------------------------------------------------------------------------
// Probing: one pass over the packets.
// ---------------------------------------------------------------------------------------------

/// Everything measured from one file.
struct Probe {
    /// Demuxer name as FFmpeg reports it.
    format_name: String,
    /// Container duration in seconds, when the container states one.
    container_s: Option<f64>,
    /// The best video stream, if any.
    video: Option<VideoProbe>,
    /// The best audio stream, if any.
    audio: Option<AudioProbe>,
    /// The language tag of every audio stream, in stream order (as stored: ISO 639-2).
    audio_languages: Vec<Option<String>>,
    /// Every subtitle stream, in stream order.
    subtitles: Vec<SubtitleProbe>,
    /// Packets the demuxer reported as invalid and skipped.
    invalid_packets: u32,
    /// The error that stopped demuxing before the end of the file, if any.
    read_error: Option<String>,
}

/// Measurements of the video stream.
struct VideoProbe {
    index: usize,
    codec: String,
    width: u32,
    height: u32,
    /// Duration the stream header states, seconds.
    stream_s: Option<f64>,
    /// Average frame rate the stream states.
    fps: Option<f64>,
    time_base: f64,
    /// Packets the container's index lists for the stream (MP4 states the sample count).
    indexed_packets: Option<u64>,
    decoder: Option<decoder::Video>,
    /// Why the decoder could not be opened.
    open_error: Option<String>,
    packets: u64,
    /// Packets the demuxer marked to be decoded but not shown (outside the MP4 edit list).
    discarded_packets: u64,
    frames: u64,
    decode_errors: u64,
    corrupt_frames: u64,
    first_error: Option<String>,
    /// Smallest presentation timestamp decoded.
    pts_first: Option<i64>,
    /// Largest presentation timestamp decoded.
    pts_last: Option<i64>,
    /// Largest presentation timestamp plus that frame's duration.
    pts_end: Option<i64>,
    /// One signature per decoded frame, for scene detection.
    signatures: Vec<Vec<f32>>,
    /// Set when a frame's pixel format had no readable planar YUV/grey layout.
    unsupported_pixel_format: Option<String>,
}

/// Measurements of the audio stream.
struct AudioProbe {
    index: usize,
    codec: String,
    decoder: Option<decoder::Audio>,
    open_error: Option<String>,
    sum_squares: f64,
    samples: u64,
    decode_errors: u64,
    first_error: Option<String>,
    unsupported_sample_format: Option<String>,
}

/// What a subtitle stream is and how many cues it carries.
struct SubtitleProbe {
    index: usize,
    codec: String,
    /// Language tag exactly as stored (ISO 639-2 in MP4).
    language: Option<String>,
    /// Packets carrying text (mov_text stores gaps as empty samples, which are not cues).
    cues: u64,
}

fn ffmpeg_init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Err(e) = ffmpeg::init() {
            tracing::warn!("ffmpeg init failed: {e}");
        }
    });
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Open, demux and decode the file. `Err` only when the file does not open as an MP4.
fn probe(path: &Path) -> Result<Probe, String> {
    ffmpeg_init();
    let mut input = ffmpeg::format::input(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let format_name = input.format().name().to_string();
    if !format_name.split(',').any(|n| n == "mp4" || n == "mov") {
        return Err(format!("{} is a '{format_name}' file, not an MP4", path.display()));
    }
    let container_s = (input.duration() > 0).then(|| input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE));
    let mut probe = Probe {
        format_name,
        container_s,
        video: input.streams().best(media::Type::Video).map(|s| VideoProbe::open(&s)),
        audio: input.streams().best(media::Type::Audio).map(|s| AudioProbe::open(&s)),
        audio_languages: input
            .streams()
            .filter(|s| s.parameters().medium() == media::Type::Audio)
            .map(|s| s.metadata().get("language").map(str::to_owned))
            .collect(),
        subtitles: input
            .streams()
            .filter(|s| s.parameters().medium() == media::Type::Subtitle)
            .map(|s| SubtitleProbe::new(&s))
            .collect(),
        invalid_packets: 0,
        read_error: None,
    };
    demux(&mut input, &mut probe);
    if let Some(video) = probe.video.as_mut() {
        video.finish();
    }
    if let Some(audio) = probe.audio.as_mut() {
        audio.finish();
    }
    Ok(probe)
}

/// Read every packet and hand it to the stream it belongs to.
fn demux(input: &mut ffmpeg::format::context::Input, probe: &mut Probe) {
    let mut consecutive_errors = 0;
    loop {
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(input) {
            Ok(()) => consecutive_errors = 0,
            Err(ffmpeg::Error::Eof) => break,
            Err(ffmpeg::Error::InvalidData) => {
                probe.invalid_packets += 1;
                consecutive_errors += 1;
                if consecutive_errors >= MAX_CONSECUTIVE_READ_ERRORS {
                    probe.read_error = Some(format!("{consecutive_errors} consecutive unreadable packets"));
                    break;
                }
                continue;
            }
            Err(e) => {
                probe.read_error = Some(format!("reading packets: {e}"));
                break;
            }
        }
        dispatch(probe, &packet);
    }
}

fn dispatch(probe: &mut Probe, packet: &ffmpeg::Packet) {
    let index = packet.stream();
    if let Some(video) = probe.video.as_mut().filter(|v| v.index == index) {
        video.feed(packet);
    } else if let Some(audio) = probe.audio.as_mut().filter(|a| a.index == index) {
        audio.feed(packet);
    } else if let Some(subtitle) = probe.subtitles.iter_mut().find(|s| s.index == index) {
        subtitle.feed(packet);
    }
}

fn rational_f64(r: ffmpeg::Rational) -> Option<f64> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
}

fn codec_name(stream: &ffmpeg::Stream) -> String {
    stream.parameters().id().name().to_string()
}

impl VideoProbe {
    fn open(stream: &ffmpeg::Stream) -> Self {
        let time_base = rational_f64(stream.time_base()).unwrap_or(0.0);
        let stream_s = (stream.duration() > 0 && time_base > 0.0).then(|| stream.duration() as f64 * time_base);
        let (decoder, open_error) = match open_video_decoder(stream) {
            Ok(d) => (Some(d), None),
            Err(e) => (None, Some(e)),
        };
        let (width, height) = decoder.as_ref().map_or((0, 0), |d| (d.width(), d.height()));
        Self {
            index: stream.index(),
            codec: codec_name(stream),
            width,
            height,
            stream_s,
            fps: rational_f64(stream.avg_frame_rate()),
            time_base,
            indexed_packets: u64::try_from(stream.frames()).ok().filter(|&n| n > 0),
            decoder,
            open_error,
            packets: 0,
            discarded_packets: 0,
            frames: 0,
            decode_errors: 0,
            corrupt_frames: 0,
            first_error: None,
            pts_first: None,
            pts_last: None,
            pts_end: None,
            signatures: Vec::new(),
            unsupported_pixel_format: None,
        }
    }

    fn feed(&mut self, packet: &ffmpeg::Packet) {
        self.packets += 1;
        if is_discarded(packet) {
            self.discarded_packets += 1;
        }
        if packet.is_corrupt() {
            self.note_error("demuxer flagged a corrupt packet".into());
        }
        let Some(decoder) = self.decoder.as_mut() else { return };
        if let Err(e) = decoder.send_packet(packet) {
            self.note_error(format!("packet {}: {e}", self.packets));
            return;
        }
        self.receive();
    }

    fn finish(&mut self) {
        let Some(decoder) = self.decoder.as_mut() else { return };
        if let Err(e) = decoder.send_eof() {
            self.note_error(format!("flushing the decoder: {e}"));
        }
        self.receive();
        self.decoder = None;
    }

    fn receive(&mut self) {
        let mut decoded = frame::Video::empty();
        loop {
            let Some(decoder) = self.decoder.as_mut() else { return };
            match decoder.receive_frame(&mut decoded) {
                Ok(()) => self.on_frame(&decoded),
                Err(ffmpeg::Error::Eof) => return,
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::error::EAGAIN => return,
                Err(e) => {
                    self.note_error(format!("decoding: {e}"));
                    return;
                }
            }
        }
    }

    fn on_frame(&mut self, decoded: &frame::Video) {
        self.frames += 1;
        if decoded.is_corrupt() || decoded.has_decode_errors() {
            self.corrupt_frames += 1;
        }
        if let Some(pts) = decoded.pts() {
            let duration = decoded.packet().duration.max(0);
            self.pts_first = Some(self.pts_first.map_or(pts, |p| p.min(pts)));
            self.pts_last = Some(self.pts_last.map_or(pts, |p| p.max(pts)));
            self.pts_end = Some(self.pts_end.map_or(pts + duration, |p| p.max(pts + duration)));
        }
        match frame_signature(decoded) {
            Some(signature) => self.signatures.push(signature),
            None => self.unsupported_pixel_format = Some(format!("{:?}", decoded.format())),
        }
    }

    fn note_error(&mut self, message: String) {
        self.decode_errors += 1;
        self.first_error.get_or_insert(message);
    }

    /// Duration covered by the decoded frames, from the first pts to the end of the last frame
    /// (the last frame's start plus one frame interval when packets carry no duration).
    fn decoded_s(&self) -> Option<f64> {
        let (first, last, end) = (self.pts_first?, self.pts_last?, self.pts_end?);
        let span = (last - first) as f64 * self.time_base;
        let tail = if end > last { (end - last) as f64 * self.time_base } else { self.fps.map_or(0.0, |f| 1.0 / f) };
        Some(span + tail)
    }
}

/// Whether the demuxer flagged the packet as decode-only: the decoder drops its frame, so it
/// must not count as a missing frame. `ffmpeg-next` does not expose this flag.
fn is_discarded(packet: &ffmpeg::Packet) -> bool {
    // SAFETY: `as_ptr` points to the packet's own AVPacket, valid while `packet` is borrowed;
    // only a plain integer field is read.
    let flags = unsafe { (*ffmpeg::packet::Ref::as_ptr(packet)).flags };
    flags & ffmpeg::ffi::AV_PKT_FLAG_DISCARD != 0
}

fn open_video_decoder(stream: &ffmpeg::Stream) -> Result<decoder::Video, String> {
    let mut context = codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| format!("video stream {}: reading codec parameters: {e}", stream.index()))?;
    context.set_threading(threading::Config::kind(threading::Type::Frame));
    context.decoder().video().map_err(|e| format!("video stream {}: opening the decoder: {e}", stream.index()))
}

fn open_audio_decoder(stream: &ffmpeg::Stream) -> Result<decoder::Audio, String> {
    let context = codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| format!("audio stream {}: reading codec parameters: {e}", stream.index()))?;
    context.decoder().audio().map_err(|e| format!("audio stream {}: opening the decoder: {e}", stream.index()))
}

/// A frame's signature: a 16-bin histogram of each 8-bit plane (Y, then U and V when
/// present), each summing to 255, from about [`SAMPLES_PER_AXIS`] pixels per row and column.
/// Histograms ignore where colours are, so camera moves and drifting shapes barely change
/// them while a crossfade to another palette changes them completely. `None` for pixel
/// formats whose planes are not 8-bit luma/chroma planes.
fn frame_signature(decoded: &frame::Video) -> Option<Vec<f32>> {
    let planes = match decoded.format() {
        Pixel::YUV420P
        | Pixel::YUVJ420P
        | Pixel::YUV422P
        | Pixel::YUVJ422P
        | Pixel::YUV444P
        | Pixel::YUVJ444P
        | Pixel::YUV440P
        | Pixel::YUVJ440P
        | Pixel::YUV411P
        | Pixel::YUV410P => 3,
        Pixel::GRAY8 | Pixel::NV12 | Pixel::NV21 => 1,
        _ => return None,
    };
    if decoded.planes() < planes {
        return None;
    }
    let mut signature = Vec::with_capacity(planes * BINS);
    for plane in 0..planes {
        let (width, height) = (decoded.plane_width(plane), decoded.plane_height(plane));
        plane_histogram(decoded.data(plane), decoded.stride(plane), width, height, &mut signature);
    }
    Some(signature)
}

/// Append the [`BINS`]-bin histogram of one 8-bit plane, sampling every `step`-th pixel of
/// every `step`-th row and scaled to sum to 255. Each sample is split linearly between its two
/// nearest bins, so a small uniform shift moves a proportional amount of mass instead of
/// nothing (or a whole bin).
fn plane_histogram(data: &[u8], stride: usize, width: u32, height: u32, out: &mut Vec<f32>) {
    let (w, h) = (width as usize, height as usize);
    let step = (width.max(height) / SAMPLES_PER_AXIS).max(1) as usize;
    let bin_width = 256.0 / BINS as f32;
    let mut bins = [0f32; BINS];
    let mut count = 0u32;
    for y in (0..h).step_by(step) {
        let Some(row) = data.get(y * stride..y * stride + w) else { break };
        for &value in row.iter().step_by(step) {
            let position = ((f32::from(value) + 0.5) / bin_width - 0.5).clamp(0.0, (BINS - 1) as f32);
            let low = position.floor() as usize;
            let upper_share = position - low as f32;
            bins[low] += 1.0 - upper_share;
            bins[(low + 1).min(BINS - 1)] += upper_share;
            count += 1;
        }
    }
    let scale = if count == 0 { 0.0 } else { 255.0 / count as f32 };
    out.extend(bins.iter().map(|b| b * scale));
}

impl AudioProbe {
    fn open(stream: &ffmpeg::Stream) -> Self {
        let (decoder, open_error) = match open_audio_decoder(stream) {
            Ok(d) => (Some(d), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            index: stream.index(),
            codec: codec_name(stream),
            decoder,
            open_error,
            sum_squares: 0.0,
            samples: 0,
            decode_errors: 0,
            first_error: None,
            unsupported_sample_format: None,
        }
    }

    fn feed(&mut self, packet: &ffmpeg::Packet) {
        let Some(decoder) = self.decoder.as_mut() else { return };
        if let Err(e) = decoder.send_packet(packet) {
            self.note_error(format!("audio packet: {e}"));
            return;
        }
        self.receive();
    }

    fn finish(&mut self) {
        let Some(decoder) = self.decoder.as_mut() else { return };
        if let Err(e) = decoder.send_eof() {
            self.note_error(format!("flushing the audio decoder: {e}"));
        }
        self.receive();
        self.decoder = None;
    }

    fn receive(&mut self) {
        let mut decoded = frame::Audio::empty();
        loop {
            let Some(decoder) = self.decoder.as_mut() else { return };
            match decoder.receive_frame(&mut decoded) {
                Ok(()) => self.accumulate(&decoded),
                Err(ffmpeg::Error::Eof) => return,
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::error::EAGAIN => return,
                Err(e) => {
                    self.note_error(format!("decoding audio: {e}"));
                    return;
                }
            }
        }
    }

    fn note_error(&mut self, message: String) {
        self.decode_errors += 1;
        self.first_error.get_or_insert(message);
    }

    /// Add the frame's samples, normalised to ±1.0 full scale, to the running sum of squares.
    fn accumulate(&mut self, decoded: &frame::Audio) {
        let format = decoded.format();
        for plane in 0..decoded.planes() {
            let (sum, count) = match format {
                Sample::F32(_) => sum_squares(decoded.plane::<f32>(plane), f64::from),
                Sample::F64(_) => sum_squares(decoded.plane::<f64>(plane), |v| v),
                Sample::I16(_) => sum_squares(decoded.plane::<i16>(plane), |v| f64::from(v) / 32_768.0),
                Sample::I32(_) => sum_squares(decoded.plane::<i32>(plane), |v| f64::from(v) / 2_147_483_648.0),
                Sample::U8(_) => sum_squares(decoded.plane::<u8>(plane), |v| (f64::from(v) - 128.0) / 128.0),
                other => {
                    self.unsupported_sample_format = Some(format!("{other:?}"));
                    return;
                }
            };
            self.sum_squares += sum;
            self.samples += count;
        }
    }

    /// RMS level of everything decoded, in dBFS (a full-scale square wave is 0 dBFS).
    fn rms_dbfs(&self) -> Option<f64> {
        (self.samples > 0).then(|| {
            let rms = (self.sum_squares / self.samples as f64).sqrt();
            if rms > 0.0 { (20.0 * rms.log10()).max(SILENCE_FLOOR_DBFS) } else { SILENCE_FLOOR_DBFS }
        })
    }
}

fn sum_squares<T: Copy>(samples: &[T], normalise: impl Fn(T) -> f64) -> (f64, u64) {
    let sum = samples.iter().map(|&s| normalise(s)).map(|v| v * v).sum();
    (sum, samples.len() as u64)
}

impl SubtitleProbe {
    fn new(stream: &ffmpeg::Stream) -> Self {
        Self {
            index: stream.index(),
            codec: codec_name(stream),
            language: stream.metadata().get("language").map(str::to_string),
            cues: 0,
        }
    }

    fn feed(&mut self, packet: &ffmpeg::Packet) {
        let data = packet.data().unwrap_or_default();
        let has_text = if self.codec == "mov_text" {
            // A mov_text sample starts with a big-endian 16-bit text length.
            data.len() >= 2 && u16::from_be_bytes([data[0], data[1]]) > 0
        } else {
            !data.is_empty()
        };
        if has_text {
            self.cues += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation: measurements → checks.
// ---------------------------------------------------------------------------------------------

fn make_check(name: &str, passed: bool, measured: Value, expected: Value, detail: impl Into<String>) -> Check {
    Check { name: name.into(), passed, measured, expected, detail: detail.into() }
}

/// The checks that apply under this configuration (audio checks only when audio is required).
fn applicable(cfg: &TechnicalQa) -> impl Iterator<Item = &'static str> + '_ {
    CHECK_NAMES.into_iter().filter(|n| cfg.audio_required || !n.starts_with("audio"))
}

/// Every check failed because the file did not open (or was not an MP4).
fn unopened_checks(reason: &str, expect: &Expectations, cfg: &TechnicalQa) -> Vec<Check> {
    applicable(cfg)
        .map(|name| {
            let expected = expected_value(name, expect, cfg);
            if name == "opens" {
                make_check(name, false, Value::Null, expected, reason)
            } else {
                make_check(name, false, Value::Null, expected, "not measured: the file did not open")
            }
        })
        .collect()
}

/// What each check expects, from the plan and the configuration.
fn expected_value(name: &str, expect: &Expectations, cfg: &TechnicalQa) -> Value {
    match name {
        "opens" => json!("mp4"),
        "video_stream" => json!(true),
        "audio_present" if expect.audio_languages.is_empty() => json!(true),
        "audio_present" => json!({ "narrated_languages": expect.audio_languages }),
        "codec" => json!(cfg.codec),
        "resolution" => json!({ "width": expect.width, "height": expect.height }),
        "decodes" => json!({ "frames": expected_frames(expect), "tolerance_frames": tolerance_frames(expect, cfg) }),
        "duration" => json!({ "seconds": expect.duration_s, "tolerance_s": cfg.duration_tolerance_sec }),
        "audio_not_silent" => json!({ "above_dbfs": cfg.silence_threshold_dbfs }),
        "scene_count" => json!(expect.scene_count),
        "subtitle_tracks" => json!({ "codec": "mov_text", "languages": expect.subtitle_languages }),
        _ => Value::Null,
    }
}

fn expected_frames(expect: &Expectations) -> u64 {
    (expect.duration_s * f64::from(expect.fps)).round().max(0.0) as u64
}

fn tolerance_frames(expect: &Expectations, cfg: &TechnicalQa) -> u64 {
    (cfg.duration_tolerance_sec * f64::from(expect.fps)).ceil().max(0.0) as u64
}

fn evaluate(probe: &Probe, expect: &Expectations, cfg: &TechnicalQa) -> Vec<Check> {
    applicable(cfg)
        .map(|name| {
            let expected = expected_value(name, expect, cfg);
            match name {
                "opens" => check_opens(probe, expected),
                "audio_present" => check_audio_present(probe, expect, expected),
                "audio_not_silent" => check_audio_not_silent(probe, cfg, expected),
                "subtitle_tracks" => check_subtitles(probe, expect, expected),
                _ => match &probe.video {
                    Some(video) => check_video(name, video, probe, expect, cfg, expected),
                    None => {
                        make_check(name, false, Value::Null, expected, "not measured: the file has no video stream")
                    }
                },
            }
        })
        .collect()
}

fn check_video(
    name: &str,
    video: &VideoProbe,
    probe: &Probe,
    expect: &Expectations,
    cfg: &TechnicalQa,
    expected: Value,
) -> Check {
    match name {
        "video_stream" => make_check(name, true, json!(true), expected, format!("stream {}", video.index)),
        "codec" => check_codec(video, cfg, expected),
        "resolution" => check_resolution(video, expect, expected),
        "decodes" => check_decodes(video, probe, expect, cfg, expected),
        "duration" => check_duration(video, probe, expect, cfg, expected),
        _ => check_scene_count(video, probe, expect, expected),
    }
}

fn check_opens(probe: &Probe, expected: Value) -> Check {
    let detail = format!("opened as '{}'", probe.format_name);
    make_check("opens", true, json!(probe.format_name), expected, detail)
}

fn check_codec(video: &VideoProbe, cfg: &TechnicalQa, expected: Value) -> Check {
    let passed = video.codec.eq_ignore_ascii_case(&cfg.codec);
    let detail =
        if passed { "codec matches".to_string() } else { format!("video is {}, not {}", video.codec, cfg.codec) };
    make_check("codec", passed, json!(video.codec), expected, detail)
}

fn check_resolution(video: &VideoProbe, expect: &Expectations, expected: Value) -> Check {
    let passed = video.width == expect.width && video.height == expect.height;
    let detail = format!("{}x{} (planned {}x{})", video.width, video.height, expect.width, expect.height);
    make_check("resolution", passed, json!({ "width": video.width, "height": video.height }), expected, detail)
}

fn check_decodes(
    video: &VideoProbe,
    probe: &Probe,
    expect: &Expectations,
    cfg: &TechnicalQa,
    expected: Value,
) -> Check {
    let expected_frames = expected_frames(expect);
    let frame_gap = video.frames.abs_diff(expected_frames);
    let measured = json!({
        "packets": video.packets,
        "discarded_packets": video.discarded_packets,
        "indexed_packets": video.indexed_packets,
        "frames": video.frames,
        "decode_errors": video.decode_errors,
        "corrupt_frames": video.corrupt_frames,
        "invalid_packets": probe.invalid_packets,
        "read_error": probe.read_error,
    });
    let problem = if let Some(e) = &video.open_error {
        Some(e.clone())
    } else if let Some(e) = &probe.read_error {
        Some(format!("demuxing stopped early: {e}"))
    } else if video.decode_errors > 0 || probe.invalid_packets > 0 {
        Some(format!(
            "{} decode errors, {} unreadable packets; first: {}",
            video.decode_errors,
            probe.invalid_packets,
            video.first_error.as_deref().unwrap_or("unreadable packet")
        ))
    } else if video.corrupt_frames > 0 {
        Some(format!("{} frames decoded with errors", video.corrupt_frames))
    } else if let Some(indexed) = video.indexed_packets.filter(|&n| video.packets < n) {
        Some(format!("stream truncated: {} of the {indexed} packets the index lists were read", video.packets))
    } else if video.frames != video.packets - video.discarded_packets {
        Some(format!(
            "{} packets ({} outside the edit list) gave {} frames",
            video.packets, video.discarded_packets, video.frames
        ))
    } else if frame_gap > tolerance_frames(expect, cfg) {
        Some(format!("{} frames decoded, {expected_frames} planned", video.frames))
    } else {
        None
    };
    let passed = problem.is_none();
    let detail = problem.unwrap_or_else(|| format!("all {} packets decoded to {} frames", video.packets, video.frames));
    make_check("decodes", passed, measured, expected, detail)
}

fn check_duration(
    video: &VideoProbe,
    probe: &Probe,
    expect: &Expectations,
    cfg: &TechnicalQa,
    expected: Value,
) -> Check {
    let stated = video.stream_s.or(probe.container_s);
    let decoded = video.decoded_s();
    let within = |s: Option<f64>| s.is_some_and(|s| (s - expect.duration_s).abs() <= cfg.duration_tolerance_sec);
    let passed = within(stated) && within(decoded);
    let measured = json!({
        "container_s": probe.container_s,
        "stream_s": video.stream_s,
        "decoded_s": decoded,
    });
    let show = |s: Option<f64>| s.map_or("unknown".to_string(), |s| format!("{s:.2} s"));
    let detail = format!(
        "stated {}, decoded frames span {} (planned {:.2} s ± {} s)",
        show(stated),
        show(decoded),
        expect.duration_s,
        cfg.duration_tolerance_sec
    );
    make_check("duration", passed, measured, expected, detail)
}

/// An audio stream exists, and every narrated language has its own stream tagged with it.
fn check_audio_present(probe: &Probe, expect: &Expectations, expected: Value) -> Check {
    let Some(audio) = &probe.audio else {
        return make_check("audio_present", false, json!(false), expected, "the file has no audio stream");
    };
    let tagged: Vec<Option<String>> =
        probe.audio_languages.iter().map(|t| t.as_deref().and_then(iso639_1).map(str::to_owned)).collect();
    let missing: Vec<&str> = expect
        .audio_languages
        .iter()
        .map(String::as_str)
        .filter(|want| !tagged.iter().any(|t| t.as_deref().is_some_and(|t| Some(t) == iso639_1(want))))
        .collect();
    let measured = json!({ "streams": probe.audio_languages.len(), "languages": probe.audio_languages });
    if !missing.is_empty() {
        let detail = format!("no audio stream tagged for the narration in {}", missing.join(", "));
        return make_check("audio_present", false, measured, expected, detail);
    }
    let detail = match probe.audio_languages.len() {
        1 => format!("{} stream {}", audio.codec, audio.index),
        n => format!(
            "{n} audio streams, one per narrated language; the default is {} stream {}",
            audio.codec, audio.index
        ),
    };
    make_check("audio_present", true, measured, expected, detail)
}

fn check_audio_not_silent(probe: &Probe, cfg: &TechnicalQa, expected: Value) -> Check {
    let name = "audio_not_silent";
    let Some(audio) = &probe.audio else {
        return make_check(name, false, Value::Null, expected, "not measured: the file has no audio stream");
    };
    let level = audio.rms_dbfs();
    let measured = json!({
        "rms_dbfs": level,
        "samples": audio.samples,
        "decode_errors": audio.decode_errors,
        "first_error": audio.first_error,
    });
    let problem = audio
        .open_error
        .clone()
        .or_else(|| audio.unsupported_sample_format.as_ref().map(|f| format!("cannot read sample format {f}")));
    match (problem, level) {
        (Some(problem), _) => make_check(name, false, measured, expected, problem),
        (None, None) => make_check(name, false, measured, expected, "no audio samples decoded"),
        (None, Some(db)) => {
            let passed = db > cfg.silence_threshold_dbfs;
            let verdict = if passed { "audible" } else { "silent" };
            let detail = format!("RMS {db:.1} dBFS, {verdict} (threshold {} dBFS)", cfg.silence_threshold_dbfs);
            make_check(name, passed, measured, expected, detail)
        }
    }
}

/// Scenes are counted from the picture; the cue count of the first subtitle track (one cue per
/// scene in our renders) is a second opinion. The check passes when the picture count matches
/// the plan, or when the cue count matches and the picture count is off by at most one (two
/// scenes with similar palettes can hide a crossfade from the picture signal).
fn check_scene_count(video: &VideoProbe, probe: &Probe, expect: &Expectations, expected: Value) -> Check {
    let fps = video.fps.unwrap_or(f64::from(expect.fps)).max(1.0);
    let window = (TRANSITION_S * fps).round().max(1.0) as usize;
    let readable = video.unsupported_pixel_format.is_none() && !video.signatures.is_empty();
    let transitions = if readable { detect_transitions(&video.signatures, window) } else { Vec::new() };
    let from_video = readable.then(|| transitions.len() + 1);
    let from_subtitles = probe.subtitles.first().map(|s| s.cues as usize);
    let video_ok = from_video == Some(expect.scene_count);
    let cues_ok =
        from_subtitles == Some(expect.scene_count) && from_video.is_none_or(|n| n.abs_diff(expect.scene_count) <= 1);
    let measured = json!({
        "from_video": from_video,
        "from_subtitles": from_subtitles,
        "transitions_at_s": transitions.iter().map(|&f| (f as f64 / fps * 100.0).round() / 100.0).collect::<Vec<_>>(),
    });
    let show = |n: Option<usize>| n.map_or("unknown".to_string(), |n| n.to_string());
    let mut detail = format!(
        "{} scenes in the picture, {} subtitle cues, {} planned",
        show(from_video),
        show(from_subtitles),
        expect.scene_count
    );
    if let Some(format) = &video.unsupported_pixel_format {
        detail.push_str(&format!("; pixel format {format} not analysed"));
    }
    make_check("scene_count", video_ok || cues_ok, measured, expected, detail)
}

fn check_subtitles(probe: &Probe, expect: &Expectations, expected: Value) -> Check {
    let tracks: Vec<Value> = probe
        .subtitles
        .iter()
        .map(|s| json!({ "codec": s.codec, "language": s.language, "lang": s.language.as_deref().and_then(iso639_1), "cues": s.cues }))
        .collect();
    let missing: Vec<&str> = expect
        .subtitle_languages
        .iter()
        .map(String::as_str)
        .filter(|want| !probe.subtitles.iter().any(|s| subtitle_serves(s, want)))
        .collect();
    let detail = if missing.is_empty() {
        format!("{} subtitle tracks cover every planned language", probe.subtitles.len())
    } else {
        format!("no mov_text track for {}", missing.join(", "))
    };
    make_check("subtitle_tracks", missing.is_empty(), json!(tracks), expected, detail)
}

fn subtitle_serves(track: &SubtitleProbe, lang: &str) -> bool {
    let stored = track.language.as_deref().and_then(iso639_1);
    track.codec == "mov_text" && stored.is_some() && stored == iso639_1(lang)
}

/// Fraction of checks passed. Every check weighs the same: the critical ones already veto on
/// their own (see [`CRITICAL_CHECKS`]), so the score only has to say how much else is wrong.
fn score(checks: &[Check]) -> f64 {
    if checks.is_empty() {
        return 0.0;
    }
    checks.iter().filter(|c| c.passed).count() as f64 / checks.len() as f64
}

// ---------------------------------------------------------------------------------------------
// Scene-change helpers.
// ---------------------------------------------------------------------------------------------

/// Mean absolute difference between two signatures (8-bit levels).
fn signature_distance(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / n as f32
}

/// The `q` quantile (0.0–1.0) of the values, by nearest rank.
fn percentile(values: &[f32], q: f64) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let rank = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[rank]
}

/// Inclusive index ranges where `values` exceed `threshold`; runs separated by fewer than
/// `merge_gap` values are joined (one transition can dip briefly below the threshold).
fn runs_above(values: &[f32], threshold: f32, merge_gap: usize) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, _) in values.iter().enumerate().filter(|(_, v)| **v > threshold) {
        match runs.last_mut() {
            Some((_, end)) if i - *end <= merge_gap => *end = i,
            _ => runs.push((i, i)),
        }
    }
    runs
}

fn peak_index(values: &[f32], start: usize, end: usize) -> usize {
    (start..=end).max_by(|&a, &b| values[a].total_cmp(&values[b])).unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A luma-only sequence: `scenes` holds (luma, frames); `fade` frames blend each pair.
    fn luma_sequence(scenes: &[(f32, usize)], fade: usize) -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        for (i, &(luma, frames)) in scenes.iter().enumerate() {
            out.extend(std::iter::repeat_n(vec![luma], frames));
            if let Some(&(next, _)) = scenes.get(i + 1) {
                out.extend((1..=fade).map(|k| vec![luma + (next - luma) * k as f32 / (fade + 1) as f32]));
            }
        }
        out
    }

    /// Deterministic small jitter, standing in for motion and encoder noise.
    fn jitter(seq: &mut [Vec<f32>], amplitude: f32) {
        let mut state = 0x2545_f491_u32;
        for v in seq.iter_mut().flatten() {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *v += (state as f32 / u32::MAX as f32 - 0.5) * 2.0 * amplitude;
        }
    }

    #[test]
    fn crossfaded_scenes_are_counted() {
        let seq = luma_sequence(&[(80.0, 60), (40.0, 60), (140.0, 60)], 12);
        assert_eq!(count_scenes(&seq, 12), 3);
    }

    #[test]
    fn hard_cuts_are_counted() {
        let seq = luma_sequence(&[(30.0, 50), (200.0, 50), (100.0, 50), (160.0, 50)], 0);
        assert_eq!(count_scenes(&seq, 12), 4);
    }

    #[test]
    fn transitions_are_located_near_their_centre() {
        let seq = luma_sequence(&[(80.0, 60), (160.0, 60)], 12);
        let found = detect_transitions(&seq, 12);
        assert_eq!(found.len(), 1);
        assert!((60..=72).contains(&found[0]), "{found:?}");
    }

    #[test]
    fn noise_and_slow_drift_are_not_scene_changes() {
        let mut seq: Vec<Vec<f32>> = (0..300).map(|i| vec![100.0 + i as f32 * 0.05]).collect();
        jitter(&mut seq, 1.5);
        assert_eq!(count_scenes(&seq, 12), 1);
    }

    #[test]
    fn scenes_are_found_through_motion_noise() {
        let mut seq = luma_sequence(&[(90.0, 75), (60.0, 75), (120.0, 75)], 12);
        jitter(&mut seq, 2.0);
        assert_eq!(count_scenes(&seq, 12), 3);
    }

    #[test]
    fn a_single_flash_frame_is_not_a_scene() {
        let mut seq = luma_sequence(&[(100.0, 120)], 0);
        seq[60] = vec![250.0];
        assert_eq!(count_scenes(&seq, 12), 1);
    }

    #[test]
    fn fades_at_the_edges_are_not_scene_changes() {
        let mut seq = luma_sequence(&[(0.0, 1), (120.0, 100), (0.0, 1)], 12);
        seq.remove(0);
        seq.pop();
        assert_eq!(count_scenes(&seq, 12), 1);
    }

    #[test]
    fn short_or_empty_sequences_do_not_panic() {
        assert_eq!(count_scenes(&[], 12), 0);
        assert_eq!(count_scenes(&[vec![1.0]], 12), 1);
        assert_eq!(count_scenes(&luma_sequence(&[(10.0, 5), (200.0, 5)], 0), 0), 2);
    }

    #[test]
    fn language_codes_map_to_iso639_1() {
        for (three, two) in
            [("eng", "en"), ("fra", "fr"), ("fre", "fr"), ("spa", "es"), ("deu", "de"), ("ger", "de"), ("ita", "it")]
        {
            assert_eq!(iso639_1(three), Some(two), "{three}");
        }
        for (three, two) in [("por", "pt"), ("jpn", "ja"), ("zho", "zh"), ("chi", "zh"), ("kor", "ko"), ("ENG", "en")] {
            assert_eq!(iso639_1(three), Some(two), "{three}");
        }
        assert_eq!(iso639_1("en"), Some("en"));
        assert_eq!(iso639_1("und"), None);
        assert_eq!(iso639_1(""), None);
        assert_eq!(iso639_1("xyz"), None);
    }

    /// A synthetic luma plane: a horizontal ramp from `dark` to `light` with a bright square
    /// at `square_x`, like a gradient background with a drifting shape.
    fn luma_plane(width: usize, height: usize, dark: f32, light: f32, square_x: usize) -> Vec<u8> {
        let mut plane = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                let in_square = (square_x..square_x + 40).contains(&x) && (60..100).contains(&y);
                let ramp = dark + (light - dark) * x as f32 / width as f32;
                plane.push(if in_square { 235 } else { ramp.round() as u8 });
            }
        }
        plane
    }

    #[test]
    fn histogram_signatures_see_crossfades_but_not_motion() {
        let (w, h, fade) = (320, 180, 12);
        let scenes = [(20.0, 90.0), (120.0, 200.0), (60.0, 140.0)];
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for (i, &(dark, light)) in scenes.iter().enumerate() {
            // The square drifts across the frame through every scene.
            frames.extend((0..50).map(|f| luma_plane(w, h, dark, light, (f * 5) % (w - 40))));
            if let Some(&(next_dark, next_light)) = scenes.get(i + 1) {
                let (a, b) = (luma_plane(w, h, dark, light, 0), luma_plane(w, h, next_dark, next_light, 0));
                frames.extend((1..=fade).map(|k| {
                    let t = k as f32 / (fade + 1) as f32;
                    a.iter()
                        .zip(&b)
                        .map(|(&p, &q)| (f32::from(p) * (1.0 - t) + f32::from(q) * t).round() as u8)
                        .collect()
                }));
            }
        }
        let signatures: Vec<Vec<f32>> = frames
            .iter()
            .map(|plane| {
                let mut signature = Vec::new();
                plane_histogram(plane, w, w as u32, h as u32, &mut signature);
                signature
            })
            .collect();
        assert_eq!(signatures[0].len(), BINS);
        assert!((signatures[0].iter().sum::<f32>() - 255.0).abs() < 0.01);
        assert_eq!(count_scenes(&signatures, fade), 3);
    }

    #[test]
    fn soft_bins_move_mass_in_proportion_to_a_shift() {
        let histogram = |value: u8| {
            let mut out = Vec::new();
            plane_histogram(&[value; 64], 8, 8, 8, &mut out);
            out
        };
        let moved = |shift: u8| {
            let (a, b) = (histogram(100), histogram(100 + shift));
            a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / 2.0
        };
        let (one, four, eight) = (moved(1), moved(4), moved(8));
        assert!(0.0 < one && one < four && four < eight, "{one} {four} {eight}");
        // A quarter-bin shift moves roughly a quarter of the mass (255 / 4 ≈ 64).
        assert!((40.0..=70.0).contains(&four), "{four}");
    }

    #[test]
    fn score_is_the_fraction_passed() {
        let c = |passed| make_check("x", passed, Value::Null, Value::Null, "");
        assert_eq!(score(&[c(true), c(true), c(false), c(true)]), 0.75);
        assert_eq!(score(&[]), 0.0);
    }
}
