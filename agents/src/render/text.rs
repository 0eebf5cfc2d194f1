//! Caption typesetting: wraps a scene's caption to the frame's safe area (shrinking the font
//! until it fits in `max_lines`), then rasterises it once per scene, together with its
//! legibility box, into a premultiplied RGBA overlay that the compositor blends every frame.

use std::path::Path;

use ab_glyph::{Font, FontVec, GlyphId, PxScale, ScaleFont, point};
use serde::{Deserialize, Serialize};

use crate::agent::AgentError;
use crate::domain::{CaptionPosition, Rgb, Typography};

/// Smallest font size, in pixels, that shrinking may reach before lines are truncated.
const MIN_FONT_PX: f32 = 8.0;
/// How far the font may shrink relative to the planned size before truncating instead.
const MIN_SHRINK: f32 = 0.45;
/// Shrink factor applied per attempt when a caption does not fit.
const SHRINK_STEP: f32 = 0.9;
/// Padding inside the box, as a fraction of the line height.
const BOX_PAD: f32 = 0.35;

/// Loads the caption font, failing permanently (naming the path) when it is missing or
/// unreadable, because retrying the same plan cannot make a font appear.
pub fn load_font(path: &Path) -> Result<FontVec, AgentError> {
    let bytes = std::fs::read(path)
        .map_err(|e| AgentError::Permanent(format!("caption font {} cannot be read: {e}", path.display())))?;
    FontVec::try_from_vec(bytes)
        .map_err(|e| AgentError::Permanent(format!("caption font {} is not a usable font: {e}", path.display())))
}

/// Splits `text` into lines no wider than `max_width` as measured by `measure`.
///
/// Lines break on whitespace; explicit newlines start a new line; a run without spaces that
/// is wider than a line (CJK, long URLs) breaks between characters. Every character of the
/// input (other than the whitespace used as break points) ends up on some line.
pub(crate) fn wrap_lines(text: &str, max_width: f32, measure: impl Fn(&str) -> f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let candidate = if line.is_empty() { word.to_owned() } else { format!("{line} {word}") };
            if measure(&candidate) <= max_width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if measure(word) <= max_width {
                line.push_str(word);
                continue;
            }
            // The word alone is too wide: break it between characters.
            for ch in word.chars() {
                line.push(ch);
                if measure(&line) > max_width && line.chars().count() > 1 {
                    line.pop();
                    lines.push(std::mem::take(&mut line));
                    line.push(ch);
                }
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

/// Shortens `line` from the end until `line + "…"` fits in `max_width`.
fn ellipsize(line: &str, max_width: f32, measure: impl Fn(&str) -> f32) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    loop {
        let candidate: String = chars.iter().collect::<String>().trim_end().to_owned() + "…";
        if measure(&candidate) <= max_width || chars.is_empty() {
            return candidate;
        }
        chars.pop();
    }
}

/// Width in pixels of `text` set on one line at `scale`, kerning included.
fn line_width(font: &FontVec, scale: PxScale, text: &str) -> f32 {
    let scaled = font.as_scaled(scale);
    let mut width = 0.0;
    let mut prev: Option<GlyphId> = None;
    for ch in text.chars().filter(|c| !c.is_control()) {
        let id = scaled.glyph_id(ch);
        if let Some(p) = prev {
            width += scaled.kern(p, id);
        }
        width += scaled.h_advance(id);
        prev = Some(id);
    }
    width
}

/// A caption laid out for one frame size: the lines and the pixel size they are set at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CaptionLayout {
    /// The wrapped (and, if it could not fit, truncated) lines.
    pub lines: Vec<String>,
    /// Font size in pixels.
    pub font_px: f32,
}

