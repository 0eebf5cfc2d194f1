//! The Fluent Emoji Flat illustration set (MIT, © Microsoft; installed from npm by
//! `scripts/install_assets.sh` into `assets/fluent-emoji-flat/`): flat colour SVG pictures
//! looked up by name (the illustrator's choices) or by emoji sequence (emoji inside
//! captions), rasterised with resvg into premultiplied RGBA.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use resvg::tiny_skia;
use serde::Deserialize;

use crate::agent::AgentError;

/// Directory of the icon set under the assets directory.
pub const ICON_SET_DIR: &str = "fluent-emoji-flat";

/// `icons.json` as Iconify publishes it: SVG bodies on a shared viewBox, plus aliases.
#[derive(Debug, Deserialize)]
struct IconsFile {
    icons: HashMap<String, IconBody>,
    #[serde(default)]
    aliases: HashMap<String, Alias>,
    #[serde(default = "default_size")]
    width: f32,
    #[serde(default = "default_size")]
    height: f32,
}

fn default_size() -> f32 {
    16.0
}

#[derive(Debug, Deserialize)]
struct IconBody {
    body: String,
}

/// An icon defined as another one, possibly mirrored.
#[derive(Debug, Deserialize)]
struct Alias {
    parent: String,
    #[serde(default, rename = "hFlip")]
    h_flip: bool,
}

/// A rasterised icon: premultiplied RGBA, `size`×`size` pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct IconBitmap {
    /// Side length in pixels.
    pub size: usize,
    /// Premultiplied RGBA, row-major.
    pub pixels: Vec<u8>,
}

/// The loaded set: every icon's SVG body and the emoji sequence → icon name table.
pub struct IconSet {
    dir: PathBuf,
    icons: HashMap<String, IconBody>,
    aliases: HashMap<String, Alias>,
    view_w: f32,
    view_h: f32,
    /// Emoji code point sequences (U+FE0F removed) → icon name.
    by_sequence: HashMap<Vec<u32>, String>,
    /// Longest sequence in `by_sequence`, in code points.
    longest: usize,
}

impl std::fmt::Debug for IconSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IconSet").field("dir", &self.dir).field("icons", &self.icons.len()).finish()
    }
}

impl IconSet {
    /// Loads the set from `assets_dir/fluent-emoji-flat`. A missing set is a permanent error
    /// that says how to install it.
    pub fn load(assets_dir: &Path) -> Result<IconSet, AgentError> {
        let dir = assets_dir.join(ICON_SET_DIR);
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| {
                AgentError::Permanent(format!(
                    "the illustration set is not installed ({}: {e}); run scripts/install_assets.sh",
                    dir.join(name).display()
                ))
            })
        };
        let file: IconsFile = serde_json::from_slice(&read("icons.json")?)
            .map_err(|e| AgentError::Permanent(format!("{}/icons.json is not an Iconify set: {e}", dir.display())))?;
        let chars: HashMap<String, String> = serde_json::from_slice(&read("chars.json")?)
            .map_err(|e| AgentError::Permanent(format!("{}/chars.json is unreadable: {e}", dir.display())))?;
        let mut by_sequence = HashMap::with_capacity(chars.len());
        for (hex, name) in chars {
            let seq: Option<Vec<u32>> = hex.split('-').map(|h| u32::from_str_radix(h, 16).ok()).collect();
            if let Some(seq) = seq.filter(|s| !s.is_empty()) {
                by_sequence.insert(seq.into_iter().filter(|&c| c != 0xFE0F).collect(), name);
            }
        }
        let longest = by_sequence.keys().map(Vec::len).max().unwrap_or(0);
        Ok(IconSet {
            dir,
            icons: file.icons,
            aliases: file.aliases,
            view_w: file.width,
            view_h: file.height,
            by_sequence,
            longest,
        })
    }

    /// Whether an icon of this name exists (directly or as an alias).
    pub fn contains(&self, name: &str) -> bool {
        self.icons.contains_key(name) || self.aliases.contains_key(name)
    }

    /// Every icon name (aliases included), unordered.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.icons.keys().chain(self.aliases.keys()).map(String::as_str)
    }

    /// The emoji sequence at the start of `chars`, if any: (icon name, code points consumed,
    /// U+FE0F included). The longest known sequence wins (a family before its first person,
    /// a flag before its first regional indicator).
    pub fn match_emoji(&self, chars: &[char]) -> Option<(&str, usize)> {
        let mut best = None;
        let mut seq: Vec<u32> = Vec::with_capacity(self.longest);
        let mut consumed = 0;
        for &c in chars {
            if seq.len() >= self.longest {
                break;
            }
            consumed += 1;
            if c == '\u{FE0F}' {
                if best.is_some_and(|(_, n)| n == consumed - 1) {
                    best = best.map(|(name, _)| (name, consumed));
                }
                continue;
            }
            seq.push(c as u32);
            if let Some(name) = self.by_sequence.get(&seq) {
                best = Some((name.as_str(), consumed));
            }
        }
        best
    }

    /// The icon as a standalone SVG document.
    pub fn svg(&self, name: &str) -> Option<String> {
        let (body, flip) = match self.icons.get(name) {
            Some(icon) => (&icon.body, false),
            None => {
                let alias = self.aliases.get(name)?;
                (&self.icons.get(&alias.parent)?.body, alias.h_flip)
            }
        };
        let (w, h) = (self.view_w, self.view_h);
        let body =
            if flip { format!(r#"<g transform="translate({w} 0) scale(-1 1)">{body}</g>"#) } else { body.clone() };
        Some(format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}">{body}</svg>"#
        ))
    }

    /// Rasterises icon `name` into a `size`×`size` square (aspect kept, centred).
    pub fn rasterize(&self, name: &str, size: usize) -> Result<IconBitmap, AgentError> {
        let svg = self
            .svg(name)
            .ok_or_else(|| AgentError::Permanent(format!("illustration {name:?} is not in the icon set")))?;
        let tree = resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default())
            .map_err(|e| AgentError::Permanent(format!("illustration {name:?} is not valid SVG: {e}")))?;
        let size = size.max(1);
        let mut pixmap = tiny_skia::Pixmap::new(size as u32, size as u32)
            .ok_or_else(|| AgentError::Permanent(format!("cannot allocate a {size}px illustration")))?;
        let s = size as f32 / self.view_w.max(self.view_h);
        let (dx, dy) = ((size as f32 - self.view_w * s) / 2.0, (size as f32 - self.view_h * s) / 2.0);
        resvg::render(&tree, tiny_skia::Transform::from_row(s, 0.0, 0.0, s, dx, dy), &mut pixmap.as_mut());
        Ok(IconBitmap { size, pixels: pixmap.take() })
    }
}

