//! The documents that flow between agents: the production manifest (what the video says),
//! consistency markers (how it looks and feels) and the render plan (exactly what to draw,
//! play and encode). They are plain data, serialised into the job's memory as JSON.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A camera move; the closed set the v33 design allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Camera {
    /// Move towards the subject: the scene grows slowly.
    Dolly,
    /// Sideways travel across the scene.
    Pan,
    /// Optical zoom: faster growth than dolly, centred.
    Zoom,
    /// No camera motion; shapes still drift gently.
    Static,
    /// Circle around the subject.
    Orbital,
}

impl Camera {
    /// Every allowed move, in a fixed order (planners cycle through it).
    pub const ALL: [Camera; 5] = [Camera::Dolly, Camera::Pan, Camera::Zoom, Camera::Static, Camera::Orbital];

    /// The move as written in manifests and prompts.
    pub fn as_str(self) -> &'static str {
        match self {
            Camera::Dolly => "dolly",
            Camera::Pan => "pan",
            Camera::Zoom => "zoom",
            Camera::Static => "static",
            Camera::Orbital => "orbital",
        }
    }
}

impl FromStr for Camera {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dolly" => Ok(Camera::Dolly),
            "pan" => Ok(Camera::Pan),
            "zoom" => Ok(Camera::Zoom),
            "static" => Ok(Camera::Static),
            "orbital" | "orbit" => Ok(Camera::Orbital),
            other => Err(format!("unknown camera move '{other}' (allowed: dolly, pan, zoom, static, orbital)")),
        }
    }
}

/// The output frame shape. Only the four shapes social and broadcast targets use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AspectRatio {
    /// Landscape, 16:9.
    Landscape16x9,
    /// Vertical, 9:16 (stories, shorts).
    Vertical9x16,
    /// Square, 1:1.
    Square1x1,
    /// Portrait feed, 4:5.
    Portrait4x5,
}

impl AspectRatio {
    /// The ratio as written in requests and config, e.g. `"16:9"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AspectRatio::Landscape16x9 => "16:9",
            AspectRatio::Vertical9x16 => "9:16",
            AspectRatio::Square1x1 => "1:1",
            AspectRatio::Portrait4x5 => "4:5",
        }
    }

    /// Frame size for a tier whose short side is `short_side` pixels; both sides are even,
    /// as H.264 with 4:2:0 chroma requires.
    pub fn frame_size(self, short_side: u32) -> (u32, u32) {
        let even = |v: u32| v & !1;
        let long_16_9 = even((short_side as u64 * 16 / 9) as u32);
        match self {
            AspectRatio::Landscape16x9 => (long_16_9, even(short_side)),
            AspectRatio::Vertical9x16 => (even(short_side), long_16_9),
            AspectRatio::Square1x1 => (even(short_side), even(short_side)),
            AspectRatio::Portrait4x5 => (even(short_side), even(short_side * 5 / 4)),
        }
    }
}

impl FromStr for AspectRatio {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "16:9" => Ok(AspectRatio::Landscape16x9),
            "9:16" => Ok(AspectRatio::Vertical9x16),
            "1:1" => Ok(AspectRatio::Square1x1),
            "4:5" => Ok(AspectRatio::Portrait4x5),
            other => Err(format!("unsupported aspect ratio '{other}' (allowed: 16:9, 9:16, 1:1, 4:5)")),
        }
    }
}

impl fmt::Display for AspectRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AspectRatio {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AspectRatio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An sRGB colour, written as `#rrggbb` in JSON so people can read and edit palettes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// Linear blend towards `other` by `t` (0.0 = self, 1.0 = other).
    pub fn mix(self, other: Rgb, t: f32) -> Rgb {
        let l = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * t.clamp(0.0, 1.0)).round() as u8;
        Rgb(l(self.0, other.0), l(self.1, other.1), l(self.2, other.2))
    }

    /// WCAG relative luminance (0.0 black – 1.0 white).
    pub fn luminance(self) -> f64 {
        let ch = |c: u8| {
            let c = c as f64 / 255.0;
            if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        0.2126 * ch(self.0) + 0.7152 * ch(self.1) + 0.0722 * ch(self.2)
    }

    /// WCAG contrast ratio between two colours (1.0–21.0); captions need ≥ 4.5.
    pub fn contrast(self, other: Rgb) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (hi, lo) = if a > b { (a, b) } else { (b, a) };
        (hi + 0.05) / (lo + 0.05)
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

impl FromStr for Rgb {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let h = s.trim().trim_start_matches('#');
        if h.len() != 6 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("'{s}' is not a #rrggbb colour"));
        }
        let p = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).map_err(|e| e.to_string());
        Ok(Rgb(p(0)?, p(2)?, p(4)?))
    }
}

