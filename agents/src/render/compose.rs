//! The frame compositor: draws any instant of a [`RenderPlan`] into an RGB24 buffer at any
//! resolution. Per scene it precomputes what does not move (the gradient background and the
//! caption's layout); per frame it copies the background, blends the moving shapes only
//! where they are, blends the caption overlay (re-rasterised only when the spoken word
//! changes: kinetic captions) and, inside a transition, crossfades with the next scene drawn
//! into a reused scratch buffer.

use std::f32::consts::{PI, TAU};

use crate::agent::AgentError;
use crate::domain::{Camera, Gradient, RenderPlan, Rgb, ScenePlan, Shape, ShapeKind};
use crate::render::kinetic::{TimedWord, progress_at, word_at};
use crate::render::text::{CaptionBox, CaptionOverlay, CaptionPlate, SafeArea, Typesetter};

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
    /// The caption as last rasterised, and the spoken-word state it shows (`word_at`).
    caption: Option<(Result<usize, usize>, CaptionOverlay)>,
    /// Per-shape drift phases and rates, drawn from the plan's seed.
    drift: Vec<[f32; 4]>,
    /// The scene's illustrations, each rasterised at most once per size step.
    sprites: Vec<Sprite>,
}

/// One illustration of a scene: where it sits and its latest rasterisation.
struct Sprite {
    /// Icon name in the set.
    name: String,
    /// Centre, as fractions of the frame.
    cx: f32,
    cy: f32,
    /// Side length before the camera move, in pixels.
    size: f32,
    /// Seconds after the scene starts that it begins to enter (staggered).
    delay: f32,
    /// The latest rasterisation: (side in pixels, premultiplied RGBA in frame channel order).
    bitmap: Option<(usize, Vec<u8>)>,
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
    /// Each scene's caption laid out once (`None`: no caption).
    plates: Vec<Option<CaptionPlate>>,
    /// Each scene's caption words with the times they are spoken.
    timed: Vec<Vec<TimedWord>>,
    typesetter: Typesetter,
    seed: u64,
    order: ChannelOrder,
    scratch: Vec<u8>,
}