/// Wraps `caption` for a `width`×`height` frame, shrinking the font until it fits inside the
/// safe area in at most `max_lines` lines; if it still does not fit at the smallest size, the
/// last line is truncated with an ellipsis.
pub(crate) fn layout_caption(
    font: &FontVec,
    caption: &str,
    typo: &Typography,
    width: u32,
    height: u32,
) -> CaptionLayout {
    let short = width.min(height) as f32;
    let margin = typo.safe_margin.clamp(0.0, 0.45);
    let max_lines = typo.max_lines.max(1) as usize;
    let planned_px = (typo.size.max(0.0) * short).max(MIN_FONT_PX);
    let min_px = (planned_px * MIN_SHRINK).max(MIN_FONT_PX).min(planned_px);
    let safe_w = width as f32 * (1.0 - 2.0 * margin);
    let safe_h = height as f32 * (1.0 - 2.0 * margin);

    let mut px = planned_px;
    loop {
        let scale = PxScale::from(px);
        let line_h = font.as_scaled(scale).height();
        let pad = line_h * BOX_PAD;
        let avail_w = (safe_w - 2.0 * pad).max(px);
        let lines = wrap_lines(caption, avail_w, |s| line_width(font, scale, s));
        let block_h = lines.len() as f32 * line_h + 2.0 * pad;
        let fits = lines.len() <= max_lines && block_h <= safe_h;
        if fits || px <= min_px {
            let rows_that_fit = (((safe_h - 2.0 * pad) / line_h).floor().max(1.0)) as usize;
            let keep = max_lines.min(rows_that_fit);
            let mut lines = lines;
            if lines.len() > keep {
                lines.truncate(keep);
                if let Some(last) = lines.last_mut() {
                    *last = ellipsize(last, avail_w, |s| line_width(font, scale, s));
                }
            }
            return CaptionLayout { lines, font_px: px };
        }
        px = (px * SHRINK_STEP).max(min_px);
    }
}

/// A rectangle in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// … until this time.
    pub shown_until_s: f64,
}

/// A caption and its box, rasterised once per scene as premultiplied RGBA, positioned in
/// frame pixels; blending it is the only per-frame caption cost.
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
    /// Lines the caption was set on.
    pub lines: usize,
}

impl CaptionOverlay {
    /// Lays out and rasterises `caption` for a `frame_w`×`frame_h` frame. Returns `None` for
    /// an empty caption. Glyphs missing from the font render as the font's "missing" glyph.
    pub fn build(
        font: &FontVec,
        caption: &str,
        typo: &Typography,
        frame_w: u32,
        frame_h: u32,
    ) -> Option<CaptionOverlay> {
        if caption.trim().is_empty() {
            return None;
        }
        let layout = layout_caption(font, caption, typo, frame_w, frame_h);
        if layout.lines.is_empty() {
            return None;
        }
        let scale = PxScale::from(layout.font_px);
        let scaled = font.as_scaled(scale);
        let line_h = scaled.height();
        let pad = (line_h * BOX_PAD).ceil();
        let widths: Vec<f32> = layout.lines.iter().map(|l| line_width(font, scale, l)).collect();
        let text_w = widths.iter().cloned().fold(0.0f32, f32::max);

        let width = ((text_w + 2.0 * pad).ceil() as usize).min(frame_w as usize).max(1);
        let height = ((layout.lines.len() as f32 * line_h + 2.0 * pad).ceil() as usize).min(frame_h as usize).max(1);

        // Coverage mask of the text.
        let mut mask = vec![0u8; width * height];
        for (i, line) in layout.lines.iter().enumerate() {
            let baseline = pad + scaled.ascent() + i as f32 * line_h;
            let mut x = (width as f32 - widths[i]) / 2.0;
            let mut prev: Option<GlyphId> = None;
            for ch in line.chars().filter(|c| !c.is_control()) {
                let id = scaled.glyph_id(ch);
                if let Some(p) = prev {
                    x += scaled.kern(p, id);
                }
                let glyph = id.with_scale_and_position(scale, point(x, baseline));
                x += scaled.h_advance(id);
                prev = Some(id);
                let Some(outlined) = font.outline_glyph(glyph) else { continue };
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
                    mask[idx] = mask[idx].max(v);
                });
            }
        }

        let pixels = premultiply(&mask, width, height, typo.color, typo.box_color, typo.box_alpha, pad);
        let margin = typo.safe_margin.clamp(0.0, 0.45);
        let x = (frame_w as usize - width) / 2;
        let y = match typo.position {
            CaptionPosition::Bottom => {
                let bottom = (frame_h as f32 * (1.0 - margin)).round() as usize;
                bottom.saturating_sub(height)
            }
            CaptionPosition::Center => (frame_h as usize - height) / 2,
        };
        Some(CaptionOverlay { x, y, width, height, pixels, lines: layout.lines.len() })
    }

    /// The overlay's rectangle in frame pixels.
    pub fn rect(&self) -> PixelRect {
        PixelRect { x: self.x as u32, y: self.y as u32, width: self.width as u32, height: self.height as u32 }
    }
}

