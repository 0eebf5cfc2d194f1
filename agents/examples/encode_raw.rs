//! Measures the render path in pieces, for `scripts/encoder_vs_ffmpeg.sh`:
//!
//! - `encode_raw dump FRAMES OUT.rgb [WxH] [FPS]` composes FRAMES frames of a demo plan and
//!   writes them as raw RGB24, the input both encoders are timed on;
//! - `encode_raw encode IN.rgb WxH FPS PRESET CRF OUT.mp4 [rgb24|bgr24]` encodes raw frames
//!   (RGB24 unless told otherwise) with our encoder loop (swscale → libx264 → MP4) and
//!   prints frames per second;
//! - `encode_raw render OUT_DIR [SECONDS] [WxH] [FPS] [PRESET]` runs the whole RenderExecutor
//!   on the demo plan and prints the wall time.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use agents::AgentContext;
use agents::domain::{
    AudioPlan, Camera, CaptionPosition, Cue, Gradient, Motion, RenderPlan, Rgb, Scale, ScenePlan, Shape, ShapeKind,
    SubtitleTrack, Typography, VideoSettings,
};
use agents::render::compose::{ChannelOrder, Compositor, FrameMut};
use agents::render::encode::{FrameSource, Mp4Spec, Mp4Writer, VideoSpec};
use agents::render::{PreviewSettings, RenderRequest, render, text};
use ffmpeg_next as ffmpeg;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

/// A five-scene plan of `seconds` seconds that exercises every camera move and shape.
fn demo_plan(seconds: f64, width: u32, height: u32, fps: u32, preset: &str) -> RenderPlan {
    let captions = [
        "Every morning starts with a single idea",
        "Sketch it, test it, throw half of it away",
        "The good part survives the second draft",
        "Ship it before it is perfect",
        "Then listen, and start again tomorrow",
    ];
    let cameras = [Camera::Dolly, Camera::Pan, Camera::Zoom, Camera::Orbital, Camera::Static];
    let palette = [Rgb(18, 24, 64), Rgb(120, 40, 90), Rgb(240, 170, 60), Rgb(40, 160, 150), Rgb(230, 230, 240)];
    let n = captions.len();
    let dur = seconds / n as f64;
    let scenes = (0..n)
        .map(|i| ScenePlan {
            start_s: dur * i as f64,
            duration_s: dur,
            caption: captions[i].into(),
            narration: String::new(),
            background: Gradient {
                from: palette[i % 5],
                to: palette[(i + 1) % 5].mix(Rgb(0, 0, 0), 0.5),
                angle_deg: 35.0 * i as f32,
            },
            shapes: (0..5)
                .map(|k| Shape {
                    kind: [ShapeKind::Circle, ShapeKind::Rect, ShapeKind::Ring][k % 3],
                    color: palette[(i + k + 2) % 5],
                    alpha: 0.45 + 0.1 * k as f32,
                    x: 0.15 + 0.17 * k as f32,
                    y: 0.3 + 0.1 * ((k * 7 + i) % 4) as f32,
                    size: 0.08 + 0.03 * ((k + i) % 3) as f32,
                })
                .collect(),
            motion: Motion { camera: cameras[i], intensity: 0.7 },
            typography: Typography {
                size: 0.065,
                color: Rgb(255, 255, 255),
                box_color: Rgb(10, 10, 20),
                box_alpha: 0.6,
                position: if i == 0 { CaptionPosition::Center } else { CaptionPosition::Bottom },
                safe_margin: 0.06,
                max_lines: 2,
            },
            words: Vec::new(),
            illustrations: Vec::new(),
        })
        .collect();
    RenderPlan {
        video: VideoSettings {
            width,
            height,
            fps,
            x264_preset: preset.parse().expect("an x264 preset"),
            crf: 23,
            audio_bitrate: 128_000,
        },
        audio: AudioPlan {
            sample_rate: 48_000,
            tempo_bpm: 96.0,
            root_hz: 196.0,
            scale: Scale::Major,
            energy: 0.6,
            gain: 0.7,
        },
        scenes,
        transition_s: 0.5,
        subtitles: vec![SubtitleTrack {
            lang: "en".into(),
            cues: (0..n)
                .map(|i| Cue { start_s: dur * i as f64, end_s: dur * (i + 1) as f64, text: captions[i].into() })
                .collect(),
        }],
        seed: 2024,
        narration: Vec::new(),
        mix: Default::default(),
    }
}