/// The icon set, loaded on first use: most captions have no emoji, and parsing the 9 MB set
/// would cost every render.
pub struct IconLibrary {
    dir: Option<PathBuf>,
    set: std::sync::OnceLock<Result<IconSet, String>>,
}

impl IconLibrary {
    /// A library that loads from `assets_dir` when first asked.
    pub fn at(assets_dir: &Path) -> IconLibrary {
        IconLibrary { dir: Some(assets_dir.to_path_buf()), set: std::sync::OnceLock::new() }
    }

    /// A library that has no set, saying why (asking it for an icon reports `reason`).
    pub fn unavailable(reason: &str) -> IconLibrary {
        let set = std::sync::OnceLock::new();
        let _ = set.set(Err(reason.to_owned()));
        IconLibrary { dir: None, set }
    }

    /// The set, loading it on first use; the error says why it is unavailable.
    pub fn get(&self) -> Result<&IconSet, String> {
        self.set
            .get_or_init(|| match &self.dir {
                Some(dir) => IconSet::load(dir).map_err(|e| e.to_string()),
                None => Err("no assets directory was given".into()),
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl std::fmt::Debug for IconLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IconLibrary").field("dir", &self.dir).field("loaded", &self.set.get().is_some()).finish()
    }
}

/// The assets directory a test or tool should use: `$AIPROD_ASSETS_DIR`, else `assets/` at
/// the workspace root (where the install script puts it).
pub fn default_assets_dir() -> PathBuf {
    std::env::var_os("AIPROD_ASSETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("assets"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> IconSet {
        IconSet::load(&default_assets_dir()).expect("scripts/install_assets.sh has run")
    }

    #[test]
    #[ignore = "needs models"]
    fn emoji_sequences_map_to_icons_longest_first() {
        let set = set();
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(set.match_emoji(&chars("🚀 go")), Some(("rocket", 1)));
        assert_eq!(set.match_emoji(&chars("❤️x")), Some(("red-heart", 2)));
        assert_eq!(set.match_emoji(&chars("🇯🇵")), None, "Fluent Emoji has no country flags");
        assert_eq!(set.match_emoji(&chars("👍🏽")).map(|m| m.1), Some(2), "skin tone joins its emoji");
        assert_eq!(set.match_emoji(&chars("👩‍💻")).map(|m| m.1), Some(3));
        assert_eq!(set.match_emoji(&chars("abc")), None);
    }

    #[test]
    #[ignore = "needs models"]
    fn icons_rasterise_in_colour() {
        let set = set();
        let bread = set.rasterize("bread", 64).unwrap();
        assert_eq!(bread.pixels.len(), 64 * 64 * 4);
        let opaque = bread.pixels.chunks(4).filter(|p| p[3] == 255).count();
        assert!(opaque > 64 * 64 / 4, "the loaf fills a good part of the square: {opaque}");
        // Brown-orange crust: red above blue on the opaque pixels.
        let (r, b) = bread
            .pixels
            .chunks(4)
            .filter(|p| p[3] == 255)
            .fold((0u64, 0u64), |(r, b), p| (r + p[0] as u64, b + p[2] as u64));
        assert!(r > b, "{r} {b}");
        assert!(set.rasterize("no-such-icon", 8).is_err());
        assert!(set.contains("backhand-index-pointing-right"), "aliases count");
        assert!(set.rasterize("backhand-index-pointing-right", 16).is_ok());
    }
}
