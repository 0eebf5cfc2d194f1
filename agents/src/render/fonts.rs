//! The fonts on-screen text is set in: the configured caption font first, then Debian's Noto
//! families as an ordered fallback chain, so every script the pipeline accepts has a face
//! that covers it. Faces are found at fixed Debian paths (no fontconfig: the renderer must
//! behave the same in a container without a font cache) and loaded only when a character
//! first needs them, because the whole Noto set is hundreds of megabytes.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use ab_glyph::{Font, FontVec, PxScale};
use serde::{Deserialize, Serialize};

use crate::agent::AgentError;

/// Where Debian's `fonts-noto-core` puts its TrueType faces.
pub const NOTO_CORE_DIR: &str = "/usr/share/fonts/truetype/noto";
/// Where Debian's `fonts-noto-cjk` puts its OpenType collections.
pub const NOTO_CJK_DIR: &str = "/usr/share/fonts/opentype/noto";
/// Where Debian's `fonts-dejavu-core` puts its faces (symbols Noto Sans lacks).
pub const DEJAVU_DIR: &str = "/usr/share/fonts/truetype/dejavu";

/// Faces tried right after the caption font, in order: the scripts captions meet most.
const PREFERRED: &[&str] = &["NotoSans-Bold.ttf", "NotoSansArabic-Bold.ttf", "NotoSansHebrew-Bold.ttf"];
/// Faces tried after every other Noto face: symbol sets and DejaVu's broad coverage.
const LAST_RESORT: &[(&str, &str)] = &[
    (NOTO_CORE_DIR, "NotoSansSymbols-Bold.ttf"),
    (NOTO_CORE_DIR, "NotoSansSymbols2-Regular.ttf"),
    (NOTO_CORE_DIR, "NotoSansMath-Regular.ttf"),
    (DEJAVU_DIR, "DejaVuSans-Bold.ttf"),
    (DEJAVU_DIR, "DejaVuSans.ttf"),
];

/// Index of each language's face in `NotoSansCJK-Bold.ttc` (JP, KR, SC, TC, HK in that
/// order); all of them cover kana, hangul and the unified ideographs, but each draws the
/// ideographs the way its readers expect.
fn cjk_index(lang: &str) -> u32 {
    match lang.split(['-', '_']).next().unwrap_or("") {
        "ko" => 1,
        "zh" if lang.contains("TW") || lang.contains("Hant") => 3,
        "zh" => 2,
        _ => 0,
    }
}

/// What the delivery manifest credits for a face that drew text: family, version and licence
/// as the font's own name table states them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FontCredit {
    /// Family name (name ID 1, or 16 where present).
    pub family: String,
    /// Version string (name ID 5).
    pub version: String,
    /// Licence description (name ID 13), e.g. the SIL Open Font License notice.
    pub license: String,
    /// The file the face came from.
    pub path: PathBuf,
}

/// A face loaded into memory, ready to shape (rustybuzz reads the same bytes) and rasterise.
pub struct LoadedFace {
    /// The face, owning its bytes.
    pub font: FontVec,
    /// Index of the face inside its file (collections hold several).
    pub index: u32,
    /// Font units per em, the unit of every shaping position.
    pub units_per_em: f32,
    /// Name-table facts for the credits.
    pub credit: FontCredit,
}

impl LoadedFace {
    /// The ab_glyph scale that makes one em `em_px` pixels (ab_glyph scales by the font's
    /// ascent-to-descent height, which differs between faces).
    pub fn scale_for_em(&self, em_px: f32) -> PxScale {
        PxScale::from(em_px * self.font.height_unscaled() / self.units_per_em)
    }

    /// Whether the face has a glyph for `ch`.
    pub fn covers(&self, ch: char) -> bool {
        self.font.glyph_id(ch).0 != 0
    }
}

/// One place in the fallback chain: a face on disk, loaded on first use.
struct Slot {
    path: PathBuf,
    index: u32,
    face: OnceLock<Option<LoadedFace>>,
    used: AtomicBool,
}

/// The fallback chain. `face_for` answers which face draws a character; a character no face
/// covers is the caller's error to report, never a box.
pub struct FontBook {
    slots: Vec<Slot>,
}

impl std::fmt::Debug for FontBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.slots.iter().map(|s| (&s.path, s.index))).finish()
    }
}

