//! RenderExecutor throughput on a standard-tier plan (1280x720, 25 fps, libx264 veryfast,
//! crf 23, AAC 128 kb/s, 10 s / 240p preview, as in config/v33.json), in frames per second:
//! the whole render (composition, music, both encodes, keyframes, VTT), and the compositor
//! on its own.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use agents::AgentContext;
use agents::domain::{
    AudioPlan, Camera, CaptionPosition, Cue, Gradient, Motion, RenderPlan, Rgb, Scale, ScenePlan, Shape, ShapeKind,
    SubtitleTrack, Typography, VideoSettings,
};
use agents::render::compose::{ChannelOrder, Compositor, FrameMut};
use agents::render::{PreviewSettings, RenderRequest, render, text};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
const SECONDS: f64 = 6.0;

/// Three two-second scenes with different camera moves, five shapes each, captions.
fn standard_plan() -> RenderPlan {
    let captions = ["A quiet start", "Ideas take shape", "See you soon"];
    let palette = [Rgb(18, 24, 64), Rgb(120, 40, 90), Rgb(240, 170, 60), Rgb(40, 160, 150), Rgb(230, 230, 240)];
    let cameras = [Camera::Dolly, Camera::Pan, Camera::Orbital];
    let dur = SECONDS / captions.len() as f64;
    let scenes = (0..captions.len())
        .map(|i| ScenePlan {
            start_s: dur * i as f64,
            duration_s: dur,
            caption: captions[i].into(),
            narration: String::new(),
            background: Gradient { from: palette[i], to: palette[(i + 2) % 5], angle_deg: 40.0 * i as f32 },
            shapes: (0..5)
                .map(|k| Shape {
                    kind: [ShapeKind::Circle, ShapeKind::Rect, ShapeKind::Ring][k % 3],
                    color: palette[(i + k + 1) % 5],
                    alpha: 0.5 + 0.1 * k as f32,
                    x: 0.15 + 0.17 * k as f32,
                    y: 0.35 + 0.08 * (k % 3) as f32,
                    size: 0.1 + 0.02 * k as f32,
                })
                .collect(),
            motion: Motion { camera: cameras[i], intensity: 0.7 },
            typography: Typography {
                size: 0.065,
                color: Rgb(255, 255, 255),
                box_color: Rgb(10, 10, 20),
                box_alpha: 0.6,
                position: CaptionPosition::Bottom,
                safe_margin: 0.06,
                max_lines: 2,
            },
            words: Vec::new(),
            illustrations: Vec::new(),
        })
        .collect();
    RenderPlan {
        video: VideoSettings {
            width: 1280,
            height: 720,
            fps: 25,
            x264_preset: agents::domain::X264Preset::Veryfast,
            crf: 23,
            audio_bitrate: 128_000,
        },
        audio: AudioPlan {
            sample_rate: 48_000,
            tempo_bpm: 100.0,
            root_hz: 220.0,
            scale: Scale::Major,
            energy: 0.6,
            gain: 0.7,
        },
        scenes,
        transition_s: 0.5,
        subtitles: vec![SubtitleTrack {
            lang: "en".into(),
            cues: (0..captions.len())
                .map(|i| Cue { start_s: dur * i as f64, end_s: dur * (i + 1) as f64, text: captions[i].into() })
                .collect(),
        }],
        seed: 11,
        narration: Vec::new(),
        mix: Default::default(),
    }
}

fn bench_render(c: &mut Criterion) {
    let plan = standard_plan();
    let dir = tempfile::tempdir().expect("temporary directory");
    let request = RenderRequest {
        out_dir: dir.path().to_path_buf(),
        font_path: FONT.into(),
        assets_dir: None,
        preview: PreviewSettings { max_seconds: 10.0, short_side: 240 },
    };
    let ctx = AgentContext::with_seed(1);

    let mut group = c.benchmark_group("render_720p_standard");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(plan.frame_count()));
    group.bench_function("full_render_6s", |b| {
        b.iter(|| black_box(render(&plan, &request, &ctx).expect("render succeeds")))
    });

    let typesetter = text::Typesetter::new(Path::new(FONT), "en", None).expect("fonts");
    let mut compositor = Compositor::new(&plan, typesetter, 1280, 720, ChannelOrder::Bgr).expect("compositor");
    let mut frame = vec![0u8; 1280 * 720 * 3];
    let frames = plan.frame_count();
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("compose_only_6s", |b| {
        b.iter(|| {
            for i in 0..frames {
                compositor.draw(i as f64 / 25.0, &mut FrameMut { data: &mut frame, stride: 1280 * 3 });
            }
            black_box(&frame);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
