//! Text shaping for on-screen text in any script: splits a line into runs of one face (font
//! fallback over the [`FontBook`]) or one emoji picture (the [`IconLibrary`]), orders them
//! visually with the Unicode bidirectional algorithm (UAX #9), shapes each run with
//! rustybuzz (ligatures, Arabic joining, marks, kerning) and breaks text into lines at the
//! opportunities UAX #14 allows (so Chinese and Japanese wrap between characters, not only at
//! spaces). A character no face covers, or a glyph a face maps to `.notdef`, is an error
//! naming the character: a caption is never drawn with boxes.

use std::ops::Range;

use rustybuzz::{Direction, UnicodeBuffer};
use unicode_bidi::{BidiInfo, Level};
use unicode_linebreak::{BreakOpportunity, linebreaks};

use crate::agent::AgentError;
use crate::render::fonts::FontBook;
use crate::render::icons::IconLibrary;

/// Why text could not be set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TextError {
    /// No installed face has a glyph for this character.
    #[error("no installed font covers {ch:?} (U+{:04X}) in {text:?}; install fonts-noto-core and fonts-noto-cjk", *.ch as u32)]
    Uncovered {
        /// The character.
        ch: char,
        /// The text it appeared in.
        text: String,
    },
    /// The shaper produced the face's `.notdef` glyph for this character.
    #[error("the font {family} has no glyph for {ch:?} (U+{:04X}) in {text:?}", *.ch as u32)]
    Notdef {
        /// The character.
        ch: char,
        /// The face that was asked.
        family: String,
        /// The text it appeared in.
        text: String,
    },
    /// An emoji needs the illustration set and it could not be loaded.
    #[error("emoji {ch:?} needs the illustration set: {reason}")]
    NoIcons {
        /// The emoji's first character.
        ch: char,
        /// Why the set is unavailable.
        reason: String,
    },
}

impl From<TextError> for AgentError {
    fn from(e: TextError) -> Self {
        AgentError::Permanent(e.to_string())
    }
}

/// What a positioned glyph draws.
#[derive(Debug, Clone, PartialEq)]
pub enum GlyphKind {
    /// An outline glyph of chain face `face`.
    Outline {
        /// Index of the face in the [`FontBook`].
        face: usize,
        /// Glyph id inside that face (never 0, `.notdef`).
        id: u16,
    },
    /// A colour emoji drawn from the icon set, one em square.
    Icon {
        /// Icon name in the set.
        name: String,
    },
}

/// One glyph placed on a line, in pixels from the line's left edge and baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedGlyph {
    /// Left edge of the glyph's origin, pixels from the line start (visual order).
    pub x: f32,
    /// Offset above the baseline, pixels (marks sit higher or lower).
    pub y: f32,
    /// Advance after this glyph, pixels.
    pub advance: f32,
    /// Byte offset in the line's text of the character(s) this glyph draws.
    pub cluster: usize,
    /// What to draw.
    pub kind: GlyphKind,
}

/// A line of text shaped at one size, glyphs in visual (left-to-right) order.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapedLine {
    /// The line's text, logical order.
    pub text: String,
    /// Glyphs from left to right.
    pub glyphs: Vec<PlacedGlyph>,
    /// Total advance width, pixels.
    pub width: f32,
}

/// Advance of an emoji picture, in ems (a little air on both sides of the one-em square).
pub const ICON_ADVANCE_EM: f32 = 1.15;