impl FontBook {
    /// The chain for captions in `lang` (ISO 639-1, picks the CJK face): `primary` first,
    /// then Noto Sans (Latin, Greek, Cyrillic), Arabic, Hebrew, CJK, every other Noto Sans
    /// bold face, symbols, DejaVu. Files that are not installed are left out; the primary
    /// font must exist and load, since the plan's look depends on it.
    pub fn debian(primary: &Path, lang: &str) -> Result<FontBook, AgentError> {
        let mut paths: Vec<(PathBuf, u32)> = vec![(primary.to_path_buf(), 0)];
        let core = Path::new(NOTO_CORE_DIR);
        paths.extend(PREFERRED.iter().map(|f| (core.join(f), 0)));
        paths.push((Path::new(NOTO_CJK_DIR).join("NotoSansCJK-Bold.ttc"), cjk_index(lang)));
        let mut others: Vec<PathBuf> = std::fs::read_dir(core)
            .map(|dir| {
                dir.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                        name.starts_with("NotoSans") && name.ends_with("-Bold.ttf") && !name.contains("Mono")
                    })
                    .collect()
            })
            .unwrap_or_default();
        others.sort();
        paths.extend(others.into_iter().map(|p| (p, 0)));
        paths.extend(LAST_RESORT.iter().map(|(d, f)| (Path::new(d).join(f), 0)));
        FontBook::from_paths(paths)
    }

    /// A chain of exactly these faces, in order (tests and tools that pin their fonts).
    /// Missing files after the first are skipped; duplicates are dropped.
    pub fn from_paths(paths: Vec<(PathBuf, u32)>) -> Result<FontBook, AgentError> {
        let mut slots: Vec<Slot> = Vec::new();
        for (i, (path, index)) in paths.into_iter().enumerate() {
            if i > 0 && !path.is_file() {
                continue;
            }
            if slots.iter().any(|s| s.path == path && s.index == index) {
                continue;
            }
            slots.push(Slot { path, index, face: OnceLock::new(), used: AtomicBool::new(false) });
        }
        let book = FontBook { slots };
        let first = book.slots.first().ok_or_else(|| AgentError::Permanent("no caption font given".into()))?;
        if book.face(0).is_none() {
            return Err(AgentError::Permanent(format!(
                "caption font {} is missing or not a usable font",
                first.path.display()
            )));
        }
        Ok(book)
    }

    /// Number of faces in the chain (loaded or not).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the chain is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Face `i` of the chain, loading it on first use; `None` when its file cannot be read
    /// or parsed (it is then skipped, as an uninstalled one would be).
    pub fn face(&self, i: usize) -> Option<&LoadedFace> {
        let slot = self.slots.get(i)?;
        slot.face.get_or_init(|| load(&slot.path, slot.index)).as_ref()
    }

    /// The first face in the chain that covers `ch`, as (chain index, face).
    pub fn face_for(&self, ch: char) -> Option<(usize, &LoadedFace)> {
        (0..self.slots.len()).find_map(|i| self.face(i).filter(|f| f.covers(ch)).map(|f| (i, f)))
    }

    /// Records that face `i` drew text, so it is credited.
    pub fn mark_used(&self, i: usize) {
        if let Some(s) = self.slots.get(i) {
            s.used.store(true, Ordering::Relaxed);
        }
    }

    /// Credits for every face that drew text so far, in chain order.
    pub fn credits(&self) -> Vec<FontCredit> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].used.load(Ordering::Relaxed))
            .filter_map(|i| self.face(i).map(|f| f.credit.clone()))
            .collect()
    }
}

/// Reads and parses one face; `None` when the file is unreadable or not a font.
fn load(path: &Path, index: u32) -> Option<LoadedFace> {
    let bytes = std::fs::read(path).ok()?;
    let credit = {
        let face = rustybuzz::ttf_parser::Face::parse(&bytes, index).ok()?;
        let name = |ids: &[u16]| -> String {
            ids.iter()
                .find_map(|id| {
                    face.names().into_iter().filter(|n| n.name_id == *id && n.is_unicode()).find_map(|n| n.to_string())
                })
                .unwrap_or_default()
        };
        FontCredit { family: name(&[16, 1]), version: name(&[5]), license: name(&[13]), path: path.to_path_buf() }
    };
    let font = FontVec::try_from_vec_and_index(bytes, index).ok()?;
    let units_per_em = font.units_per_em().unwrap_or(1000.0);
    Some(LoadedFace { font, index, units_per_em, credit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_we_accept_has_a_face() {
        let book = FontBook::debian(Path::new("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"), "ja")
            .expect("fonts-noto-core is installed");
        for (ch, family) in [
            ('A', "Noto Sans"),
            ('é', "Noto Sans"),
            ('ж', "Noto Sans"),
            ('م', "Noto Sans Arabic"),
            ('ש', "Noto Sans Hebrew"),
            ('の', "Noto Sans CJK JP"),
            ('한', "Noto Sans CJK JP"),
            ('中', "Noto Sans CJK JP"),
            ('ก', "Noto Sans Thai"),
            ('क', "Noto Sans Devanagari"),
        ] {
            let (_, face) = book.face_for(ch).unwrap_or_else(|| panic!("no face covers {ch}"));
            assert_eq!(face.credit.family, family, "{ch}");
        }
        let (i, face) = book.face_for('م').unwrap();
        book.mark_used(i);
        let credits = book.credits();
        assert_eq!(credits.len(), 1);
        assert!(face.credit.license.contains("Open Font License"), "{:?}", face.credit);
        assert!(face.credit.version.starts_with("Version"), "{:?}", face.credit);
    }

    #[test]
    fn the_cjk_face_follows_the_language() {
        let primary = Path::new("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf");
        for (lang, family) in [("zh", "Noto Sans CJK SC"), ("ko", "Noto Sans CJK KR"), ("en", "Noto Sans CJK JP")] {
            let book = FontBook::debian(primary, lang).unwrap();
            assert_eq!(book.face_for('中').unwrap().1.credit.family, family, "{lang}");
        }
    }

    #[test]
    fn a_missing_primary_font_is_a_permanent_error() {
        let err = FontBook::debian(Path::new("/nowhere/Missing.ttf"), "en").unwrap_err();
        assert!(matches!(err, AgentError::Permanent(ref m) if m.contains("/nowhere/Missing.ttf")), "{err:?}");
    }
}
