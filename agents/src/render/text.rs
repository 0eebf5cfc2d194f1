//! Caption typesetting: lays a scene's caption out inside the frame's safe area (shaped and
//! wrapped by [`shape`](crate::render::shape), shrinking the font until it fits in
//! `max_lines`), then rasterises it once per caption state, together with its legibility
//! box, into a premultiplied RGBA overlay that the compositor blends every frame. Kinetic
//! captions keep one layout per scene and re-rasterise only when the spoken word changes.

use std::path::Path;

use ab_glyph::{Font, GlyphId, point};

use crate::agent::AgentError;
use crate::domain::{CaptionPosition, Rgb, Typography};
use crate::render::fonts::FontBook;
use crate::render::icons::IconLibrary;
use crate::render::shape::{GlyphKind, ShapedLine, Shaper, TextError};

/// Smallest em size, in pixels, that shrinking may reach before lines are truncated.
const MIN_EM_PX: f32 = 7.0;
/// How far the font may shrink relative to the planned size before truncating instead.
const MIN_SHRINK: f32 = 0.45;
/// Shrink factor applied per attempt when a caption does not fit.
const SHRINK_STEP: f32 = 0.9;
/// Padding inside the box, as a fraction of the line height.
const BOX_PAD: f32 = 0.3;
/// Line height in ems: room for Arabic and CJK ascenders, Latin descenders and marks.
const LINE_EM: f32 = 1.45;
/// The planned size (`Typography::size`) is a line's ink height; one em is this fraction.
const EM_PER_PLANNED: f32 = 0.85;
/// Longest line, in characters, a viewer reads at a glance (the usual short-video rule).
pub const MAX_CHARS_PER_LINE: usize = 42;
/// Opacity of words the narrator has not reached yet in a kinetic caption.
const UPCOMING_ALPHA: f32 = 0.35;

/// Fonts and emoji pictures captions are set with.
#[derive(Debug)]
pub struct Typesetter {
    /// The fallback chain (caption font first).
    pub fonts: FontBook,
    /// Colour emoji pictures.
    pub icons: IconLibrary,
}

impl Typesetter {
    /// The chain for `lang` over Debian's fonts with `primary` first, and emoji from the
    /// icon set under `assets_dir` (when given).
    pub fn new(primary: &Path, lang: &str, assets_dir: Option<&Path>) -> Result<Typesetter, AgentError> {
        let fonts = FontBook::debian(primary, lang)?;
        let icons = match assets_dir {
            Some(dir) => IconLibrary::at(dir),
            None => IconLibrary::unavailable("no assets directory is configured"),
        };
        Ok(Typesetter { fonts, icons })
    }

    /// A shaper over these fonts and icons.
    pub fn shaper(&self) -> Shaper<'_> {
        Shaper { fonts: &self.fonts, icons: &self.icons }
    }
}

/// The part of the frame text may use, in pixels: the typography's margin on every side,
/// and on portrait frames the strips where short-video apps draw their own buttons and
/// captions (bottom ~20 %, right ~15 %) kept free too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafeArea {
    /// Left edge.
    pub left: f32,
    /// Top edge.
    pub top: f32,
    /// Right edge.
    pub right: f32,
    /// Bottom edge.
    pub bottom: f32,
}

impl SafeArea {
    /// The safe area of a `width`×`height` frame with margin `margin` (fraction of each side).
    pub fn of(width: u32, height: u32, margin: f32) -> SafeArea {
        let (w, h) = (width as f32, height as f32);
        let m = margin.clamp(0.0, 0.45);
        let portrait = height > width;
        let bottom = if portrait { m.max(0.20) } else { m };
        let right = if portrait { m.max(0.15) } else { m };
        SafeArea { left: w * m, top: h * m, right: w * (1.0 - right), bottom: h * (1.0 - bottom) }
    }

    /// Width in pixels.
    pub fn width(&self) -> f32 {
        (self.right - self.left).max(1.0)
    }

    /// Height in pixels.
    pub fn height(&self) -> f32 {
        (self.bottom - self.top).max(1.0)
    }
}

