//! Frames decoded from the rendered file itself, once: every frame the checks need (the
//! caption frames, three per scene for the picture checks) is selected by frame number in a
//! single ffmpeg pass and written as 8-bit grey PGM, which both Rust and tesseract read.
//! From them come the picture checks — a scene that is black or blank, a scene whose
//! picture does not move although the plan animates it (frozen).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::domain::RenderPlan;

use super::checks::{BLACK_SCENE, Check, FROZEN_SCENE};

/// An 8-bit grey image.
#[derive(Debug, Clone, PartialEq)]
pub struct Gray {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major luma, `width * height` bytes.
    pub data: Vec<u8>,
}

impl Gray {
    /// Reads a binary PGM (`P5`, 8-bit).
    pub fn read_pgm(path: &Path) -> Result<Gray, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut fields = Vec::new();
        let mut i = 0;
        while fields.len() < 4 && i < bytes.len() {
            if bytes[i] == b'#' {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            } else if bytes[i].is_ascii_whitespace() {
                i += 1;
            } else {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                fields.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
            }
        }
        let bad = || format!("{} is not an 8-bit binary PGM", path.display());
        if fields.len() < 4 || fields[0] != "P5" || fields[3] != "255" {
            return Err(bad());
        }
        let width: usize = fields[1].parse().map_err(|_| bad())?;
        let height: usize = fields[2].parse().map_err(|_| bad())?;
        let data = bytes.get(i + 1..i + 1 + width * height).ok_or_else(bad)?.to_vec();
        Ok(Gray { width, height, data })
    }

    /// Writes a binary PGM.
    pub fn write_pgm(&self, path: &Path) -> Result<(), String> {
        let mut out = format!("P5\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.data);
        std::fs::write(path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The rectangle `(x, y, w, h)` (clipped to the image), upscaled `factor`× with bilinear
    /// interpolation.
    pub fn crop_scaled(&self, x: usize, y: usize, w: usize, h: usize, factor: usize) -> Gray {
        let x = x.min(self.width.saturating_sub(1));
        let y = y.min(self.height.saturating_sub(1));
        let w = w.min(self.width - x).max(1);
        let h = h.min(self.height - y).max(1);
        let (ow, oh) = (w * factor, h * factor);
        let mut data = vec![0u8; ow * oh];
        let at = |cx: usize, cy: usize| self.data[(y + cy.min(h - 1)) * self.width + x + cx.min(w - 1)] as f32;
        for oy in 0..oh {
            let sy = ((oy as f32 + 0.5) / factor as f32 - 0.5).max(0.0);
            let (y0, fy) = (sy.floor() as usize, sy.fract());
            for ox in 0..ow {
                let sx = ((ox as f32 + 0.5) / factor as f32 - 0.5).max(0.0);
                let (x0, fx) = (sx.floor() as usize, sx.fract());
                let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
                let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
                data[oy * ow + ox] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
        }
        Gray { width: ow, height: oh, data }
    }

    /// Mean and standard deviation of the luma, 0–1.
    pub fn mean_sd(&self) -> (f64, f64) {
        let n = self.data.len().max(1) as f64;
        let mean = self.data.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = self.data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean / 255.0, var.sqrt() / 255.0)
    }

    /// Mean absolute difference to `other` (same size), 0–255 levels.
    pub fn mean_abs_diff(&self, other: &Gray) -> f64 {
        if self.data.len() != other.data.len() {
            return 255.0;
        }
        let sum: u64 = self.data.iter().zip(&other.data).map(|(a, b)| a.abs_diff(*b) as u64).sum();
        sum as f64 / self.data.len().max(1) as f64
    }
}

/// Frames decoded from one video, keyed by frame number.
#[derive(Debug, Default)]
pub struct Grabbed {
    /// Frame number → decoded grey frame.
    pub frames: BTreeMap<u64, Gray>,
}

impl Grabbed {
    /// The frame shown at `t` seconds, if it was grabbed.
    pub fn at(&self, t: f64, fps: u32) -> Option<&Gray> {
        self.frames.get(&frame_number(t, fps))
    }
}

/// The frame shown at `t` seconds.
pub fn frame_number(t: f64, fps: u32) -> u64 {
    (t.max(0.0) * fps as f64).floor() as u64
}

/// Decodes `video` once and keeps the frames shown at `times` (seconds), as grey PGMs in
/// `dir` read back into memory.
pub fn grab(video: &Path, fps: u32, times: &[f64], dir: &Path) -> Result<Grabbed, String> {
    let mut wanted: Vec<u64> = times.iter().map(|t| frame_number(*t, fps)).collect();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(Grabbed::default());
    }
    let expr: Vec<String> = wanted.iter().map(|n| format!("eq(n\\,{n})")).collect();
    let pattern: PathBuf = dir.join("frame_%04d.pgm");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(video)
        .args(["-map", "0:v:0", "-vf", &format!("select='{}',format=gray", expr.join("+")), "-vsync", "0"])
        .arg(&pattern)
        .output()
        .map_err(|e| format!("ffmpeg cannot be started: {e}"))?;
    if !out.status.success() {
        return Err(format!("ffmpeg could not decode the video: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let mut grabbed = Grabbed::default();
    for (k, n) in wanted.iter().enumerate() {
        let path = dir.join(format!("frame_{:04}.pgm", k + 1));
        if !path.is_file() {
            break; // the video is shorter than the plan: later frames do not exist
        }
        let frame = Gray::read_pgm(&path);
        let _ = std::fs::remove_file(&path);
        grabbed.frames.insert(*n, frame?);
    }
    Ok(grabbed)
}

/// Decodes `video` once and writes the frame shown in the middle of each scene as an RGB
/// PNG in `dir` (the frames the renderer would have saved as keyframes), in scene order: the
/// keyframes of a file that did not come from this renderer, or was edited after it.
pub fn keyframes_png(video: &Path, plan: &RenderPlan, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let fps = plan.video.fps;
    let numbers: Vec<u64> = plan.scenes.iter().map(|s| frame_number(s.start_s + s.duration_s / 2.0, fps)).collect();
    let mut wanted = numbers.clone();
    wanted.sort_unstable();
    wanted.dedup();
    let expr: Vec<String> = wanted.iter().map(|n| format!("eq(n\\,{n})")).collect();
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(video)
        .args(["-map", "0:v:0", "-vf", &format!("select='{}'", expr.join("+")), "-vsync", "0", "-pix_fmt", "rgb24"])
        .arg(dir.join("keyframe_%03d.png"))
        .output()
        .map_err(|e| format!("ffmpeg cannot be started: {e}"))?;
    if !out.status.success() {
        return Err(format!("ffmpeg could not decode the video: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    numbers
        .iter()
        .map(|n| {
            let k = wanted.iter().position(|w| w == n).unwrap_or(0);
            let path = dir.join(format!("keyframe_{:03}.png", k + 1));
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("the video has no frame {n} (it is shorter than the plan)"))
            }
        })
        .collect()
}

/// Luma mean (0–1, as coded: video black is 16/255 ≈ 0.063) under which a frame with little
/// detail ([`BLACK_SD`]) is black.
pub const BLACK_MEAN: f64 = 0.08;
/// Luma spread under which a dark frame counts as black.
pub const BLACK_SD: f64 = 0.03;
/// Luma standard deviation under which a frame of any brightness shows nothing.
pub const BLANK_SD: f64 = 0.01;
/// Mean absolute luma change (levels) between two instants of a moving scene under which
/// its picture counts as frozen.
pub const FROZEN_DIFF: f64 = 0.15;

/// The three instants per scene the picture checks look at: a quarter, half and three
/// quarters into the scene.
pub fn scene_times(plan: &RenderPlan) -> Vec<[f64; 3]> {
    plan.scenes.iter().map(|s| [0.25, 0.5, 0.75].map(|f| s.start_s + f * s.duration_s)).collect()
}

/// Black/blank and frozen checks per scene, from frames grabbed at [`scene_times`].
pub fn check_pictures(plan: &RenderPlan, grabbed: &Grabbed) -> Vec<Check> {
    let fps = plan.video.fps;
    let mut checks = Vec::new();
    for (i, times) in scene_times(plan).iter().enumerate() {
        let [a, mid, b] = times.map(|t| grabbed.at(t, fps));
        let Some(mid) = mid else {
            checks.push(Check::measured(
                BLACK_SCENE,
                Some(i),
                false,
                0.0,
                "the video ends before this scene",
                json!({"at_s": times[1]}),
            ));
            continue;
        };
        let (mean, sd) = mid.mean_sd();
        let dark = mean < BLACK_MEAN && sd < BLACK_SD;
        let black = dark || sd < BLANK_SD;
        let reason = if !black {
            format!("picture shown (mean luma {mean:.2}, spread {sd:.3})")
        } else if dark {
            format!("the scene is black: mean luma {mean:.3} at {:.1} s", times[1])
        } else {
            format!("the scene is blank: luma spread {sd:.4} at {:.1} s", times[1])
        };
        checks.push(Check::measured(
            BLACK_SCENE,
            Some(i),
            !black,
            if black { 0.0 } else { 1.0 },
            reason,
            json!({"mean_luma": mean, "luma_sd": sd, "at_s": times[1]}),
        ));
        let scene = &plan.scenes[i];
        let animated = !scene.shapes.is_empty() && scene.motion.intensity > 0.0;
        match (a, b) {
            (Some(a), Some(b)) if animated => {
                let diff = a.mean_abs_diff(b);
                let ok = diff >= FROZEN_DIFF;
                let reason = if ok {
                    format!("the picture moves (mean change {diff:.2} levels)")
                } else {
                    format!(
                        "the picture is frozen: mean change {diff:.3} levels between {:.1} s and {:.1} s",
                        times[0], times[2]
                    )
                };
                checks.push(Check::measured(
                    FROZEN_SCENE,
                    Some(i),
                    ok,
                    (diff / FROZEN_DIFF).min(1.0),
                    reason,
                    json!({"mean_abs_diff": diff}),
                ));
            }
            (Some(_), Some(_)) => {
                checks.push(Check::not_applicable(FROZEN_SCENE, Some(i), "the plan does not animate this scene"))
            }
            _ => checks.push(Check::not_applicable(FROZEN_SCENE, Some(i), "the video ends before this scene")),
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgm_round_trips_and_crops_upscale() {
        let dir = tempfile::tempdir().unwrap();
        let g = Gray { width: 4, height: 2, data: vec![0, 50, 100, 150, 200, 250, 10, 20] };
        let path = dir.path().join("a.pgm");
        g.write_pgm(&path).unwrap();
        assert_eq!(Gray::read_pgm(&path).unwrap(), g);
        let c = g.crop_scaled(1, 0, 2, 2, 2);
        assert_eq!((c.width, c.height), (4, 4));
        assert_eq!(c.data[0], 50, "the corner keeps its value");
        assert_eq!(g.mean_abs_diff(&g), 0.0);
    }
}