impl Serialize for Rgb {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Rgb {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One scene of the storyboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    /// What the scene shows, in words (drives shapes and colours).
    pub description: String,
    /// The on-screen caption, also the subtitle cue for this scene.
    pub caption: String,
    /// What the voice says during the scene. Empty in manifests written before narration
    /// existed; readers then speak the caption (`Scene::spoken_text`).
    #[serde(default)]
    pub narration: String,
    /// How long the scene lasts, in seconds.
    pub duration_s: f64,
    /// The camera move.
    pub camera: Camera,
    /// The scene's mood word (e.g. "calm", "energetic").
    pub mood: String,
}

impl Scene {
    /// The text the narrator speaks: the narration line, or the caption when a manifest has
    /// none, so older manifests and human edits that cleared it still get a voice.
    pub fn spoken_text(&self) -> &str {
        if self.narration.trim().is_empty() { &self.caption } else { &self.narration }
    }
}

/// How the whole video should look and feel, shared by every scene (and reusable across a
/// brand's jobs through the consistency cache).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyMarkers {
    /// A short style name, e.g. "minimal", "bold", "cinematic".
    pub style: String,
    /// Three to five colours; the first is the dominant background.
    pub palette: Vec<Rgb>,
    /// The overall mood word.
    pub mood: String,
    /// Lighting word, e.g. "warm dawn", "cold night".
    pub lighting: String,
}

/// The creative plan for a job: what the video says, scene by scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductionManifest {
    /// A short title derived from the brief.
    pub title: String,
    /// The voice-over / narrative script; captions are drawn from it.
    pub script: String,
    /// The scenes in order; durations add up to the requested duration.
    pub scenes: Vec<Scene>,
    /// Look and feel shared by all scenes.
    pub markers: ConsistencyMarkers,
    /// The language captions are written in (ISO 639-1).
    pub language: String,
    /// Whether this manifest came from the fast-track path.
    pub fast_track: bool,
}

impl ProductionManifest {
    /// Total planned duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.scenes.iter().map(|s| s.duration_s).sum()
    }
}

/// One timed subtitle cue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cue {
    /// Start time in seconds from the beginning of the video.
    pub start_s: f64,
    /// End time in seconds.
    pub end_s: f64,
    /// The text shown.
    pub text: String,
}

/// The subtitles for one language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtitleTrack {
    /// ISO 639-1 code, e.g. "en".
    pub lang: String,
    /// Cues in time order, one per scene.
    pub cues: Vec<Cue>,
}

/// A linear gradient that fills the frame behind everything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gradient {
    /// Colour at the start of the gradient axis.
    pub from: Rgb,
    /// Colour at the end of the gradient axis.
    pub to: Rgb,
    /// Direction of the axis in degrees (0 = left→right, 90 = top→bottom).
    pub angle_deg: f32,
}

/// The kinds of shape the compositor can draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeKind {
    /// A filled disc.
    Circle,
    /// A filled rectangle with rounded corners.
    Rect,
    /// An annulus (circle outline, thick).
    Ring,
}

/// A shape placed in normalised scene coordinates (0.0–1.0 on both axes, relative to the
/// frame) so one plan renders at any resolution and aspect ratio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// What to draw.
    pub kind: ShapeKind,
    /// Fill colour.
    pub color: Rgb,
    /// Opacity, 0.0–1.0.
    pub alpha: f32,
    /// Centre, x (0 = left edge, 1 = right edge).
    pub x: f32,
    /// Centre, y (0 = top edge, 1 = bottom edge).
    pub y: f32,
    /// Size relative to the frame's short side (radius for circles, half-width for rects).
    pub size: f32,
}

/// Camera motion for a scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Motion {
    /// The move.
    pub camera: Camera,
    /// How strong it is, 0.0 (barely) – 1.0 (pronounced).
    pub intensity: f32,
}

/// Where the caption sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptionPosition {
    /// Lower third, the broadcast default.
    Bottom,
    /// Centred, for title cards.
    Center,
}

/// How the caption is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Typography {
    /// Font size relative to the frame's short side (e.g. 0.06).
    pub size: f32,
    /// Text colour.
    pub color: Rgb,
    /// Colour of the box behind the text that guarantees legibility.
    pub box_color: Rgb,
    /// Opacity of that box, 0.0–1.0 (0 = no box).
    pub box_alpha: f32,
    /// Where the caption sits.
    pub position: CaptionPosition,
    /// Safe margin on every side, as a fraction of the frame's width/height (e.g. 0.08).
    pub safe_margin: f32,
    /// The most lines a caption may wrap to before it is shrunk.
    pub max_lines: u32,
}