/// A caption laid out for one frame size: the shaped lines and the em size they are set at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CaptionLayout {
    /// The wrapped (and, if it could not fit, truncated) lines.
    pub lines: Vec<ShapedLine>,
    /// One em in pixels.
    pub em_px: f32,
}

impl CaptionLayout {
    fn line_h(&self) -> f32 {
        self.em_px * LINE_EM
    }
}

/// Wraps `caption` for a `width`×`height` frame, shrinking the font until it fits inside the
/// safe area in at most `max_lines` lines of at most [`MAX_CHARS_PER_LINE`] characters; if it
/// still does not fit at the smallest size, the last line is truncated with an ellipsis.
pub(crate) fn layout_caption(
    shaper: &Shaper<'_>,
    caption: &str,
    typo: &Typography,
    width: u32,
    height: u32,
) -> Result<CaptionLayout, TextError> {
    let short = width.min(height) as f32;
    let safe = SafeArea::of(width, height, typo.safe_margin);
    let max_lines = typo.max_lines.max(1) as usize;
    let planned = (typo.size.max(0.0) * short * EM_PER_PLANNED).max(MIN_EM_PX);
    let min_em = (planned * MIN_SHRINK).max(MIN_EM_PX).min(planned);
    let mut em = planned;
    loop {
        let line_h = em * LINE_EM;
        let pad = line_h * BOX_PAD;
        let avail_w = (safe.width() - 2.0 * pad).max(em);
        let lines = shaper.wrap(caption, em, avail_w, MAX_CHARS_PER_LINE)?;
        let block_h = lines.len() as f32 * line_h + 2.0 * pad;
        let fits = lines.len() <= max_lines && block_h <= safe.height();
        if fits || em <= min_em {
            let rows_that_fit = (((safe.height() - 2.0 * pad) / line_h).floor().max(1.0)) as usize;
            let keep = max_lines.min(rows_that_fit);
            let mut lines = lines;
            if lines.len() > keep {
                lines.truncate(keep);
                if let Some(last) = lines.last_mut() {
                    *last = ellipsize(shaper, &last.text, em, avail_w, Shaper::paragraph_level(caption))?;
                }
            }
            return Ok(CaptionLayout { lines, em_px: em });
        }
        em = (em * SHRINK_STEP).max(min_em);
    }
}

/// Shortens `line` from the end until `line + "…"` fits in `max_width`.
fn ellipsize(
    shaper: &Shaper<'_>,
    line: &str,
    em: f32,
    max_width: f32,
    level: unicode_bidi::Level,
) -> Result<ShapedLine, TextError> {
    let mut chars: Vec<char> = line.chars().collect();
    loop {
        let candidate: String = chars.iter().collect::<String>().trim_end().to_owned() + "…";
        let shaped = shaper.shape_line(&candidate, em, level)?;
        if shaped.width <= max_width || chars.is_empty() {
            return Ok(shaped);
        }
        chars.pop();
    }
}

/// How far the narration has got through a kinetic caption: byte ranges of the caption's
/// text (per line) already spoken, and the word being spoken now.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CaptionProgress {
    /// Glyphs whose cluster is at or after this (line, byte) position are not spoken yet
    /// and drawn faint; `None` draws the whole caption at full strength.
    pub spoken_until: Option<(usize, usize)>,
    /// The word being spoken, as (line, byte range), drawn in the highlight colour.
    pub current: Option<(usize, std::ops::Range<usize>)>,
}

/// The rectangle a caption occupies in the frame, in pixels: what a viewer (and OCR) reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PixelRect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// Where the renderer drew one scene's caption and what it says, so QA can crop exactly
/// that rectangle from the decoded video and read it back.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaptionBox {
    /// Scene index, from 0.
    pub scene: usize,
    /// The caption's box (text and its legibility box) in frame pixels.
    pub rect: PixelRect,
    /// The caption text the plan asked for (before wrapping or truncation).
    pub text: String,
    /// Language of the caption (the plan's source language; `und` when unknown).
    pub lang: String,
    /// Lines the caption was set on.
    pub lines: u32,
    /// From this time (seconds from the start of the video) the caption is fully shown, with
    /// no crossfade over it …
    pub shown_from_s: f64,
    /// … until this time (kinetic captions have every word spoken, at full strength, by then).
    pub shown_until_s: f64,
}