impl Compositor {
    /// Prepares a compositor for `plan` at `width`×`height` writing pixels in `order`;
    /// `typesetter` sets the captions. Every caption is laid out here, so text that cannot
    /// be drawn (a character no installed font covers) fails before the first frame.
    pub fn new(
        plan: &RenderPlan,
        typesetter: Typesetter,
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
        let mut plates = Vec::with_capacity(plan.scenes.len());
        let mut timed = Vec::with_capacity(plan.scenes.len());
        for (i, scene) in plan.scenes.iter().enumerate() {
            let plate = CaptionPlate::new(
                &typesetter,
                &scene.caption,
                &scene.typography,
                highlight_for(scene.typography.color),
                width,
                height,
            )
            .and_then(|plate| match plate {
                // Rasterise once too: an emoji picture that cannot be drawn fails here.
                Some(p) => p.render(&typesetter, &Default::default()).map(|_| Some(p)),
                None => Ok(None),
            })
            .map_err(|e| AgentError::Permanent(format!("scene {} caption: {e}", i + 1)))?;
            timed.push(match &plate {
                Some(p) => crate::render::kinetic::time_words(p.lines(), &scene.words, scene.start_s, scene.duration_s),
                None => Vec::new(),
            });
            plates.push(plate);
        }
        // Every illustration must exist in the set: a wrong name is the plan's error, found
        // before the first frame.
        for (i, scene) in plan.scenes.iter().enumerate() {
            if scene.illustrations.is_empty() {
                continue;
            }
            let set = typesetter.icons.get().map_err(|e| {
                AgentError::Permanent(format!("scene {} shows illustrations but the set is unavailable: {e}", i + 1))
            })?;
            for ill in &scene.illustrations {
                set.rasterize(&ill.name, 8).map_err(|e| AgentError::Permanent(format!("scene {}: {e}", i + 1)))?;
            }
        }
        Ok(Compositor {
            width: width as usize,
            height: height as usize,
            scenes: plan.scenes.clone(),
            fades,
            assets: (0..plan.scenes.len()).map(|_| None).collect(),
            plates,
            timed,
            typesetter,
            seed: plan.seed,
            order,
            scratch: Vec::new(),
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

    /// Every captioned scene's caption box as drawn, with its text and the window in which it
    /// is fully shown (outside the crossfades); `lang` is the captions' language.
    pub fn caption_boxes(&self, lang: &str) -> Vec<CaptionBox> {
        let mut boxes = Vec::new();
        for (i, plate) in self.plates.iter().enumerate() {
            let Some(plate) = plate else { continue };
            let s = &self.scenes[i];
            let fade_in = if i > 0 { self.fades[i - 1] / 2.0 } else { 0.0 };
            boxes.push(CaptionBox {
                scene: i,
                rect: plate.rect(),
                text: s.caption.clone(),
                lang: lang.to_owned(),
                lines: plate.lines().len() as u32,
                shown_from_s: s.start_s + fade_in,
                shown_until_s: s.start_s + s.duration_s - self.fades[i] / 2.0,
            });
        }
        boxes
    }

    /// The fonts that have drawn text so far, for the delivery manifest's credits.
    pub fn font_credits(&self) -> Vec<crate::render::fonts::FontCredit> {
        self.typesetter.fonts.credits()
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
        self.ensure_assets(first, t);
        if let Some((next, _)) = second {
            self.ensure_assets(next, t);
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

    /// Drops the assets of scenes outside `lo..=hi`, so only on-screen scenes hold memory.
    fn retain_assets(&mut self, lo: usize, hi: usize) {
        for (i, slot) in self.assets.iter_mut().enumerate() {
            if (i < lo || i > hi) && slot.is_some() {
                *slot = None;
            }
        }
    }

    /// Builds the fixed assets of scene `index` if they are not cached yet, and brings its
    /// caption to the state of instant `t` (re-rasterised only when the spoken word changes).
    fn ensure_assets(&mut self, index: usize, t: f64) {
        if self.assets[index].is_none() {
            self.assets[index] = Some(self.build_assets(index));
        }
        self.size_sprites(index, t);
        let Some(plate) = &self.plates[index] else { return };
        let words = &self.timed[index];
        let state = word_at(words, t);
        let assets = self.assets[index].as_mut().expect("built above");
        if assets.caption.as_ref().is_some_and(|(s, _)| *s == state) {
            return;
        }
        // Layout succeeded in `new`; rasterising the same glyphs cannot fail except for an
        // emoji whose picture failed to load, which `new` also checked by laying it out.
        match plate.render(&self.typesetter, &progress_at(words, t)) {
            Ok(mut overlay) => {
                if self.order == ChannelOrder::Bgr {
                    overlay.pixels.chunks_exact_mut(4).for_each(|px| px.swap(0, 2));
                }
                assets.caption = Some((state, overlay));
            }
            Err(e) => {
                tracing::error!(scene = index + 1, error = %e, "caption could not be rasterised");
                assets.caption = None;
            }
        }
    }

    /// Rasterises scene `index`'s illustrations at the size instant `t` shows them, when that
    /// size has moved more than a step from the last rasterisation.
    fn size_sprites(&mut self, index: usize, t: f64) {
        let scene = &self.scenes[index];
        let (w, h) = (self.width, self.height);
        let local = (t - scene.start_s) as f32;
        let u = if scene.duration_s > 0.0 { local / scene.duration_s as f32 } else { 0.0 };
        let Some(assets) = self.assets[index].as_mut() else { return };
        if assets.sprites.is_empty() {
            return;
        }
        let Ok(set) = self.typesetter.icons.get() else { return };
        for sprite in &mut assets.sprites {
            let (_, _, size, _) = place_sprite(sprite, scene, u, local, w, h);
            let want = size.round().max(1.0) as usize;
            let stale = match &sprite.bitmap {
                Some((have, _)) => (*have as f32 - want as f32).abs() > RESIZE_STEP * want as f32,
                None => true,
            };
            if stale && let Ok(mut bitmap) = set.rasterize(&sprite.name, want) {
                if self.order == ChannelOrder::Bgr {
                    bitmap.pixels.chunks_exact_mut(4).for_each(|px| px.swap(0, 2));
                }
                sprite.bitmap = Some((bitmap.size, bitmap.pixels));
            }
        }
    }

    /// The parts of scene `index` that never change while it plays.
    fn build_assets(&self, index: usize) -> SceneAssets {
        let scene = &self.scenes[index];
        let background = gradient(&scene.background, self.width, self.height, self.order);
        let mut rng = SplitMix(self.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let drift = scene
            .shapes
            .iter()
            .map(|_| [rng.unit() * TAU, rng.unit() * TAU, 0.05 + 0.1 * rng.unit(), 0.05 + 0.1 * rng.unit()])
            .collect();
        let caption = self.plates[index].as_ref().map(|p| {
            let r = p.rect();
            (r.y, r.y + r.height)
        });
        let slots = sprite_slots(
            scene.illustrations.len().min(3),
            self.width as u32,
            self.height as u32,
            scene.typography.safe_margin,
            caption,
        );
        let sprites = scene
            .illustrations
            .iter()
            .zip(slots)
            .enumerate()
            .map(|(i, (ill, (cx, cy, size)))| Sprite {
                name: ill.name.clone(),
                cx,
                cy,
                size,
                delay: 0.15 + STAGGER_S * i as f32,
                bitmap: None,
            })
            .collect();
        SceneAssets { background, caption: None, drift, sprites }
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
        // The decorative shapes give a scene without pictures its motion; a scene with
        // illustrations shows them alone on its gradient (rings and boxes drifting across the
        // subject looked like clutter, not design).
        let n = if assets.sprites.is_empty() { scene.shapes.len() } else { 0 };
        for (i, shape) in scene.shapes.iter().take(n).enumerate() {
            let depth = if n > 1 { i as f32 / (n - 1) as f32 } else { 1.0 };
            let placed = place_shape(shape, scene, u, local, depth, &assets.drift[i], w, h);
            draw_shape(frame, w, h, &placed, shape, self.order);
        }
        for sprite in &assets.sprites {
            if let Some((size, pixels)) = &sprite.bitmap {
                let (x, y, _, alpha) = place_sprite(sprite, scene, u, local, w, h);
                blit_sprite(frame, w, h, pixels, *size, x, y, alpha);
            }
        }
        if let Some((_, caption)) = &assets.caption {
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
    let (x, y, r) = apply_camera(scene, u, depth, shape.x * wf, shape.y * hf, shape.size.max(0.0) * short, wf, hf);
    let k = scene.motion.intensity.clamp(0.0, 1.0);
    let drift_amp = if scene.motion.camera == Camera::Static { (0.01 + 0.02 * k) * short } else { 0.004 * short };
    let x = x + drift_amp * (TAU * drift[2] * local_s + drift[0]).sin();
    let y = y + drift_amp * (TAU * drift[3] * local_s + drift[1]).cos();
    Placed { cx: x, cy: y, r }
}

/// The scene's camera move applied to a point (`x`, `y`) with size `r`, in pixels, at
/// normalised scene time `u`; layers with `depth` near 1 move more (parallax).
#[allow(clippy::too_many_arguments)]
fn apply_camera(
    scene: &ScenePlan,
    u: f32,
    depth: f32,
    mut x: f32,
    mut y: f32,
    mut r: f32,
    wf: f32,
    hf: f32,
) -> (f32, f32, f32) {
    let (cx, cy) = (wf / 2.0, hf / 2.0);
    let k = scene.motion.intensity.clamp(0.0, 1.0);
    let scale_about_centre = |x: &mut f32, y: &mut f32, r: &mut f32, s: f32| {
        *x = cx + (*x - cx) * s;
        *y = cy + (*y - cy) * s;
        *r *= s;
    };
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
        Camera::Static => {}
    }
    (x, y, r)
}

/// Seconds an illustration takes to enter.
const ENTER_S: f32 = 0.6;
/// Delay between the entrances of a scene's illustrations.
const STAGGER_S: f32 = 0.18;
/// Illustrations move less than the front shapes: they are the subject, not decoration.
const SPRITE_DEPTH: f32 = 0.5;
/// How much a sprite's size may drift before it is rasterised again (fraction of its size).
const RESIZE_STEP: f32 = 0.03;

/// Places `n` illustrations (1–3) inside the safe area, clear of the caption (its top and
/// bottom rows): above it, or below it where that leaves more room (a title caption in the
/// middle of the frame). Centre fractions and side lengths in pixels, the first the largest.
fn sprite_slots(n: usize, w: u32, h: u32, margin: f32, caption: Option<(u32, u32)>) -> Vec<(f32, f32, f32)> {
    if n == 0 {
        return Vec::new();
    }
    let safe = SafeArea::of(w, h, margin);
    let gap = 0.02 * h as f32;
    let (top, bottom) = match caption {
        Some((c_top, c_bottom)) => {
            let above = (safe.top, (c_top as f32 - gap).min(safe.bottom));
            let below = ((c_bottom as f32 + gap).max(safe.top), safe.bottom);
            if below.1 - below.0 > above.1 - above.0 { below } else { above }
        }
        None => (safe.top, safe.bottom),
    };
    let (left, right) = (safe.left, safe.right);
    let (rw, rh) = ((right - left).max(1.0), (bottom - top).max(1.0));
    // A row or a column, whichever gives the larger pictures.
    let row = (rw / n as f32).min(rh);
    let col = rw.min(rh / n as f32);
    let cell = row.max(col) * 0.8;
    (0..n)
        .map(|i| {
            let (x, y) = if row >= col {
                (left + rw * (i as f32 + 0.5) / n as f32, top + rh / 2.0)
            } else {
                (left + rw / 2.0, top + rh * (i as f32 + 0.5) / n as f32)
            };
            let size = if i == 0 || n == 1 { cell } else { cell * 0.8 };
            (x / w as f32, y / h as f32, size)
        })
        .collect()
}

/// Where a sprite is at scene time `local_s` (`u` normalised): centre, side and opacity.
fn place_sprite(sprite: &Sprite, scene: &ScenePlan, u: f32, local_s: f32, w: usize, h: usize) -> (f32, f32, f32, f32) {
    let (wf, hf) = (w as f32, h as f32);
    let enter = smoothstep((local_s - sprite.delay) / ENTER_S);
    let (x, y, size) = apply_camera(scene, u, SPRITE_DEPTH, sprite.cx * wf, sprite.cy * hf, sprite.size, wf, hf);
    let bob = 0.006 * wf.min(hf) * (TAU * 0.25 * local_s + sprite.delay * 7.0).sin();
    let rise = (1.0 - enter) * 0.05 * hf;
    (x, y + bob + rise, size * (0.85 + 0.15 * enter), enter)
}

/// Blends a premultiplied RGBA square (`size` px, channel order already the frame's) centred
/// at (`cx`, `cy`) with extra opacity `alpha`.
fn blit_sprite(frame: &mut FrameMut<'_>, w: usize, h: usize, bitmap: &[u8], size: usize, cx: f32, cy: f32, alpha: f32) {
    let k = (alpha.clamp(0.0, 1.0) * 256.0) as u32;
    if k == 0 {
        return;
    }
    let x0 = (cx - size as f32 / 2.0).round() as i64;
    let y0 = (cy - size as f32 / 2.0).round() as i64;
    for sy in 0..size {
        let y = y0 + sy as i64;
        if y < 0 || y >= h as i64 {
            continue;
        }
        let sx0 = (-x0).max(0) as usize;
        let sx1 = ((w as i64 - x0).min(size as i64)).max(0) as usize;
        if sx0 >= sx1 {
            continue;
        }
        let row = &mut frame.data[y as usize * frame.stride..y as usize * frame.stride + w * 3];
        let src = &bitmap[(sy * size + sx0) * 4..(sy * size + sx1) * 4];
        let dst = &mut row[((x0 + sx0 as i64) as usize) * 3..((x0 + sx1 as i64) as usize) * 3];
        for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(4)) {
            let a = (s[3] as u32 * k) >> 8;
            if a == 0 {
                continue;
            }
            let inv = 255 - a;
            for c in 0..3 {
                d[c] = (((s[c] as u32 * k) >> 8) + div255(d[c] as u32 * inv)).min(255) as u8;
            }
        }
    }
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

/// The colour of the word being spoken: warm yellow on light text, deep red on dark text.
fn highlight_for(text: Rgb) -> Rgb {
    let luma = 0.2126 * text.0 as f32 + 0.7152 * text.1 as f32 + 0.0722 * text.2 as f32;
    if luma > 128.0 { Rgb(255, 214, 10) } else { Rgb(190, 30, 20) }
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
    fn illustrations_take_the_larger_side_of_the_caption_and_never_cover_it() {
        let (w, h) = (720u32, 1280u32);
        let safe = SafeArea::of(w, h, 0.06);
        for caption in [(560u32, 700u32), (300, 420), (1000, 1100)] {
            let slots = sprite_slots(2, w, h, 0.06, Some(caption));
            let below = safe.bottom - caption.1 as f32 > caption.0 as f32 - safe.top;
            for (_, cy, size) in &slots {
                let (top, bottom) = (cy * h as f32 - size / 2.0, cy * h as f32 + size / 2.0);
                assert!(bottom <= caption.0 as f32 || top >= caption.1 as f32, "{caption:?}: {top}..{bottom}");
                assert_eq!(top >= caption.1 as f32, below, "{caption:?}: the larger free side");
            }
        }
    }

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
