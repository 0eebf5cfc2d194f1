//! Rule-based translation through the Apertium command-line tool (Debian `apertium` plus a
//! language-pair package such as `apertium-eng-spa`). Like every backend it is used for a
//! pair only after it has been scored on the reference set and cleared the quality bar.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{TranslateError, Translator};

/// Where Debian's pair packages install their modes.
pub const MODES_DIR: &str = "/usr/share/apertium/modes";

/// Apertium's three-letter mode names for our two-letter codes.
fn mode_code(lang: &str) -> Option<&'static str> {
    Some(match lang {
        "en" => "eng",
        "es" => "spa",
        "fr" => "fra",
        "pt" => "por",
        "it" => "ita",
        "ca" => "cat",
        _ => return None,
    })
}

/// A translator that runs `apertium -u <mode>` once per batch (one line per text).
#[derive(Debug, Clone)]
pub struct ApertiumTranslator {
    /// The `apertium` executable.
    pub program: PathBuf,
    /// Directory holding the installed `*.mode` files.
    pub modes_dir: PathBuf,
}

impl Default for ApertiumTranslator {
    fn default() -> Self {
        Self { program: PathBuf::from("apertium"), modes_dir: PathBuf::from(MODES_DIR) }
    }
}

impl ApertiumTranslator {
    /// The installed mode for `from` → `to`, e.g. `eng-spa`.
    pub fn mode(&self, from: &str, to: &str) -> Option<String> {
        let mode = format!("{}-{}", mode_code(from)?, mode_code(to)?);
        self.modes_dir.join(format!("{mode}.mode")).is_file().then_some(mode)
    }

    /// Whether the `apertium` program runs at all.
    pub fn available(&self) -> bool {
        Command::new(&self.program).arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    }
}

impl Translator for ApertiumTranslator {
    fn id(&self) -> String {
        "apertium".into()
    }

    fn supports(&self, from: &str, to: &str) -> bool {
        self.mode(from, to).is_some()
    }

    fn translate(&self, texts: &[&str], from: &str, to: &str) -> Result<Vec<String>, TranslateError> {
        let err = |m: String| TranslateError { backend: self.id(), message: m };
        let mode = self.mode(from, to).ok_or_else(|| err(format!("no installed Apertium mode for {from}-{to}")))?;
        // One text per line: line breaks inside a text would shift every later line.
        let input: String = texts.iter().map(|t| t.replace(['\n', '\r'], " ") + "\n").collect();
        let mut child = Command::new(&self.program)
            .args(["-u", &mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(format!("cannot run {}: {e}", self.program.display())))?;
        let mut stdin = child.stdin.take().ok_or_else(|| err("no stdin".into()))?;
        // Write from a thread so a full output pipe cannot deadlock a large batch.
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
        writer.join().map_err(|_| err("writer thread panicked".into()))?.map_err(|e| err(e.to_string()))?;
        if !out.status.success() {
            return Err(err(format!("{} {mode}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
        if lines.len() < texts.len() {
            return Err(err(format!("{} lines in, {} out", texts.len(), lines.len())));
        }
        Ok(lines.into_iter().take(texts.len()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the real `apertium` with the Debian eng-spa pair (scripts/setup.sh installs both).
    #[test]
    fn english_to_spanish_through_the_installed_pair() {
        let t = ApertiumTranslator::default();
        assert!(t.available(), "apertium is not installed (scripts/setup.sh installs it)");
        assert!(t.supports("en", "es"), "apertium-eng-spa is not installed");
        assert!(!t.supports("en", "ja"));
        let out = t.translate(&["The shop opens its doors.", "Fresh bread"], "en", "es").unwrap();
        assert_eq!(out.len(), 2);
        assert!(out[0].to_lowercase().contains("tienda") && out[0].to_lowercase().contains("puertas"), "{out:?}");
        assert!(out[1].to_lowercase().contains("pan"), "{out:?}");
    }

    /// The measured score on the reference set (what `aiprod models evaluate-translation`
    /// stores); whether it clears the configured bar is the quality gate's decision.
    #[test]
    fn english_to_spanish_is_scored_on_the_reference_set() {
        let t = ApertiumTranslator::default();
        let q = crate::translate::evaluate(&t, "en", "es", 32).unwrap();
        println!("apertium en-es: chrF {:.1} on {} sentences", q.chrf, q.sentences);
        assert_eq!(q.sentences, 32);
        // A real translation scores well above copying the English source (< 40, see the
        // module tests of `translate`).
        assert!(q.chrf > 40.0, "chrF {}", q.chrf);
    }
}