/// A run of the line set in one face or drawn as one picture.
#[derive(Debug, Clone, PartialEq)]
enum ItemKind {
    Face(usize),
    Icon(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Item {
    range: Range<usize>,
    kind: ItemKind,
}

/// Characters that take no glyph of their own: joiners, variation selectors, controls.
fn is_ignorable(ch: char) -> bool {
    matches!(ch, '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        || ch.is_control()
}

/// Sets text with a font chain and, for emoji, an icon library.
pub struct Shaper<'a> {
    /// The fallback chain.
    pub fonts: &'a FontBook,
    /// Colour emoji pictures.
    pub icons: &'a IconLibrary,
}

impl<'a> Shaper<'a> {
    /// Splits `text` into face and picture runs, logical order.
    fn itemize(&self, text: &str) -> Result<Vec<Item>, TextError> {
        let indexed: Vec<(usize, char)> = text.char_indices().collect();
        let chars: Vec<char> = indexed.iter().map(|&(_, c)| c).collect();
        let end_of = |i: usize| indexed.get(i).map(|&(b, _)| b).unwrap_or(text.len());
        let mut items: Vec<Item> = Vec::new();
        let push = |items: &mut Vec<Item>, range: Range<usize>, kind: ItemKind| {
            if let Some(last) = items.last_mut()
                && last.kind == kind
                && matches!(kind, ItemKind::Face(_))
                && last.range.end == range.start
            {
                last.range.end = range.end;
                return;
            }
            items.push(Item { range, kind });
        };
        let mut i = 0;
        while i < chars.len() {
            let (start, ch) = indexed[i];
            let next = chars.get(i + 1).copied();
            // Emoji proper (pictographs, or anything asking for emoji presentation) and
            // symbols no font has are looked up in the picture set.
            let emoji_like = ch as u32 >= 0x1F000
                || matches!(next, Some('\u{FE0F}' | '\u{20E3}' | '\u{200D}'))
                || ('\u{2600}'..='\u{27BF}').contains(&ch);
            let maybe_emoji = emoji_like || (ch as u32 >= 0x2000 && self.fonts.face_for(ch).is_none());
            if maybe_emoji && !ch.is_ascii_alphanumeric() {
                match self.icons.get() {
                    Ok(set) => {
                        if let Some((name, len)) = set.match_emoji(&chars[i..]) {
                            push(&mut items, start..end_of(i + len), ItemKind::Icon(name.to_owned()));
                            i += len;
                            continue;
                        }
                    }
                    Err(reason) if emoji_like && self.fonts.face_for(ch).is_none() => {
                        return Err(TextError::NoIcons { ch, reason });
                    }
                    Err(_) => {}
                }
            }
            let current = items.last().and_then(|it| match it.kind {
                ItemKind::Face(f) if it.range.end == start => Some(f),
                _ => None,
            });
            let face = if is_ignorable(ch) {
                current.unwrap_or(0)
            } else if let Some(f) = current.filter(|&f| self.fonts.face(f).is_some_and(|face| face.covers(ch))) {
                f
            } else if let Some((f, _)) = self.fonts.face_for(ch) {
                f
            } else if ch.is_whitespace() {
                current.unwrap_or(0)
            } else {
                return Err(TextError::Uncovered { ch, text: text.to_owned() });
            };
            push(&mut items, start..end_of(i + 1), ItemKind::Face(face));
            i += 1;
        }
        Ok(items)
    }

    /// The paragraph direction of `text`: right-to-left when its first strong character is
    /// (UAX #9 rules P2–P3), so every line of a caption shares its paragraph's direction.
    pub fn paragraph_level(text: &str) -> Level {
        let info = BidiInfo::new(text, None);
        info.paragraphs.first().map(|p| p.level).unwrap_or_else(Level::ltr)
    }

    /// Shapes one line (no line breaks inside) at `em_px` pixels per em, with the paragraph
    /// direction `level`.
    pub fn shape_line(&self, text: &str, em_px: f32, level: Level) -> Result<ShapedLine, TextError> {
        let mut glyphs = Vec::new();
        let mut pen = 0.0f32;
        if text.is_empty() {
            return Ok(ShapedLine { text: String::new(), glyphs, width: 0.0 });
        }
        let items = self.itemize(text)?;
        let bidi = BidiInfo::new(text, Some(level));
        for para in &bidi.paragraphs {
            let (levels, runs) = bidi.visual_runs(para, para.range.clone());
            for run in runs {
                let rtl = levels[run.start].is_rtl();
                let mut pieces: Vec<(Range<usize>, &ItemKind)> = items
                    .iter()
                    .filter_map(|it| {
                        let r = it.range.start.max(run.start)..it.range.end.min(run.end);
                        (r.start < r.end).then_some((r, &it.kind))
                    })
                    .collect();
                if rtl {
                    pieces.reverse();
                }
                for (range, kind) in pieces {
                    match kind {
                        ItemKind::Icon(name) => {
                            let advance = ICON_ADVANCE_EM * em_px;
                            glyphs.push(PlacedGlyph {
                                x: pen + (advance - em_px) / 2.0,
                                y: 0.0,
                                advance,
                                cluster: range.start,
                                kind: GlyphKind::Icon { name: name.clone() },
                            });
                            pen += advance;
                        }
                        ItemKind::Face(f) => {
                            pen = self.shape_run(text, range, *f, rtl, em_px, pen, &mut glyphs)?;
                        }
                    }
                }
            }
        }
        Ok(ShapedLine { text: text.to_owned(), glyphs, width: pen })
    }

    /// Shapes `text[range]` in face `f`, appending glyphs from pen position `pen`; returns
    /// the pen position after the run.
    #[allow(clippy::too_many_arguments)]
    fn shape_run(
        &self,
        text: &str,
        range: Range<usize>,
        f: usize,
        rtl: bool,
        em_px: f32,
        mut pen: f32,
        glyphs: &mut Vec<PlacedGlyph>,
    ) -> Result<f32, TextError> {
        let face = self.fonts.face(f).expect("itemize only picks loadable faces");
        let rb = rustybuzz::Face::from_slice(face.font.as_slice(), face.index)
            .expect("a face ab_glyph parsed is one rustybuzz parses");
        let mut buffer = UnicodeBuffer::new();
        buffer.push_str(&text[range.clone()]);
        buffer.set_direction(if rtl { Direction::RightToLeft } else { Direction::LeftToRight });
        buffer.guess_segment_properties();
        let shaped = rustybuzz::shape(&rb, &[], buffer);
        let k = em_px / face.units_per_em;
        self.fonts.mark_used(f);
        for (info, pos) in shaped.glyph_infos().iter().zip(shaped.glyph_positions()) {
            let cluster = range.start + info.cluster as usize;
            if info.glyph_id == 0 {
                let ch = text[cluster..].chars().next().unwrap_or('\u{FFFD}');
                if is_ignorable(ch) || ch.is_whitespace() {
                    pen += pos.x_advance as f32 * k;
                    continue;
                }
                return Err(TextError::Notdef { ch, family: face.credit.family.clone(), text: text.to_owned() });
            }
            let advance = pos.x_advance as f32 * k;
            glyphs.push(PlacedGlyph {
                x: pen + pos.x_offset as f32 * k,
                y: pos.y_offset as f32 * k,
                advance,
                cluster,
                kind: GlyphKind::Outline { face: f, id: info.glyph_id as u16 },
            });
            pen += advance;
        }
        Ok(pen)
    }

    /// Breaks `text` into lines no wider than `max_width` pixels and no longer than
    /// `max_chars` characters, at UAX #14 opportunities (mandatory ones always break); a
    /// piece wider than a line on its own is split between characters. Trailing spaces do
    /// not count towards a line's width and are dropped.
    pub fn wrap(&self, text: &str, em_px: f32, max_width: f32, max_chars: usize) -> Result<Vec<ShapedLine>, TextError> {
        let level = Shaper::paragraph_level(text);
        let fits = |s: &ShapedLine| s.width <= max_width && s.text.chars().count() <= max_chars.max(1);
        let set = |s: &str| self.shape_line(s.trim_end(), em_px, level);
        let mut lines: Vec<ShapedLine> = Vec::new();
        // The line being filled: where it starts, and the longest prefix known to fit.
        let mut start = 0usize;
        let mut current: Option<ShapedLine> = None;
        let mut current_end = 0usize;
        for (at, kind) in linebreaks(text) {
            let candidate = set(&text[start..at])?;
            if fits(&candidate) {
                current = Some(candidate);
                current_end = at;
            } else {
                if let Some(line) = current.take() {
                    lines.push(line);
                    start = current_end;
                }
                let piece = set(&text[start..at])?;
                if fits(&piece) {
                    current = Some(piece);
                } else {
                    // One piece wider than a line: split it between characters.
                    let mut from = start;
                    for (off, ch) in text[start..at].char_indices() {
                        let end = start + off + ch.len_utf8();
                        let s = set(&text[from..end])?;
                        if fits(&s) || current.is_none() {
                            current = Some(s);
                        } else if let Some(line) = current.take() {
                            lines.push(line);
                            from = end - ch.len_utf8();
                            current = Some(set(&text[from..end])?);
                        }
                    }
                    start = from;
                }
                current_end = at;
            }
            if kind == BreakOpportunity::Mandatory {
                if let Some(line) = current.take() {
                    lines.push(line);
                }
                start = at;
                current_end = at;
            }
        }
        if let Some(line) = current {
            lines.push(line);
        }
        lines.retain(|l| !l.text.trim().is_empty());
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn book() -> FontBook {
        FontBook::debian(Path::new("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"), "ja")
            .expect("fonts-noto-core is installed")
    }

    fn no_icons() -> IconLibrary {
        IconLibrary::unavailable("not needed by this test")
    }

    /// The clusters of the glyphs left to right.
    fn clusters(line: &ShapedLine) -> Vec<usize> {
        line.glyphs.iter().map(|g| g.cluster).collect()
    }

    #[test]
    fn every_script_shapes_without_notdef() {
        let fonts = book();
        let icons = no_icons();
        let shaper = Shaper { fonts: &fonts, icons: &icons };
        for text in [
            "朝の光、焼きたてのパン",
            "清晨的新鲜面包",
            "새벽의 갓 구운 빵",
            "Fresh bread — خبز طازج عند الفجر",
            "לחם טרי עם שחר",
            "Ελληνικά и русский",
        ] {
            let level = Shaper::paragraph_level(text);
            let line = shaper.shape_line(text, 40.0, level).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(!line.glyphs.is_empty());
            assert!(line.glyphs.iter().all(|g| matches!(g.kind, GlyphKind::Outline { id, .. } if id != 0)), "{text}");
            assert!(line.width > 0.0);
        }
    }

    #[test]
    fn hebrew_and_arabic_run_right_to_left() {
        let fonts = book();
        let icons = no_icons();
        let shaper = Shaper { fonts: &fonts, icons: &icons };
        let he = "שלום עולם";
        let line = shaper.shape_line(he, 40.0, Shaper::paragraph_level(he)).unwrap();
        let c = clusters(&line);
        assert!(c.windows(2).all(|w| w[0] >= w[1]), "Hebrew glyphs run right to left: {c:?}");
        assert_eq!(*c.first().unwrap(), he.rfind('ם').unwrap(), "the last letter is drawn leftmost");

        // English first: an LTR paragraph whose Arabic words still read right to left.
        let mixed = "Fresh bread خبز طازج";
        let line = shaper.shape_line(mixed, 40.0, Shaper::paragraph_level(mixed)).unwrap();
        let c = clusters(&line);
        let arabic_start = mixed.find('خ').unwrap();
        let (latin, arabic): (Vec<usize>, Vec<usize>) = c.iter().partition(|&&x| x < arabic_start);
        assert!(latin.windows(2).all(|w| w[0] < w[1]), "{c:?}");
        assert!(arabic.windows(2).all(|w| w[0] >= w[1]), "{c:?}");
        assert!(
            c.iter().position(|&x| x >= arabic_start).unwrap() > c.iter().position(|&x| x == 0).unwrap(),
            "English on the left"
        );
        // Arabic letters join: inside a word they take contextual forms, not the isolated
        // glyphs each letter has alone.
        let ids = |s: &str| -> Vec<u16> {
            let l = shaper.shape_line(s, 40.0, Shaper::paragraph_level(s)).unwrap();
            l.glyphs
                .iter()
                .filter_map(|g| match g.kind {
                    GlyphKind::Outline { id, .. } => Some(id),
                    _ => None,
                })
                .collect()
        };
        let joined = ids("خبز");
        let isolated: Vec<u16> = ["ز", "ب", "خ"].iter().map(|s| ids(s)[0]).collect();
        assert_eq!(joined.len(), 3);
        assert_ne!(joined[2], isolated[2], "initial form of khah");
        assert_ne!(joined[1], isolated[1], "medial form of beh");
    }

    #[test]
    fn an_uncovered_character_is_an_error_not_a_box() {
        let fonts = FontBook::from_paths(vec![("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf".into(), 0)]).unwrap();
        let icons = no_icons();
        let shaper = Shaper { fonts: &fonts, icons: &icons };
        let err = shaper.shape_line("パン", 40.0, Level::ltr()).unwrap_err();
        assert!(matches!(err, TextError::Uncovered { ch: 'パ', .. }), "{err}");
        let err = shaper.shape_line("go 🚀", 40.0, Level::ltr()).unwrap_err();
        assert!(matches!(err, TextError::NoIcons { ch: '🚀', .. }), "{err}");
    }

    #[test]
    fn cjk_wraps_between_characters_and_latin_at_spaces() {
        let fonts = book();
        let icons = no_icons();
        let shaper = Shaper { fonts: &fonts, icons: &icons };
        let ja = "東京の夜景はとても美しいです。新しい一日が始まります。";
        let lines = shaper.wrap(ja, 40.0, 40.0 * 8.0, 42).unwrap();
        assert!(lines.len() >= 3, "{lines:?}");
        assert!(lines.iter().all(|l| l.width <= 320.0 + 0.5), "{lines:?}");
        assert_eq!(lines.iter().map(|l| l.text.as_str()).collect::<String>(), ja, "nothing lost");
        assert!(lines.iter().all(|l| !l.text.starts_with(['。', '、'])), "no line starts with a full stop: {lines:?}");

        let en = "the quick brown fox jumps over the lazy dog";
        let lines = shaper.wrap(en, 20.0, 120.0, 42).unwrap();
        assert!(lines.len() > 1);
        for l in &lines {
            assert!(l.width <= 120.0 + 0.5, "{l:?}");
            assert!(!l.text.starts_with(' ') && !l.text.ends_with(' '), "{:?}", l.text);
        }
        assert_eq!(lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join(" "), en);

        let capped = shaper.wrap(en, 1.0, 1e6, 20).unwrap();
        assert!(capped.iter().all(|l| l.text.chars().count() <= 20), "{capped:?}");
        let newline = shaper.wrap("one\ntwo", 20.0, 1e6, 42).unwrap();
        assert_eq!(newline.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["one", "two"]);
    }
}
