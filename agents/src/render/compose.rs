//! The frame compositor: draws any instant of a [`RenderPlan`] into an RGB24 buffer at any
//! resolution. Per scene it precomputes what does not move (the gradient background and the
//! rasterised caption); per frame it copies the background, blends the moving shapes only
//! where they are, blends the caption overlay and, inside a transition, crossfades with the
//! next scene drawn into a reused scratch buffer.

use std::f32::consts::{PI, TAU};

use ab_glyph::FontVec;

use crate::agent::AgentError;
use crate::domain::{Camera, Gradient, RenderPlan, ScenePlan, Shape, ShapeKind};
use crate::render::text::{CaptionBox, CaptionOverlay, PixelRect};

/// The byte order of the three channels in a frame.
///
/// The renderer composes in BGR order because swscale converts BGR24 to YUV 4:2:0 with a
/// dedicated fast path (several times faster than RGB24); tools that want RGB pass `Rgb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Red, green, blue (RGB24).
    Rgb,
    /// Blue, green, red (BGR24).
    Bgr,
}

impl ChannelOrder {
    /// `[r, g, b]` rearranged into this order.
    pub fn arrange<T: Copy>(self, rgb: [T; 3]) -> [T; 3] {
        match self {
            ChannelOrder::Rgb => rgb,
            ChannelOrder::Bgr => [rgb[2], rgb[1], rgb[0]],
        }
    }
}

/// A mutable view of a 24-bit image (channel order chosen by the compositor) with a row
/// stride (FFmpeg frames pad their rows).
pub struct FrameMut<'a> {
    /// Pixel bytes, at least `stride * (height - 1) + width * 3` long.
    pub data: &'a mut [u8],
    /// Bytes from one row to the next.
    pub stride: usize,
}

/// Everything about one scene that stays fixed while it plays.
struct SceneAssets {
    /// The gradient (with a soft vignette), tightly packed RGB24, `width * 3` per row.
    background: Vec<u8>,
    /// The caption and its box, if the scene has a caption.
    caption: Option<CaptionOverlay>,
    /// Per-shape drift phases and rates, drawn from the plan's seed.
    drift: Vec<[f32; 4]>,
}

/// Which scene(s) an instant shows: one scene, or a crossfade from `scene` to `scene + 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Shot {
    /// Only `scene` is visible.
    Single { scene: usize },
    /// `scene` fades out while `scene + 1` fades in; `mix` is the incoming weight (0–1).
    Crossfade { scene: usize, mix: f32 },
}

/// Draws frames of one plan at one resolution; keeps at most the assets of the scenes on
/// screen, so memory does not grow with the number of scenes or the duration.
pub struct Compositor {
    width: usize,
    height: usize,
    scenes: Vec<ScenePlan>,
    /// Crossfade length at the boundary after scene `i` (0 when there is none).
    fades: Vec<f64>,
    assets: Vec<Option<SceneAssets>>,
    font: FontVec,
    seed: u64,
    order: ChannelOrder,
    scratch: Vec<u8>,
    /// Each scene's caption rectangle and line count, recorded when its assets are built.
    drawn_captions: Vec<Option<(PixelRect, usize)>>,
}

impl Compositor {
    /// Prepares a compositor for `plan` at `width`×`height` writing pixels in `order`;
    /// `font` sets the captions.
    pub fn new(
        plan: &RenderPlan,
        font: FontVec,
        width: u32,
        height: u32,
        order: ChannelOrder,
    ) -> Result<Compositor, AgentError> {
        if width == 0 || height == 0 {
            return Err(AgentError::Permanent(format!("cannot compose a {width}x{height} frame")));
        }
        if plan.scenes.is_empty() {
            return Err(AgentError::Permanent("the render plan has no scenes".into()));
        }
        let transition = if plan.transition_s.is_finite() { plan.transition_s.max(0.0) } else { 0.0 };
        let fades = (0..plan.scenes.len())
            .map(|i| match plan.scenes.get(i + 1) {
                Some(next) => transition.min(0.5 * plan.scenes[i].duration_s).min(0.5 * next.duration_s),
                None => 0.0,
            })
            .collect();
        Ok(Compositor {
            width: width as usize,
            height: height as usize,
            scenes: plan.scenes.clone(),
            fades,
            assets: (0..plan.scenes.len()).map(|_| None).collect(),
            font,
            seed: plan.seed,
            order,
            scratch: Vec::new(),
            drawn_captions: vec![None; plan.scenes.len()],
        })
    }

