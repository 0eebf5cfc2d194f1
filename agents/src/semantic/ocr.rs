//! Captions read back: each caption rectangle the renderer recorded is cut from a frame of
//! the decoded video ([`super::frames`]) where the caption is fully shown, upscaled 2× (tesseract reads small
//! text poorly) and read with the `tesseract` CLI; the character error rate against the
//! intended text decides. Boxes drawn for missing glyphs (tofu), cut-off or covered text
//! all read back as something else and fail with the measured rate.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;

use crate::domain::RenderPlan;
use crate::render::CaptionBox;

use super::checks::{CAPTION_READBACK, Check};
use super::frames::Grabbed;
use super::frames::Gray;

/// Highest character error rate at which a caption still counts as read back. Measured:
/// clean Latin captions read back at 0–0.05, CJK at ≤ 0.25; tofu reads back at ≥ 0.65.
pub const CER_MAX: f64 = 0.35;

/// The tesseract language pack for an ISO 639-1 language tag (`pt-BR` → `por`).
pub fn tesseract_lang(lang: &str) -> Option<&'static str> {
    let base = lang.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
    Some(match base.as_str() {
        "en" => "eng",
        "ja" => "jpn",
        "zh" => "chi_sim",
        "ko" => "kor",
        "ar" => "ara",
        "he" | "iw" => "heb",
        "fr" => "fra",
        "de" => "deu",
        "es" => "spa",
        "it" => "ita",
        "pt" => "por",
        _ => return None,
    })
}