/// Combines the text coverage mask with the (rounded) box into premultiplied RGBA.
fn premultiply(mask: &[u8], width: usize, height: usize, text: Rgb, boxc: Rgb, box_alpha: f32, pad: f32) -> Vec<u8> {
    let box_a = box_alpha.clamp(0.0, 1.0);
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
            let t = mask[y * width + x] as f32 / 255.0;
            let a = t + ba * (1.0 - t);
            let ch = |tc: u8, bc: u8| (tc as f32 * t + bc as f32 * ba * (1.0 - t)).round().clamp(0.0, 255.0) as u8;
            let o = (y * width + x) * 4;
            out[o] = ch(text.0, boxc.0);
            out[o + 1] = ch(text.1, boxc.1);
            out[o + 2] = ch(text.2, boxc.2);
            out[o + 3] = (a * 255.0).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character is one unit wide.
    fn chars(s: &str) -> f32 {
        s.chars().count() as f32
    }

    #[test]
    fn wraps_on_whitespace_without_exceeding_the_width() {
        let lines = wrap_lines("the quick brown fox jumps over the lazy dog", 10.0, chars);
        assert_eq!(lines, vec!["the quick", "brown fox", "jumps over", "the lazy", "dog"]);
        assert!(lines.iter().all(|l| chars(l) <= 10.0));
    }

    #[test]
    fn text_without_spaces_wraps_by_character() {
        let lines = wrap_lines("東京の夜景はとても美しいです", 5.0, chars);
        assert_eq!(lines, vec!["東京の夜景", "はとても美", "しいです"]);
    }

    #[test]
    fn explicit_newlines_and_runs_of_spaces_are_respected() {
        let lines = wrap_lines("one   two\nthree", 20.0, chars);
        assert_eq!(lines, vec!["one two", "three"]);
        assert!(wrap_lines("   ", 5.0, chars).is_empty());
    }

    #[test]
    fn a_long_word_after_short_ones_starts_on_its_own_line() {
        let lines = wrap_lines("hi abcdefghij", 4.0, chars);
        assert_eq!(lines, vec!["hi", "abcd", "efgh", "ij"]);
    }

    fn dejavu() -> FontVec {
        load_font(Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"))
            .expect("DejaVu Sans Bold is installed")
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
        let font = dejavu();
        let short = layout_caption(&font, "Hello", &typo(2), 1280, 720);
        assert_eq!(short.lines, vec!["Hello"]);
        assert!((short.font_px - 0.08 * 720.0).abs() < 0.01, "short captions keep the planned size");

        let medium = "A caption that is long enough to need a smaller font on two lines, but not much more";
        let m = layout_caption(&font, medium, &typo(2), 1280, 720);
        assert!(m.lines.len() <= 2, "{:?}", m.lines);
        assert!(m.font_px < 0.08 * 720.0, "it shrank");
        assert!(!m.lines.concat().contains('…'), "it fits without truncation: {:?}", m.lines);

        let long = "word ".repeat(200);
        let l = layout_caption(&font, &long, &typo(2), 1280, 720);
        assert_eq!(l.lines.len(), 2);
        assert!(l.lines[1].ends_with('…'));
        let scale = PxScale::from(l.font_px);
        assert!(l.lines.iter().all(|line| line_width(&font, scale, line) <= 1280.0 * (1.0 - 2.0 * 0.08)));
    }

    #[test]
    fn overlay_sits_inside_the_frame_for_any_script() {
        let font = dejavu();
        for caption in [
            "東京の夜景はとても美しいです。東京の夜景はとても美しいです。",
            "🎬🚀✨",
            "مرحبا بالعالم",
            "a\u{0}b\tc\n\nd",
        ] {
            let o = CaptionOverlay::build(&font, caption, &typo(3), 320, 180).expect("non-empty caption");
            assert!(o.x + o.width <= 320 && o.y + o.height <= 180, "{caption}: {o:?}");
            assert_eq!(o.pixels.len(), o.width * o.height * 4);
            assert!(o.pixels.chunks(4).any(|p| p[3] > 0));
        }
        assert!(CaptionOverlay::build(&font, "  \n ", &typo(2), 320, 180).is_none());
    }

    #[test]
    fn ellipsis_fits_the_width() {
        let e = ellipsize("abcdefgh", 5.0, chars);
        assert_eq!(e, "abcd…");
    }
}