/// A caption and its box, rasterised as premultiplied RGBA, positioned in frame pixels;
/// blending it is the only per-frame caption cost.
#[derive(Debug, Clone)]
pub struct CaptionOverlay {
    /// Left edge in the frame, in pixels.
    pub x: usize,
    /// Top edge in the frame, in pixels.
    pub y: usize,
    /// Overlay width in pixels.
    pub width: usize,
    /// Overlay height in pixels.
    pub height: usize,
    /// Premultiplied RGBA, row-major, `width * height * 4` bytes.
    pub pixels: Vec<u8>,
}

impl CaptionOverlay {
    /// The frame rectangle the overlay covers.
    pub fn rect(&self) -> PixelRect {
        PixelRect { x: self.x as u32, y: self.y as u32, width: self.width as u32, height: self.height as u32 }
    }
}

/// A caption laid out once for a frame size; rasterises overlays for any progress state.
#[derive(Debug, Clone)]
pub struct CaptionPlate {
    layout: CaptionLayout,
    typo: Typography,
    /// Colour of the word being spoken.
    pub highlight: Rgb,
    frame_w: u32,
    frame_h: u32,
}

impl CaptionPlate {
    /// Lays out `caption` for a `frame_w`×`frame_h` frame. `Ok(None)` for an empty caption;
    /// an error when some character cannot be drawn.
    pub fn new(
        typesetter: &Typesetter,
        caption: &str,
        typo: &Typography,
        highlight: Rgb,
        frame_w: u32,
        frame_h: u32,
    ) -> Result<Option<CaptionPlate>, TextError> {
        if caption.trim().is_empty() {
            return Ok(None);
        }
        let layout = layout_caption(&typesetter.shaper(), caption, typo, frame_w, frame_h)?;
        if layout.lines.is_empty() {
            return Ok(None);
        }
        Ok(Some(CaptionPlate { layout, typo: typo.clone(), highlight, frame_w, frame_h }))
    }

    /// The shaped lines (visual order inside each line).
    pub fn lines(&self) -> &[ShapedLine] {
        &self.layout.lines
    }

    /// Where the caption's box sits in the frame (the same for every progress state, so
    /// the box never jumps while words are spoken), and the padding inside it.
    pub fn rect(&self) -> PixelRect {
        self.geometry().0
    }

    fn geometry(&self) -> (PixelRect, f32) {
        let line_h = self.layout.line_h();
        let pad = (line_h * BOX_PAD).ceil();
        let text_w = self.layout.lines.iter().map(|l| l.width).fold(0.0f32, f32::max);
        let width = ((text_w + 2.0 * pad).ceil() as usize).min(self.frame_w as usize).max(1);
        let height =
            ((self.layout.lines.len() as f32 * line_h + 2.0 * pad).ceil() as usize).min(self.frame_h as usize).max(1);
        let safe = SafeArea::of(self.frame_w, self.frame_h, self.typo.safe_margin);
        let x = ((safe.left + safe.right) / 2.0 - width as f32 / 2.0)
            .round()
            .clamp(0.0, (self.frame_w as usize - width) as f32) as usize;
        let y = match self.typo.position {
            CaptionPosition::Bottom => (safe.bottom.round() as usize).saturating_sub(height),
            CaptionPosition::Center => ((safe.top + safe.bottom) / 2.0 - height as f32 / 2.0).max(0.0).round() as usize,
        }
        .min(self.frame_h as usize - height);
        (PixelRect { x: x as u32, y: y as u32, width: width as u32, height: height as u32 }, pad)
    }