/// The language packs the installed tesseract lists, or why tesseract cannot run.
fn installed_langs() -> &'static Result<Vec<String>, String> {
    static LANGS: OnceLock<Result<Vec<String>, String>> = OnceLock::new();
    LANGS.get_or_init(|| {
        let out = Command::new("tesseract")
            .arg("--list-langs")
            .output()
            .map_err(|e| format!("tesseract cannot be started: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        Ok(text.lines().skip(1).map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect())
    })
}

/// Text reduced to what OCR is judged on: lowercase letters and digits of any script, no
/// whitespace, punctuation or symbols (tesseract spaces CJK characters apart and misreads
/// quotes; neither is what a viewer cares about).
pub fn normalise(text: &str) -> Vec<char> {
    text.chars().flat_map(char::to_lowercase).filter(|c| c.is_alphanumeric()).collect()
}

/// Character error rate: edit distance between the normalised texts over the reference's
/// length (0 = identical; can exceed 1 when the read-back is much longer).
pub fn cer(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (normalise(reference), normalise(hypothesis));
    if r.is_empty() {
        return if h.is_empty() { 0.0 } else { 1.0 };
    }
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    let mut cur = vec![0usize; h.len() + 1];
    for (i, rc) in r.iter().enumerate() {
        cur[0] = i + 1;
        for (j, hc) in h.iter().enumerate() {
            let sub = prev[j] + usize::from(rc != hc);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[h.len()] as f64 / r.len() as f64
}

/// The frame time at which `b`'s caption is read: near the end of its fully-shown window,
/// where a kinetic caption has every word spoken and drawn at full strength.
pub fn read_time(b: &CaptionBox) -> f64 {
    let window = (b.shown_until_s - b.shown_from_s).max(0.0);
    b.shown_until_s - (window / 4.0).min(0.25)
}

/// Cuts `b`'s rectangle from `frame`, upscaled 2×, into `path` (PGM).
fn crop(frame: &Gray, b: &CaptionBox, path: &Path) -> Result<(), String> {
    let r = b.rect;
    frame.crop_scaled(r.x as usize, r.y as usize, r.width as usize, r.height as usize, 2).write_pgm(path)
}

/// Reads `png` with tesseract in `lang`; one text line (`--psm 7`) or a block (`--psm 6`).
fn read(png: &Path, lang: &str, lines: u32) -> Result<String, String> {
    let psm = if lines <= 1 { "7" } else { "6" };
    let out = Command::new("tesseract")
        .arg(png)
        .args(["stdout", "-l", lang, "--psm", psm])
        .output()
        .map_err(|e| format!("tesseract cannot be started: {e}"))?;
    if !out.status.success() {
        return Err(format!("tesseract failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" "))
}

/// One check per captioned scene (see the module doc), on frames grabbed at each box's
/// [`read_time`]; scenes without a caption get none.
pub fn check_captions(grabbed: &Grabbed, plan: &RenderPlan, boxes: &[CaptionBox], scratch: &Path) -> Vec<Check> {
    let captioned: Vec<usize> =
        plan.scenes.iter().enumerate().filter(|(_, s)| !s.caption.trim().is_empty()).map(|(i, _)| i).collect();
    if captioned.is_empty() {
        return vec![Check::not_applicable(CAPTION_READBACK, None, "no scene has a caption")];
    }
    if boxes.is_empty() {
        return vec![Check::not_applicable(
            CAPTION_READBACK,
            None,
            "the render recorded no caption rectangles, so there is nothing exact to read back",
        )];
    }
    let langs = match installed_langs() {
        Ok(l) => l,
        Err(why) => return vec![Check::not_measured(CAPTION_READBACK, None, why.clone())],
    };
    let mut checks = Vec::new();
    for scene in captioned {
        let Some(b) = boxes.iter().find(|b| b.scene == scene) else {
            checks.push(Check::not_applicable(CAPTION_READBACK, Some(scene), "no caption rectangle was recorded"));
            continue;
        };
        let Some(pack) = tesseract_lang(&b.lang).filter(|p| langs.iter().any(|l| l == p)) else {
            checks.push(Check::not_measured(
                CAPTION_READBACK,
                Some(scene),
                format!("not measured: no OCR data for language '{}'", b.lang),
            ));
            continue;
        };
        let Some(frame) = grabbed.at(read_time(b), plan.video.fps) else {
            checks.push(Check::measured(
                CAPTION_READBACK,
                Some(scene),
                false,
                0.0,
                format!("the video ends before the caption is shown at {:.1} s", read_time(b)),
                json!({"at_s": read_time(b)}),
            ));
            continue;
        };
        let png = scratch.join(format!("caption_{scene:02}.pgm"));
        let text = crop(frame, b, &png).and_then(|_| read(&png, pack, b.lines));
        let _ = std::fs::remove_file(&png);
        match text {
            Err(why) => checks.push(Check::not_measured(CAPTION_READBACK, Some(scene), why)),
            Ok(read_back) => {
                let rate = cer(&b.text, &read_back);
                let ok = rate <= CER_MAX;
                let reason = if ok {
                    format!("caption reads back as \"{read_back}\" (character error rate {rate:.2})")
                } else {
                    format!(
                        "caption \"{}\" reads back as \"{read_back}\": character error rate {rate:.2} > {CER_MAX} \
                         (missing glyphs, cut-off or covered text)",
                        b.text
                    )
                };
                let measured = json!({"cer": (rate * 1000.0).round() / 1000.0, "read": read_back,
                    "intended": b.text, "lang": b.lang, "ocr_lang": pack, "rect": b.rect});
                checks.push(Check::measured(CAPTION_READBACK, Some(scene), ok, 1.0 - rate.min(1.0), reason, measured));
            }
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cer_ignores_case_punctuation_and_spacing() {
        assert_eq!(cer("Fresh bread at dawn.", "fresh bread at dawn"), 0.0);
        assert_eq!(cer("朝の光", "朝 の 光"), 0.0);
        assert!((cer("朝の光", "上") - 1.0).abs() < 1e-9, "tofu read as one other character");
        assert!((cer("abcd", "abed") - 0.25).abs() < 1e-9);
        assert_eq!(cer("", ""), 0.0);
    }

    #[test]
    fn languages_map_to_tesseract_packs() {
        assert_eq!(tesseract_lang("pt-BR"), Some("por"));
        assert_eq!(tesseract_lang("zh"), Some("chi_sim"));
        assert_eq!(tesseract_lang("sw"), None);
    }
}