    /// Frame width in pixels.
    pub fn width(&self) -> u32 {
        self.width as u32
    }

    /// Frame height in pixels.
    pub fn height(&self) -> u32 {
        self.height as u32
    }

    /// Which scene(s) are visible at `t` seconds.
    pub(crate) fn shot_at(&self, t: f64) -> Shot {
        let last = self.scenes.len() - 1;
        let scene = self.scenes.iter().rposition(|s| s.start_s <= t).unwrap_or(0);
        // A crossfade is centred on the boundary between `i` and `i + 1`.
        let boundary_fade = |i: usize| -> Option<Shot> {
            if i >= last || self.fades[i] <= 0.0 {
                return None;
            }
            let boundary = self.scenes[i + 1].start_s;
            let half = self.fades[i] / 2.0;
            if t >= boundary - half && t < boundary + half {
                let mix = ((t - (boundary - half)) / self.fades[i]) as f32;
                Some(Shot::Crossfade { scene: i, mix: smoothstep(mix) })
            } else {
                None
            }
        };
        if let Some(shot) = boundary_fade(scene) {
            return shot;
        }
        if scene > 0
            && let Some(shot) = boundary_fade(scene - 1)
        {
            return shot;
        }
        Shot::Single { scene }
    }

    /// Draws the instant `t` (seconds from the start of the video) into `frame`.
    pub fn draw(&mut self, t: f64, frame: &mut FrameMut<'_>) {
        let shot = self.shot_at(t);
        let (first, second) = match shot {
            Shot::Single { scene } => (scene, None),
            Shot::Crossfade { scene, mix } => (scene, Some((scene + 1, mix))),
        };
        self.retain_assets(first, second.map(|(s, _)| s).unwrap_or(first));
        self.ensure_assets(first);
        if let Some((next, _)) = second {
            self.ensure_assets(next);
        }
        self.draw_scene(first, t, frame);
        if let Some((next, mix)) = second {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.resize(self.width * self.height * 3, 0);
            let stride = self.width * 3;
            self.draw_scene(next, t, &mut FrameMut { data: &mut scratch, stride });
            crossfade(frame, &scratch, stride, self.width, self.height, mix);
            self.scratch = scratch;
        }
    }

    /// The caption boxes drawn so far (every scene's, once the whole video is drawn), with
    /// the window in which each caption is fully shown (outside the crossfades); `lang` is
    /// the captions' language.
    pub fn caption_boxes(&self, lang: &str) -> Vec<CaptionBox> {
        let mut boxes = Vec::new();
        for (i, drawn) in self.drawn_captions.iter().enumerate() {
            let Some((rect, lines)) = drawn else { continue };
            let s = &self.scenes[i];
            let fade_in = if i > 0 { self.fades[i - 1] / 2.0 } else { 0.0 };
            boxes.push(CaptionBox {
                scene: i,
                rect: *rect,
                text: s.caption.clone(),
                lang: lang.to_owned(),
                lines: *lines as u32,
                shown_from_s: s.start_s + fade_in,
                shown_until_s: s.start_s + s.duration_s - self.fades[i] / 2.0,
            });
        }
        boxes
    }

    /// Drops the assets of scenes outside `lo..=hi`, so only on-screen scenes hold memory.
    fn retain_assets(&mut self, lo: usize, hi: usize) {
        for (i, slot) in self.assets.iter_mut().enumerate() {
            if (i < lo || i > hi) && slot.is_some() {
                *slot = None;
            }
        }
    }