    /// Rasterises the caption in the state `progress` describes.
    pub fn render(&self, typesetter: &Typesetter, progress: &CaptionProgress) -> Result<CaptionOverlay, TextError> {
        let layout = &self.layout;
        let typo = &self.typo;
        let em = layout.em_px;
        let line_h = layout.line_h();
        let (rect, pad) = self.geometry();
        let (width, height) = (rect.width as usize, rect.height as usize);

        // Coverage of the text, and which colour/strength each glyph pixel takes.
        let mut mask = vec![0u8; width * height];
        let mut tint = vec![0u8; width * height]; // 0 spoken/plain, 1 upcoming, 2 current
        let mut icons: Vec<(String, f32, f32, u8)> = Vec::new();
        for (i, line) in layout.lines.iter().enumerate() {
            let top = pad + i as f32 * line_h;
            let baseline = top + (line_h + 0.72 * em) / 2.0;
            let x0 = (width as f32 - line.width) / 2.0;
            for g in &line.glyphs {
                let state = match (&progress.current, progress.spoken_until) {
                    (Some((l, r)), _) if *l == i && r.contains(&g.cluster) => 2u8,
                    (_, Some((l, b))) if i > l || (i == l && g.cluster >= b) => 1,
                    _ => 0,
                };
                match &g.kind {
                    GlyphKind::Outline { face, id } => {
                        let Some(f) = typesetter.fonts.face(*face) else { continue };
                        let glyph =
                            GlyphId(*id).with_scale_and_position(f.scale_for_em(em), point(x0 + g.x, baseline - g.y));
                        let Some(outlined) = f.font.outline_glyph(glyph) else { continue };
                        let bounds = outlined.px_bounds();
                        let (bx, by) = (bounds.min.x as i64, bounds.min.y as i64);
                        outlined.draw(|gx, gy, coverage| {
                            let px = bx + gx as i64;
                            let py = by + gy as i64;
                            if px < 0 || py < 0 || px >= width as i64 || py >= height as i64 {
                                return;
                            }
                            let idx = py as usize * width + px as usize;
                            let v = (coverage.clamp(0.0, 1.0) * 255.0).round() as u8;
                            if v > mask[idx] {
                                mask[idx] = v;
                                tint[idx] = state;
                            }
                        });
                    }
                    GlyphKind::Icon { name } => icons.push((name.clone(), x0 + g.x, baseline - 0.86 * em, state)),
                }
            }
        }

        let mut pixels = compose_box(&mask, &tint, width, height, typo, self.highlight, pad);
        if !icons.is_empty() {
            let set = typesetter.icons.get().map_err(|reason| TextError::NoIcons { ch: '\u{FFFD}', reason })?;
            let size = em.round().max(1.0) as usize;
            for (name, x, y, state) in icons {
                let bitmap = set
                    .rasterize(&name, size)
                    .map_err(|e| TextError::NoIcons { ch: '\u{FFFD}', reason: e.to_string() })?;
                let alpha = if state == 1 { UPCOMING_ALPHA } else { 1.0 };
                blend_icon(&mut pixels, width, height, &bitmap.pixels, size, x.round() as i64, y.round() as i64, alpha);
            }
        }
        let (x, y) = (rect.x as usize, rect.y as usize);
        Ok(CaptionOverlay { x, y, width, height, pixels })
    }
}

/// Premultiplied source-over of an icon bitmap at (`x`, `y`) with extra opacity `alpha`.
#[allow(clippy::too_many_arguments)]
fn blend_icon(dst: &mut [u8], w: usize, h: usize, src: &[u8], size: usize, x: i64, y: i64, alpha: f32) {
    let k = (alpha.clamp(0.0, 1.0) * 256.0) as u32;
    for sy in 0..size {
        let py = y + sy as i64;
        if py < 0 || py >= h as i64 {
            continue;
        }
        for sx in 0..size {
            let px = x + sx as i64;
            if px < 0 || px >= w as i64 {
                continue;
            }
            let s = &src[(sy * size + sx) * 4..(sy * size + sx) * 4 + 4];
            let sa = (s[3] as u32 * k) >> 8;
            if sa == 0 {
                continue;
            }
            let o = (py as usize * w + px as usize) * 4;
            let inv = 255 - sa;
            for c in 0..4 {
                let sc = if c == 3 { sa } else { (s[c] as u32 * k) >> 8 };
                dst[o + c] = (sc + (dst[o + c] as u32 * inv + 127) / 255).min(255) as u8;
            }
        }
    }
}