/// Everything needed to draw one scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenePlan {
    /// Start time in seconds.
    pub start_s: f64,
    /// Duration in seconds.
    pub duration_s: f64,
    /// Caption text (source language).
    pub caption: String,
    /// Narration line the voice speaks in this scene (source language).
    #[serde(default)]
    pub narration: String,
    /// Background.
    pub background: Gradient,
    /// Shapes in back-to-front order.
    pub shapes: Vec<Shape>,
    /// Camera motion.
    pub motion: Motion,
    /// Caption styling.
    pub typography: Typography,
    /// When each narrated word is spoken, in seconds from the start of the video (empty when
    /// the scene is not narrated). Subtitles are cut from these, and kinetic captions may
    /// highlight words with them.
    #[serde(default)]
    pub words: Vec<WordTiming>,
    /// The pictures the scene shows (0–3), chosen by meaning with their scores; a reviewer
    /// may swap one for another name from the set. Empty: the scene is typography only.
    #[serde(default)]
    pub illustrations: Vec<Illustration>,
}

/// One illustration placed in a scene: a picture of the Fluent Emoji Flat set, chosen by the
/// illustrator (or named by a reviewer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Illustration {
    /// Icon name in the set (e.g. `bread`, `safety-vest`).
    pub name: String,
    /// Relevance score the illustrator gave it (cosine similarity plus keyword bonuses); a
    /// reviewer's choice keeps the score of the picture it replaced.
    pub score: f32,
    /// Whether the scene's text names the picture's subject outright (its CLDR label).
    #[serde(default)]
    pub named: bool,
}

/// One spoken word and when it is heard. Shared by the voice (which measures it), the
/// subtitles (cue starts) and the compositor (captions that follow the speech).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordTiming {
    /// The word as written in the narration, punctuation attached.
    pub word: String,
    /// When the word starts, in seconds (from the start of the video in a render plan, from
    /// the start of the clip in a synthesis result).
    pub start_s: f64,
    /// When it ends, same origin.
    pub end_s: f64,
}

/// A narration clip placed on the video's timeline: one scene's speech in one language,
/// synthesised by the voicing stage before the render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NarrationClip {
    /// A 16-bit PCM mono WAV file (any sample rate; the mixer resamples).
    pub path: std::path::PathBuf,
    /// Where the clip starts, in seconds from the start of the video.
    pub start_s: f64,
    /// Language of the speech (ISO 639-1); the mix carries the first language's clips.
    pub lang: String,
}

/// How the final soundtrack is mixed: the music bed ducks under the voice, then the whole mix
/// is brought to a loudness target with a true-peak ceiling (EBU R128 / ITU-R BS.1770, the
/// levels streaming platforms normalise to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixSettings {
    /// Integrated loudness of the final mix, LUFS.
    pub target_lufs: f64,
    /// Highest true peak allowed, dBTP (AAC encoding can add a few tenths: the limiter aims
    /// half a decibel lower).
    pub true_peak_dbtp: f64,
    /// How far the bed drops while the voice speaks, dB.
    pub duck_db: f32,
    /// Time the bed takes to duck when speech starts, ms.
    pub duck_attack_ms: f32,
    /// Time the bed takes to come back after speech ends, ms.
    pub duck_release_ms: f32,
}

impl Default for MixSettings {
    fn default() -> Self {
        Self { target_lufs: -14.0, true_peak_dbtp: -1.0, duck_db: 14.0, duck_attack_ms: 60.0, duck_release_ms: 450.0 }
    }
}

/// Encoder settings for a quality tier, taken from config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoSettings {
    /// Frame width in pixels (even).
    pub width: u32,
    /// Frame height in pixels (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// libx264 preset, e.g. veryfast.
    pub x264_preset: X264Preset,
    /// libx264 constant rate factor (lower = better quality, bigger file).
    pub crf: u8,
    /// AAC bitrate in bits per second.
    pub audio_bitrate: u32,
}

/// A libx264 speed/quality preset. A closed list: a misspelt preset is refused where the
/// config is read (naming the key), not when the encoder opens in the middle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum X264Preset {
    /// Fastest, largest files.
    Ultrafast,
    /// libx264's superfast.
    Superfast,
    /// libx264's veryfast.
    Veryfast,
    /// libx264's faster.
    Faster,
    /// libx264's fast.
    Fast,
    /// libx264's default.
    Medium,
    /// libx264's slow.
    Slow,
    /// libx264's slower.
    Slower,
    /// libx264's veryslow.
    Veryslow,
    /// Slowest, for reference encodes.
    Placebo,
}