fn size_arg(s: Option<&String>, default: (u32, u32)) -> (u32, u32) {
    s.and_then(|s| s.split_once('x')).map(|(w, h)| (w.parse().unwrap(), h.parse().unwrap())).unwrap_or(default)
}

fn dump(args: &[String]) {
    let frames: u64 = args[0].parse().expect("frame count");
    let out = PathBuf::from(&args[1]);
    let (w, h) = size_arg(args.get(2), (1280, 720));
    let fps: u32 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(25);
    let plan = demo_plan(frames as f64 / fps as f64, w, h, fps, "veryfast");
    let typesetter = text::Typesetter::new(Path::new(FONT), "en", None).expect("fonts");
    let mut comp = Compositor::new(&plan, typesetter, w, h, ChannelOrder::Rgb).expect("compositor");
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out).expect("create output"));
    let started = Instant::now();
    for i in 0..frames {
        comp.draw(i as f64 / fps as f64, &mut FrameMut { data: &mut buf, stride: w as usize * 3 });
        file.write_all(&buf).expect("write frame");
    }
    file.flush().expect("flush");
    let s = started.elapsed().as_secs_f64();
    println!("composed {frames} frames {w}x{h} in {s:.3} s ({:.1} fps incl. writing)", frames as f64 / s);
}

fn encode(args: &[String]) {
    let input = PathBuf::from(&args[0]);
    let (w, h) = size_arg(args.get(1), (1280, 720));
    let fps: u32 = args[2].parse().unwrap();
    let preset: agents::domain::X264Preset = args[3].parse().expect("an x264 preset");
    let crf: u8 = args[4].parse().unwrap();
    let out = PathBuf::from(&args[5]);
    let pixel = match args.get(6).map(String::as_str) {
        None | Some("rgb24") => ffmpeg::format::Pixel::RGB24,
        Some("bgr24") => ffmpeg::format::Pixel::BGR24,
        Some(other) => panic!("unsupported raw pixel format {other}"),
    };
    let spec = Mp4Spec {
        video: VideoSpec { width: w, height: h, fps, preset, crf },
        audio: vec![],
        subtitle_languages: vec![],
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 22, std::fs::File::open(&input).expect("open input"));
    let started = Instant::now();
    let source = FrameSource { format: pixel, width: w, height: h };
    let mut writer = Mp4Writer::create(&out, &spec, source).expect("writer");
    let mut rgb = ffmpeg::frame::Video::new(source.format, w, h);
    let row = w as usize * 3;
    let mut frames = 0u64;
    'frames: loop {
        let stride = rgb.stride(0);
        let data = rgb.data_mut(0);
        // Unpadded rows arrive in one read; padded ones row by row.
        let (rows, chunk) = if stride == row { (1, row * h as usize) } else { (h as usize, row) };
        for y in 0..rows {
            match reader.read_exact(&mut data[y * stride..y * stride + chunk]) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && y == 0 => break 'frames,
                Err(e) => panic!("read: {e}"),
            }
        }
        writer.push_frame(&rgb).expect("encode");
        frames += 1;
    }
    writer.finish().expect("finish");
    let s = started.elapsed().as_secs_f64();
    println!("encoded {frames} frames in {s:.3} s: {:.1} fps", frames as f64 / s);
}

fn full_render(args: &[String]) {
    let out = PathBuf::from(&args[0]);
    let seconds: f64 = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(30.0);
    let (w, h) = size_arg(args.get(2), (1280, 720));
    let fps: u32 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(25);
    let preset = args.get(4).cloned().unwrap_or_else(|| "veryfast".into());
    let plan = demo_plan(seconds, w, h, fps, &preset);
    let req = RenderRequest {
        out_dir: out,
        font_path: FONT.into(),
        assets_dir: None,
        preview: PreviewSettings { max_seconds: 10.0, short_side: 240 },
    };
    let started = Instant::now();
    let result = render(&plan, &req, &AgentContext::with_seed(1)).expect("render");
    println!(
        "rendered {} frames {}x{} @ {} ({preset}) in {:.3} s wall: {:.1} fps",
        result.frames,
        result.width,
        result.height,
        result.fps,
        started.elapsed().as_secs_f64(),
        result.encode_fps
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("dump") => dump(&args[1..]),
        Some("encode") => encode(&args[1..]),
        Some("render") => full_render(&args[1..]),
        _ => {
            eprintln!("usage: encode_raw dump|encode|render ... (see the source header)");
            std::process::exit(2);
        }
    }
}