/// Combines the text coverage mask with the (rounded) box into premultiplied RGBA; `tint`
/// picks each text pixel's colour: plain, upcoming (faint) or the spoken word (highlight).
fn compose_box(
    mask: &[u8],
    tint: &[u8],
    width: usize,
    height: usize,
    typo: &Typography,
    highlight: Rgb,
    pad: f32,
) -> Vec<u8> {
    let text = typo.color;
    let boxc = typo.box_color;
    let box_a = typo.box_alpha.clamp(0.0, 1.0);
    let radius = (pad * 0.8).max(0.0);
    let mut out = vec![0u8; width * height * 4];
    for y in 0..height {
        for x in 0..width {
            // Rounded-corner coverage of the box (1.0 away from the corners).
            let cx = (x as f32 + 0.5).clamp(radius, width as f32 - radius);
            let cy = (y as f32 + 0.5).clamp(radius, height as f32 - radius);
            let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
            let corner = (radius - d + 0.5).clamp(0.0, 1.0);
            let ba = box_a * corner;
            let i = y * width + x;
            let (tc, strength) = match tint[i] {
                1 => (text, UPCOMING_ALPHA),
                2 => (highlight, 1.0),
                _ => (text, 1.0),
            };
            let t = mask[i] as f32 / 255.0 * strength;
            let a = t + ba * (1.0 - t);
            let ch = |tc: u8, bc: u8| (tc as f32 * t + bc as f32 * ba * (1.0 - t)).round().clamp(0.0, 255.0) as u8;
            let o = i * 4;
            out[o] = ch(tc.0, boxc.0);
            out[o + 1] = ch(tc.1, boxc.1);
            out[o + 2] = ch(tc.2, boxc.2);
            out[o + 3] = (a * 255.0).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::icons::default_assets_dir;

    fn typesetter(assets: bool) -> Typesetter {
        let dir = default_assets_dir();
        Typesetter::new(
            Path::new("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"),
            "ja",
            assets.then_some(dir.as_path()),
        )
        .expect("fonts-noto-core is installed")
    }

    fn typo(max_lines: u32) -> Typography {
        Typography {
            size: 0.08,
            color: Rgb(255, 255, 255),
            box_color: Rgb(0, 0, 0),
            box_alpha: 0.5,
            position: CaptionPosition::Bottom,
            safe_margin: 0.08,
            max_lines,
        }
    }

    #[test]
    fn long_captions_shrink_then_truncate_within_the_safe_area() {
        let ts = typesetter(false);
        let shaper = ts.shaper();
        let short = layout_caption(&shaper, "Hello", &typo(2), 1280, 720).unwrap();
        assert_eq!(short.lines.len(), 1);
        assert!((short.em_px - 0.08 * 720.0 * EM_PER_PLANNED).abs() < 0.01, "short captions keep the planned size");

        let medium = "A caption long enough to need a smaller font on two lines";
        let m = layout_caption(&shaper, medium, &typo(2), 1280, 720).unwrap();
        assert!(m.lines.len() <= 2, "{:?}", m.lines);
        assert!(m.lines.iter().all(|l| l.text.chars().count() <= MAX_CHARS_PER_LINE));
        assert!(!m.lines.iter().any(|l| l.text.contains('…')), "it fits without truncation: {:?}", m.lines);

        let long = "word ".repeat(200);
        let l = layout_caption(&shaper, &long, &typo(2), 1280, 720).unwrap();
        assert_eq!(l.lines.len(), 2);
        assert!(l.lines[1].text.ends_with('…'));
        assert!(l.lines.iter().all(|line| line.width <= 1280.0 * (1.0 - 2.0 * 0.08)));
    }

    /// Renders `caption` at 720×1280 and checks it stays inside the portrait safe area and
    /// drew something.
    fn render_portrait(ts: &Typesetter, caption: &str) -> CaptionOverlay {
        let plate = CaptionPlate::new(ts, caption, &typo(2), Rgb(255, 210, 0), 720, 1280)
            .unwrap_or_else(|e| panic!("{caption}: {e}"))
            .expect("non-empty caption");
        let o = plate.render(ts, &CaptionProgress::default()).unwrap();
        let safe = SafeArea::of(720, 1280, 0.08);
        assert!(
            (o.x + o.width) as f32 <= safe.right + 1.0 && (o.y + o.height) as f32 <= safe.bottom + 1.0,
            "{caption}: {:?}",
            o.rect()
        );
        assert_eq!(o.pixels.len(), o.width * o.height * 4);
        let ink = o.pixels.chunks(4).filter(|p| p[3] > 200).count();
        assert!(ink > 50, "{caption}: the text is drawn ({ink} opaque pixels)");
        o
    }

    #[test]
    fn captions_in_every_script_render_inside_the_safe_area() {
        let ts = typesetter(false);
        for caption in [
            "朝の光と焼きたてのパン。店のドアが開きます。",
            "清晨的新鲜面包，温暖的光",
            "새벽의 갓 구운 빵과 따뜻한 빛",
            "Open at 7: خبز طازج كل صباح",
            "לחם טרי בכל בוקר",
            "a\u{0}b\tc\n\nd",
        ] {
            render_portrait(&ts, caption);
        }
        assert!(CaptionPlate::new(&ts, "  \n ", &typo(2), Rgb(0, 0, 0), 320, 180).unwrap().is_none());
    }

    #[test]
    #[ignore = "needs models"]
    fn emoji_in_captions_are_drawn_in_colour() {
        let ts = typesetter(true);
        let o = render_portrait(&ts, "🚀 Launch day!!! 🎉🎉");
        // The rocket and party popper bring colour the white-on-black caption has none of.
        let coloured = o.pixels.chunks(4).filter(|p| p[3] > 200 && (p[0] as i32 - p[2] as i32).abs() > 60).count();
        assert!(coloured > 100, "{coloured} coloured pixels");
        let shaper = ts.shaper();
        let line = shaper.shape_line("🚀 go", 40.0, unicode_bidi::Level::ltr()).unwrap();
        assert!(matches!(&line.glyphs[0].kind, GlyphKind::Icon { name } if name == "rocket"), "{line:?}");
    }

    #[test]
    fn kinetic_progress_fades_upcoming_words_and_highlights_the_current_one() {
        let ts = typesetter(false);
        let plate =
            CaptionPlate::new(&ts, "Fresh bread at dawn", &typo(2), Rgb(255, 210, 0), 1280, 720).unwrap().unwrap();
        let full = plate.render(&ts, &CaptionProgress::default()).unwrap();
        let start =
            plate.render(&ts, &CaptionProgress { spoken_until: Some((0, 6)), current: Some((0, 0..5)) }).unwrap();
        assert_eq!(full.rect(), start.rect(), "the box does not move while words are spoken");
        let yellow = |o: &CaptionOverlay| o.pixels.chunks(4).filter(|p| p[3] > 200 && p[2] < 80 && p[0] > 200).count();
        let bright = |o: &CaptionOverlay| o.pixels.chunks(4).filter(|p| p[0] > 200 && p[1] > 200 && p[2] > 200).count();
        assert_eq!(yellow(&full), 0);
        assert!(yellow(&start) > 100, "the spoken word is highlighted");
        assert!(bright(&start) < bright(&full) / 3, "upcoming words are faint");
    }

    #[test]
    fn portrait_safe_area_keeps_clear_of_app_buttons() {
        let s = SafeArea::of(720, 1280, 0.05);
        assert!((s.bottom - 1280.0 * 0.8).abs() < 0.5 && (s.right - 720.0 * 0.85).abs() < 0.5);
        let l = SafeArea::of(1280, 720, 0.05);
        assert!((l.bottom - 720.0 * 0.95).abs() < 0.5 && (l.right - 1280.0 * 0.95).abs() < 0.5);
    }
}
