//! Mono 16-bit PCM WAV, the format narration clips are kept in between the voicing stage and
//! the render (small, lossless enough for speech, readable by every tool a person may use to
//! listen to one clip).

use std::io::Write;
use std::path::Path;

use super::VoiceError;

/// Samples and their rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// Samples in −1.0..=1.0.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
}

/// Parses a RIFF/WAVE byte buffer holding 16-bit PCM (mono, or the first channel of more).
/// The data chunk's size may be a placeholder (espeak-ng writing to a pipe puts 0x7ffff000
/// there): everything after the chunk header is then taken.
pub fn parse(bytes: &[u8]) -> Result<Pcm, VoiceError> {
    let bad = |why: &str| VoiceError::Failed(format!("not a 16-bit PCM WAV: {why}"));
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad("no RIFF/WAVE header"));
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let mut pos = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32_at(pos + 4) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            if body + 16 > bytes.len() {
                return Err(bad("short fmt chunk"));
            }
            format = Some((u16_at(body), u16_at(body + 2), u32_at(body + 4), u16_at(body + 14)));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or_else(|| bad("data before fmt"))?;
            if tag != 1 || bits != 16 || channels == 0 {
                return Err(bad(&format!("format {tag}, {bits} bits, {channels} channels")));
            }
            let end = body.saturating_add(size).min(bytes.len());
            let frame = 2 * channels as usize;
            let samples = bytes[body..end]
                .chunks_exact(frame)
                .map(|f| i16::from_le_bytes([f[0], f[1]]) as f32 / 32768.0)
                .collect();
            return Ok(Pcm { samples, sample_rate: rate });
        }
        pos = body.saturating_add(size + (size & 1));
    }
    Err(bad("no data chunk"))
}

/// Reads a WAV file written by [`write`] (or any 16-bit PCM WAV).
pub fn read(path: &Path) -> Result<Pcm, VoiceError> {
    let bytes = std::fs::read(path).map_err(|e| VoiceError::Io(format!("reading {}: {e}", path.display())))?;
    parse(&bytes).map_err(|e| VoiceError::Failed(format!("{}: {e}", path.display())))
}

/// Writes mono samples as 16-bit PCM (clipped to ±1), through a temporary file renamed into
/// place so a reader never sees half a clip.
pub fn write(path: &Path, pcm: &Pcm) -> Result<(), VoiceError> {
    let io = |e: std::io::Error| VoiceError::Io(format!("writing {}: {e}", path.display()));
    let data_len = (pcm.samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&pcm.sample_rate.to_le_bytes());
    out.extend_from_slice(&(pcm.sample_rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in &pcm.samples {
        out.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&out).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_a_placeholder_data_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let pcm = Pcm { samples: vec![0.0, 0.5, -0.5, 0.999], sample_rate: 22_050 };
        write(&path, &pcm).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.sample_rate, 22_050);
        assert!(back.samples.iter().zip(&pcm.samples).all(|(a, b)| (a - b).abs() < 1e-4));

        let mut bytes = std::fs::read(&path).unwrap();
        bytes[40..44].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        assert_eq!(parse(&bytes).unwrap().samples.len(), 4);
        assert!(parse(b"RIFF0000WAVE").is_err());
    }
}