    /// Builds the fixed assets of scene `index` if they are not cached yet.
    fn ensure_assets(&mut self, index: usize) {
        if self.assets[index].is_some() {
            return;
        }
        let scene = &self.scenes[index];
        let background = gradient(&scene.background, self.width, self.height, self.order);
        let mut caption =
            CaptionOverlay::build(&self.font, &scene.caption, &scene.typography, self.width as u32, self.height as u32);
        self.drawn_captions[index] = caption.as_ref().map(|o| (o.rect(), o.lines));
        if let Some(overlay) = caption.as_mut()
            && self.order == ChannelOrder::Bgr
        {
            overlay.pixels.chunks_exact_mut(4).for_each(|px| px.swap(0, 2));
        }
        let mut rng = SplitMix(self.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let drift = scene
            .shapes
            .iter()
            .map(|_| [rng.unit() * TAU, rng.unit() * TAU, 0.05 + 0.1 * rng.unit(), 0.05 + 0.1 * rng.unit()])
            .collect();
        self.assets[index] = Some(SceneAssets { background, caption, drift });
    }

    /// Draws scene `index` at video time `t`; its assets must have been built.
    fn draw_scene(&self, index: usize, t: f64, frame: &mut FrameMut<'_>) {
        let (w, h) = (self.width, self.height);
        let scene = &self.scenes[index];
        let Some(assets) = self.assets[index].as_ref() else { return };
        let row_bytes = w * 3;
        for y in 0..h {
            frame.data[y * frame.stride..y * frame.stride + row_bytes]
                .copy_from_slice(&assets.background[y * row_bytes..(y + 1) * row_bytes]);
        }
        let local = (t - scene.start_s) as f32;
        let u = if scene.duration_s > 0.0 { local / scene.duration_s as f32 } else { 0.0 };
        let n = scene.shapes.len();
        for (i, shape) in scene.shapes.iter().enumerate() {
            let depth = if n > 1 { i as f32 / (n - 1) as f32 } else { 1.0 };
            let placed = place_shape(shape, scene, u, local, depth, &assets.drift[i], w, h);
            draw_shape(frame, w, h, &placed, shape, self.order);
        }
        if let Some(caption) = &assets.caption {
            blend_overlay(frame, caption, w, h);
        }
    }
}

/// A shape's position and size in pixels at one instant.
struct Placed {
    cx: f32,
    cy: f32,
    /// Radius (circles, rings) or half-width (rects).
    r: f32,
}

/// Applies the scene's camera move to a shape at normalised scene time `u` (0 at the scene's
/// start, 1 at its end; slightly outside during crossfades). Front shapes (`depth` near 1)
/// move more than back ones, which gives parallax.
#[allow(clippy::too_many_arguments)]
fn place_shape(
    shape: &Shape,
    scene: &ScenePlan,
    u: f32,
    local_s: f32,
    depth: f32,
    drift: &[f32; 4],
    w: usize,
    h: usize,
) -> Placed {
    let (wf, hf) = (w as f32, h as f32);
    let short = wf.min(hf);
    let (cx, cy) = (wf / 2.0, hf / 2.0);
    let k = scene.motion.intensity.clamp(0.0, 1.0);
    let mut x = shape.x * wf;
    let mut y = shape.y * hf;
    let mut r = shape.size.max(0.0) * short;
    let scale_about_centre = |x: &mut f32, y: &mut f32, r: &mut f32, s: f32| {
        *x = cx + (*x - cx) * s;
        *y = cy + (*y - cy) * s;
        *r *= s;
    };
    let mut drift_amp = 0.004 * short;
    match scene.motion.camera {
        Camera::Dolly => {
            let s = 1.0 + 0.2 * k * u * (0.6 + 0.4 * depth);
            scale_about_centre(&mut x, &mut y, &mut r, s);
        }
        Camera::Zoom => {
            let s = 1.0 + 0.6 * k * smoothstep(u);
            scale_about_centre(&mut x, &mut y, &mut r, s);
        }
        Camera::Pan => {
            x += (0.5 - u) * 0.35 * k * wf * (0.5 + depth);
        }
        Camera::Orbital => {
            let angle = (u - 0.5) * PI * 0.75 * k * (0.6 + 0.4 * depth);
            let (sin, cos) = angle.sin_cos();
            let (dx, dy) = (x - cx, y - cy);
            x = cx + dx * cos - dy * sin;
            y = cy + dx * sin + dy * cos;
        }
        Camera::Static => {
            drift_amp = (0.01 + 0.02 * k) * short;
        }
    }
    x += drift_amp * (TAU * drift[2] * local_s + drift[0]).sin();
    y += drift_amp * (TAU * drift[3] * local_s + drift[1]).cos();
    Placed { cx: x, cy: y, r }
}

/// Renders a linear gradient along `angle_deg` (0 = left→right, 90 = top→bottom) with a
/// gentle vignette, once per scene.
fn gradient(g: &Gradient, w: usize, h: usize, order: ChannelOrder) -> Vec<u8> {
    let angle = g.angle_deg.to_radians();
    let (dy, dx) = angle.sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let extent = (cx * dx.abs() + cy * dy.abs()).max(1.0);
    let from = order.arrange([g.from.0 as f32, g.from.1 as f32, g.from.2 as f32]);
    let to = order.arrange([g.to.0 as f32, g.to.1 as f32, g.to.2 as f32]);
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        let py = y as f32 + 0.5 - cy;
        let vy = (py / cy).powi(2);
        let row = &mut out[y * w * 3..(y + 1) * w * 3];
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let pxf = x as f32 + 0.5 - cx;
            let t = ((pxf * dx + py * dy) / extent * 0.5 + 0.5).clamp(0.0, 1.0);
            let vignette = 1.0 - 0.18 * (((pxf / cx).powi(2) + vy) * 0.5);
            for c in 0..3 {
                px[c] = ((from[c] + (to[c] - from[c]) * t) * vignette).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Blends `color` at alpha `a` (0–256) over `n` pixels starting at `row[0]`.
#[inline]
fn fill_span(row: &mut [u8], color: [u32; 3], a: u32) {
    if a == 0 {
        return;
    }
    let inv = 256 - a;
    let pre = [color[0] * a, color[1] * a, color[2] * a];
    for px in row.chunks_exact_mut(3) {
        px[0] = ((px[0] as u32 * inv + pre[0]) >> 8) as u8;
        px[1] = ((px[1] as u32 * inv + pre[1]) >> 8) as u8;
        px[2] = ((px[2] as u32 * inv + pre[2]) >> 8) as u8;
    }
}

/// Blends `color` at alpha `a` (0–256) over one pixel.
#[inline]
fn blend_px(px: &mut [u8], color: [u32; 3], a: u32) {
    let inv = 256 - a;
    px[0] = ((px[0] as u32 * inv + color[0] * a) >> 8) as u8;
    px[1] = ((px[1] as u32 * inv + color[1] * a) >> 8) as u8;
    px[2] = ((px[2] as u32 * inv + color[2] * a) >> 8) as u8;
}

/// Draws one anti-aliased shape, touching only the rows and columns it covers.
fn draw_shape(frame: &mut FrameMut<'_>, w: usize, h: usize, p: &Placed, shape: &Shape, order: ChannelOrder) {
    let kind = shape.kind;
    let alpha = (shape.alpha.clamp(0.0, 1.0) * 256.0).round() as u32;
    if alpha == 0 || p.r <= 0.0 || !p.cx.is_finite() || !p.cy.is_finite() {
        return;
    }
    let color = order.arrange([shape.color.0 as u32, shape.color.1 as u32, shape.color.2 as u32]);
    let (half_w, half_h) = match kind {
        ShapeKind::Circle | ShapeKind::Ring => (p.r, p.r),
        ShapeKind::Rect => (p.r, p.r * 0.62),
    };
    let y0 = ((p.cy - half_h - 1.0).floor().max(0.0)) as usize;
    let y1 = ((p.cy + half_h + 1.0).ceil().min(h as f32)).max(0.0) as usize;
    if y0 >= y1 {
        return;
    }
    // Coverage (0–1) of the pixel whose centre is (x + 0.5, y + 0.5), for edge pixels.
    let ring_inner = p.r * 0.78;
    let corner = (half_h.min(half_w) * 0.3).max(0.0);
    let coverage = |px: f32, py: f32| -> f32 {
        match kind {
            ShapeKind::Circle => (p.r + 0.5 - (px * px + py * py).sqrt()).clamp(0.0, 1.0),
            ShapeKind::Ring => {
                let d = (px * px + py * py).sqrt();
                (p.r + 0.5 - d).clamp(0.0, 1.0) * (d - ring_inner + 0.5).clamp(0.0, 1.0)
            }
            ShapeKind::Rect => {
                let qx = px.abs() - (half_w - corner);
                let qy = py.abs() - (half_h - corner);
                let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
                let d = outside + qx.max(qy).min(0.0) - corner;
                (0.5 - d).clamp(0.0, 1.0)
            }
        }
    };
    for y in y0..y1 {
        let dy = y as f32 + 0.5 - p.cy;
        // Horizontal extent of this row (outer) and of its fully covered part (inner).
        let (outer, inner, hole) = match kind {
            ShapeKind::Circle | ShapeKind::Ring => {
                let ro = p.r + 0.5;
                if dy.abs() >= ro {
                    continue;
                }
                let outer = (ro * ro - dy * dy).sqrt();
                let ri = p.r - 0.5;
                let inner = if dy.abs() < ri { (ri * ri - dy * dy).sqrt() } else { 0.0 };
                let hole = if kind == ShapeKind::Ring {
                    let rh = ring_inner - 0.5;
                    if dy.abs() < rh { (rh * rh - dy * dy).sqrt() } else { 0.0 }
                } else {
                    0.0
                };
                (outer, inner, hole)
            }
            ShapeKind::Rect => {
                if dy.abs() >= half_h + 0.5 {
                    continue;
                }
                let inner = if dy.abs() <= half_h - corner - 0.5 { half_w - 0.5 } else { 0.0 };
                (half_w + 0.5, inner, 0.0)
            }
        };
        let row = &mut frame.data[y * frame.stride..y * frame.stride + w * 3];
        let clamp_x = |v: f32| v.clamp(0.0, w as f32) as usize;
        let xo0 = clamp_x((p.cx - outer).floor());
        let xo1 = clamp_x((p.cx + outer).ceil());
        let (xi0, xi1) =
            if inner > 0.5 { (clamp_x((p.cx - inner).ceil()), clamp_x((p.cx + inner).floor())) } else { (xo1, xo1) };
        let (xh0, xh1) =
            if hole > 0.0 { (clamp_x((p.cx - hole).ceil()), clamp_x((p.cx + hole).floor())) } else { (xo1, xo1) };
        let edge = |x: usize, row: &mut [u8]| {
            let c = coverage(x as f32 + 0.5 - p.cx, dy);
            let a = (alpha as f32 * c) as u32;
            if a > 0 {
                blend_px(&mut row[x * 3..x * 3 + 3], color, a);
            }
        };
        if xi0 < xi1 && kind != ShapeKind::Ring {
            for x in xo0..xi0 {
                edge(x, row);
            }
            fill_span(&mut row[xi0 * 3..xi1 * 3], color, alpha);
            for x in xi1..xo1 {
                edge(x, row);
            }
        } else {
            for x in xo0..xo1 {
                if x >= xh0 && x < xh1 {
                    continue;
                }
                edge(x, row);
            }
        }
    }
}

/// Blends a premultiplied RGBA caption overlay onto the frame.
fn blend_overlay(frame: &mut FrameMut<'_>, o: &CaptionOverlay, w: usize, h: usize) {
    let cols = o.width.min(w.saturating_sub(o.x));
    for oy in 0..o.height {
        let y = o.y + oy;
        if y >= h {
            break;
        }
        let src = &o.pixels[oy * o.width * 4..oy * o.width * 4 + cols * 4];
        let start = y * frame.stride + o.x * 3;
        let dst = &mut frame.data[start..start + cols * 3];
        for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(4)) {
            let a = s[3] as u32;
            if a == 0 {
                continue;
            }
            let inv = 255 - a;
            for c in 0..3 {
                d[c] = (s[c] as u32 + div255(d[c] as u32 * inv)).min(255) as u8;
            }
        }
    }
}

/// `v / 255`, rounded, for `v` ≤ 255·255, without a division.
#[inline]
fn div255(v: u32) -> u32 {
    (v + 128 + ((v + 128) >> 8)) >> 8
}

/// `frame = frame·(1 − mix) + other·mix`, row by row.
fn crossfade(frame: &mut FrameMut<'_>, other: &[u8], other_stride: usize, w: usize, h: usize, mix: f32) {
    let m = (mix.clamp(0.0, 1.0) * 256.0).round() as u16;
    let inv = 256 - m;
    for y in 0..h {
        let dst = &mut frame.data[y * frame.stride..y * frame.stride + w * 3];
        let src = &other[y * other_stride..y * other_stride + w * 3];
        for (d, s) in dst.iter_mut().zip(src) {
            *d = ((*d as u16 * inv + *s as u16 * m) >> 8) as u8;
        }
    }
}

/// Smooth 0→1 ease (zero slope at both ends).
fn smoothstep(x: f32) -> f32 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// A tiny deterministic generator (SplitMix64) for the renderer's few random choices.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A uniform value in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgr_order_swaps_red_and_blue() {
        use crate::domain::Rgb;
        let g = Gradient { from: Rgb(200, 100, 50), to: Rgb(200, 100, 50), angle_deg: 0.0 };
        let rgb = gradient(&g, 4, 4, ChannelOrder::Rgb);
        let bgr = gradient(&g, 4, 4, ChannelOrder::Bgr);
        assert_eq!(rgb[0], bgr[2]);
        assert_eq!(rgb[2], bgr[0]);
        assert_eq!(ChannelOrder::Bgr.arrange([1, 2, 3]), [3, 2, 1]);
    }