impl X264Preset {
    /// Every preset, fastest first (the order the derived `Ord` follows).
    pub const ALL: [X264Preset; 10] = [
        X264Preset::Ultrafast,
        X264Preset::Superfast,
        X264Preset::Veryfast,
        X264Preset::Faster,
        X264Preset::Fast,
        X264Preset::Medium,
        X264Preset::Slow,
        X264Preset::Slower,
        X264Preset::Veryslow,
        X264Preset::Placebo,
    ];

    /// The name libx264 knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            X264Preset::Ultrafast => "ultrafast",
            X264Preset::Superfast => "superfast",
            X264Preset::Veryfast => "veryfast",
            X264Preset::Faster => "faster",
            X264Preset::Fast => "fast",
            X264Preset::Medium => "medium",
            X264Preset::Slow => "slow",
            X264Preset::Slower => "slower",
            X264Preset::Veryslow => "veryslow",
            X264Preset::Placebo => "placebo",
        }
    }
}

impl fmt::Display for X264Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for X264Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        X264Preset::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = X264Preset::ALL.iter().map(|p| p.as_str()).collect();
            format!("'{s}' is not a libx264 preset (one of {})", names.join(", "))
        })
    }
}

/// Musical scale of the audio bed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Bright, upbeat.
    Major,
    /// Sombre, reflective.
    Minor,
}

/// The synthesised music bed, chosen from the mood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioPlan {
    /// Output sample rate (48000).
    pub sample_rate: u32,
    /// Tempo in beats per minute.
    pub tempo_bpm: f32,
    /// Root note frequency in Hz.
    pub root_hz: f32,
    /// Major or minor.
    pub scale: Scale,
    /// 0.0 (soft pads) – 1.0 (bright plucks and a pulse).
    pub energy: f32,
    /// Master gain, 0.0–1.0.
    pub gain: f32,
}

/// Exactly what the RenderExecutor draws, plays and encodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderPlan {
    /// Encoder settings (resolution, fps, preset).
    pub video: VideoSettings,
    /// The music bed.
    pub audio: AudioPlan,
    /// Scenes in order; `start_s` values are contiguous.
    pub scenes: Vec<ScenePlan>,
    /// Length of the crossfade between scenes, in seconds.
    pub transition_s: f64,
    /// Subtitle tracks; the first is the source language.
    pub subtitles: Vec<SubtitleTrack>,
    /// Seed for the few random choices the renderer makes (shape drift phases).
    pub seed: u64,
    /// Narration clips to mix over the music bed (empty: music only).
    #[serde(default)]
    pub narration: Vec<NarrationClip>,
    /// Ducking and loudness of the final mix.
    #[serde(default)]
    pub mix: MixSettings,
}

impl RenderPlan {
    /// Total duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.scenes.last().map(|s| s.start_s + s.duration_s).unwrap_or(0.0)
    }
    /// Total number of video frames.
    pub fn frame_count(&self) -> u64 {
        (self.duration_s() * self.video.fps as f64).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x264_presets_read_and_print_libx264s_names_fastest_first() {
        for (i, p) in X264Preset::ALL.iter().enumerate() {
            assert_eq!(p.as_str().parse::<X264Preset>(), Ok(*p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
            assert!(X264Preset::ALL[..i].iter().all(|faster| faster < p));
        }
        assert!("turbo".parse::<X264Preset>().unwrap_err().contains("veryfast"));
    }

    #[test]
    fn frame_sizes_are_even_and_match_the_ratio() {
        assert_eq!(AspectRatio::Landscape16x9.frame_size(720), (1280, 720));
        assert_eq!(AspectRatio::Vertical9x16.frame_size(720), (720, 1280));
        assert_eq!(AspectRatio::Square1x1.frame_size(720), (720, 720));
        assert_eq!(AspectRatio::Portrait4x5.frame_size(720), (720, 900));
        assert_eq!(AspectRatio::Landscape16x9.frame_size(480), (852, 480));
    }

    #[test]
    fn colours_round_trip_and_contrast_is_wcag() {
        let c: Rgb = "#1a2B3c".parse().unwrap();
        assert_eq!(c.to_string(), "#1a2b3c");
        assert!("#12345".parse::<Rgb>().is_err());
        let ratio = Rgb(0, 0, 0).contrast(Rgb(255, 255, 255));
        assert!((ratio - 21.0).abs() < 0.01, "{ratio}");
    }

    #[test]
    fn unknown_camera_and_ratio_are_rejected() {
        assert!("crane".parse::<Camera>().is_err());
        assert!("7:3".parse::<AspectRatio>().is_err());
        assert_eq!("Orbital".parse::<Camera>().unwrap(), Camera::Orbital);
    }
}