    #[test]
    fn div255_matches_rounded_division() {
        for v in (0..=255 * 255).step_by(7) {
            assert_eq!(div255(v), (v as f64 / 255.0).round() as u32, "{v}");
        }
    }

    #[test]
    fn crossfade_endpoints_are_exact() {
        let mut a = vec![10u8; 12];
        let b = vec![200u8; 12];
        crossfade(&mut FrameMut { data: &mut a, stride: 6 }, &b, 6, 2, 2, 0.0);
        assert!(a.iter().all(|&v| v == 10));
        crossfade(&mut FrameMut { data: &mut a, stride: 6 }, &b, 6, 2, 2, 1.0);
        assert!(a.iter().all(|&v| v == 200));
    }

    #[test]
    fn gradient_runs_from_one_colour_to_the_other() {
        use crate::domain::Rgb;
        let g = Gradient { from: Rgb(0, 0, 0), to: Rgb(200, 100, 50), angle_deg: 0.0 };
        let img = gradient(&g, 64, 8, ChannelOrder::Rgb);
        let left = &img[4 * 64 * 3..4 * 64 * 3 + 3];
        let right = &img[5 * 64 * 3 - 3..5 * 64 * 3];
        assert!(left[0] < 10 && right[0] > 150, "{left:?} {right:?}");
    }
}
