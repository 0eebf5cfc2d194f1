//! The narration found in the rendered soundtrack. The voicing stage wrote each scene's clip;
//! the soundtrack is projected onto it (least squares, after finding its offset within
//! ±[`SEARCH_S`]): the projection is the voice as mixed, the residual everything else that
//! plays under it (the ducked bed, coding noise). Their ratio says whether the planned
//! narration is there at all — a muted voice, a clip replaced by other speech or another
//! language leaves no projection — and whether the music drowns it; the same projection word
//! by word finds words that are not heard, such as a narration cut mid-scene. Works for every
//! language and voice, unlike speech recognition.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::domain::{NarrationClip, RenderPlan, WordTiming};
use crate::render::mix::resample;
use crate::voice::wav;

use super::checks::Check;

/// Name of the per-scene check that the planned narration is in the soundtrack.
pub const NARRATION_PRESENT: &str = "narration_present";
/// Name of the per-scene check that the voice stands above the music.
pub const VOICE_OVER_MUSIC: &str = "voice_over_music";
/// The checks this module reports.
pub const NAMES: [&str; 2] = [NARRATION_PRESENT, VOICE_OVER_MUSIC];

/// Analysis rate: speech needs no more.
const RATE: u32 = 16_000;
/// How far a clip may sit from its planned start in the decoded track (encoder delay).
pub const SEARCH_S: f64 = 0.08;
/// Below this voice-to-rest ratio the planned narration is not in the soundtrack, dB (a
/// muted, replaced or foreign-language clip measures −30 dB and lower; a voice buried under
/// music still measures above this).
pub const PRESENT_MIN_DB: f64 = -12.0;
/// Below this voice-over-music ratio the music (or noise) drowns the voice, dB.
pub const VOICE_OVER_MUSIC_MIN_DB: f64 = 6.0;
/// Block length of the voice-over-music measure, samples (100 ms).
const BLOCK: usize = 1600;
/// A word whose own projection gain is under this share of the clip's typical word gain is
/// not heard.
pub const WORD_GAIN_MIN: f64 = 0.3;

/// What one clip measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipMeasure {
    /// Where the clip was found relative to its planned start, seconds.
    pub offset_s: f64,
    /// Voice (the projection) over everything else (the residual) during the clip, dB.
    pub voice_to_rest_db: f64,
    /// The voice over what plays under it, block by block where the voice is heard (each
    /// block its own gain), dB.
    pub voice_over_music_db: f64,
    /// Words of the clip, in order, with whether each is heard (empty when the words are not
    /// known).
    pub words: Vec<(String, bool)>,
}

impl ClipMeasure {
    /// The words not heard.
    pub fn missing(&self) -> Vec<&str> {
        self.words.iter().filter(|(_, heard)| !heard).map(|(w, _)| w.as_str()).collect()
    }

    /// When the words not heard are exactly the last ones (a narration cut off), how many.
    pub fn cut_tail(&self) -> Option<usize> {
        let missing = self.words.iter().filter(|(_, h)| !h).count();
        let tail = self.words.iter().rev().take_while(|(_, h)| !h).count();
        (missing > 0 && tail == missing && tail < self.words.len()).then_some(tail)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

/// The mix samples under the clip placed at `at` (negative or past the end reads silence).
fn window(mix: &[f32], at: i64, len: usize) -> Vec<f32> {
    (0..len as i64).map(|i| usize::try_from(at + i).ok().and_then(|j| mix.get(j)).copied().unwrap_or(0.0)).collect()
}

/// Measures one clip (`clip` at [`RATE`], planned to start at `start_s`) in the mono `mix` (at
/// [`RATE`]); `words` are the clip's words in video time (may be empty).
pub fn measure_clip(mix: &[f32], clip: &[f32], start_s: f64, words: &[WordTiming]) -> ClipMeasure {
    let planned = (start_s * f64::from(RATE)).round() as i64;
    let search = (SEARCH_S * f64::from(RATE)) as i64;
    let cc = dot(clip, clip).max(1e-12);
    // Coarse: the loudness envelopes (1 ms blocks) line up wherever the words do, whatever
    // the waveform's fine structure; fine: every sample around the best block.
    let block = (RATE / 1000) as usize;
    let envelope = |x: &[f32]| -> Vec<f32> {
        let e: Vec<f32> = x.chunks(block).map(|c| c.iter().map(|v| v.abs()).sum::<f32>() / c.len() as f32).collect();
        let mean = e.iter().sum::<f32>() / e.len().max(1) as f32;
        e.into_iter().map(|v| v - mean).collect()
    };
    let clip_env = envelope(clip);
    let reach = search / block as i64 + 1;
    let mix_env = envelope(&window(mix, planned - reach * block as i64, clip.len() + 2 * reach as usize * block));
    let mut coarse = (0i64, f64::MIN);
    for b in -reach..=reach {
        let from = (b + reach) as usize;
        let s = dot(&mix_env[from.min(mix_env.len())..], &clip_env);
        if s > coarse.1 {
            coarse = (b, s);
        }
    }
    let score = |d: i64| dot(&window(mix, planned + d, clip.len()), clip);
    let mut best = (0i64, f64::MIN);
    let centre = coarse.0 * block as i64;
    for d in (centre - 2 * block as i64)..=(centre + 2 * block as i64) {
        if d.abs() > search + block as i64 {
            continue;
        }
        let s = score(d);
        if s > best.1 {
            best = (d, s);
        }
    }
    let at = planned + best.0;
    let m = window(mix, at, clip.len());
    let g = (dot(&m, clip) / cc).max(0.0);
    let voice = g * g * cc;
    let rest = (dot(&m, &m) - voice).max(1e-12);
    let voice_to_rest_db = 10.0 * (voice.max(1e-12) / rest).log10();

    // Block by block, a gain of its own (the mix's limiter and the ducking move the voice's
    // level a little over a clip): the voice over what plays under it where it is heard.
    let blocks: Vec<(f64, f64, f64)> = clip
        .chunks(BLOCK)
        .zip(m.chunks(BLOCK))
        .filter_map(|(c, m)| {
            let e = dot(c, c);
            (e > 1e-3 * cc / (clip.len() / BLOCK).max(1) as f64).then(|| {
                let gb = (dot(m, c) / e).max(0.0);
                let voice = gb * gb * e;
                (gb, voice, (dot(m, m) - voice).max(0.0))
            })
        })
        .collect();
    let mut block_gains: Vec<f64> = blocks.iter().map(|b| b.0).collect();
    block_gains.sort_by(f64::total_cmp);
    let block_typical = block_gains.get(block_gains.len() * 3 / 4).copied().unwrap_or(g);
    let heard = blocks.iter().filter(|b| b.0 >= WORD_GAIN_MIN * block_typical);
    let (v, r) = heard.fold((0.0, 0.0), |(v, r), b| (v + b.1, r + b.2));
    let voice_over_music_db = if v > 0.0 { 10.0 * (v / r.max(1e-12)).log10() } else { f64::NEG_INFINITY };

    // Word by word: the projection gain inside each word against the clip's typical one.
    let gains: Vec<(String, Option<f64>)> = words
        .iter()
        .map(|w| {
            let a = (((w.start_s - start_s) * f64::from(RATE)).round().max(0.0) as usize).min(clip.len());
            let b = (((w.end_s - start_s) * f64::from(RATE)).round().max(0.0) as usize).min(clip.len());
            let (c, m) = (&clip[a..b.max(a)], &m[a..b.max(a)]);
            let energy = dot(c, c);
            // A word the clip itself barely voices (a pause) says nothing either way.
            let gain = (energy > 1e-6 * cc).then(|| dot(m, c) / energy);
            (w.word.clone(), gain)
        })
        .collect();
    let mut known: Vec<f64> = gains.iter().filter_map(|(_, g)| *g).collect();
    known.sort_by(f64::total_cmp);
    // The upper quartile stands for the clip's gain even when half of it is missing.
    let typical = known.get(known.len() * 3 / 4).copied().unwrap_or(g);
    let words = gains.into_iter().map(|(w, gain)| (w, gain.is_none_or(|x| x >= WORD_GAIN_MIN * typical))).collect();
    ClipMeasure { offset_s: best.0 as f64 / f64::from(RATE), voice_to_rest_db, voice_over_music_db, words }
}

/// Decodes audio stream `stream` of `video` to mono at [`RATE`].
fn decode(video: &Path, stream: usize) -> Result<Vec<f32>, String> {
    let mut child = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-i"])
        .arg(video)
        .args(["-map", &format!("0:a:{stream}"), "-ac", "1", "-ar", &RATE.to_string(), "-f", "f32le", "pipe:1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ffmpeg cannot be started: {e}"))?;
    let mut bytes = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut bytes).map_err(|e| format!("reading decoded audio: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("ffmpeg: {e}"))?;
    if !out.status.success() {
        return Err(format!("ffmpeg could not decode audio stream {stream}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// The scene (0-based) a clip plays in.
fn scene_of(plan: &RenderPlan, clip: &NarrationClip) -> usize {
    plan.scenes
        .iter()
        .position(|s| clip.start_s >= s.start_s - 1e-6 && clip.start_s < s.start_s + s.duration_s)
        .unwrap_or(0)
}

/// The narration checks for every narrated scene of every soundtrack of `video`.
pub fn check_voice(video: &Path, plan: &RenderPlan) -> Vec<Check> {
    if plan.narration.is_empty() {
        return NAMES.iter().map(|n| Check::not_applicable(n, None, "the plan has no narration")).collect();
    }
    let tracks = crate::render::soundtracks(plan);
    let mut checks = Vec::new();
    for (k, lang) in tracks.iter().enumerate() {
        let Some(lang) = lang else { continue };
        let mix = match decode(video, k) {
            Ok(m) => m,
            Err(why) => {
                checks.extend(NAMES.iter().map(|n| Check::not_measured(n, None, &why)));
                continue;
            }
        };
        for clip in plan.narration.iter().filter(|c| &c.lang == lang) {
            let scene = scene_of(plan, clip);
            let samples = match wav::read(&clip.path) {
                Ok(pcm) => resample(&pcm.samples, pcm.sample_rate, RATE),
                Err(e) => {
                    let why = format!("the narration clip cannot be read: {e}");
                    checks.extend(NAMES.iter().map(|n| Check::not_measured(n, Some(scene), &why)));
                    continue;
                }
            };
            // The scene's words are the first language's; other soundtracks are judged whole.
            let words: &[WordTiming] = if k == 0 { &plan.scenes[scene].words } else { &[] };
            let m = measure_clip(&mix, &samples, clip.start_s, words);
            let label = if tracks.len() > 1 { format!("{lang} soundtrack: ") } else { String::new() };
            checks.extend(judge(scene, &label, &m));
        }
    }
    checks
}

/// The two checks for one measured clip.
pub fn judge(scene: usize, label: &str, m: &ClipMeasure) -> Vec<Check> {
    let ratio = m.voice_to_rest_db;
    let measured = json!({
        "voice_to_rest_db": ratio,
        "voice_over_music_db": m.voice_over_music_db,
        "offset_s": m.offset_s,
        "missing_words": m.missing(),
        "words": m.words.len(),
    });
    let heard = m.words.iter().filter(|(_, h)| *h).count();
    let word_score = if m.words.is_empty() { 1.0 } else { heard as f64 / m.words.len() as f64 };
    if ratio < PRESENT_MIN_DB {
        let reason = format!(
            "{label}the planned narration is not in the soundtrack (voice {ratio:.1} dB against everything else): \
             muted, replaced by other audio, or other speech"
        );
        return vec![
            Check::measured(NARRATION_PRESENT, Some(scene), false, 0.0, reason, measured.clone()),
            Check::not_applicable(VOICE_OVER_MUSIC, Some(scene), format!("{label}no planned narration to compare")),
        ];
    }
    let present = match (m.cut_tail(), m.missing()) {
        (_, missing) if missing.is_empty() => Check::measured(
            NARRATION_PRESENT,
            Some(scene),
            true,
            1.0,
            format!("{label}every planned word is heard ({} words)", m.words.len()),
            measured.clone(),
        ),
        (Some(n), missing) => Check::measured(
            NARRATION_PRESENT,
            Some(scene),
            false,
            word_score,
            format!("{label}the narration is cut off: its last {n} words (\"{}\") are not heard", missing.join(" ")),
            measured.clone(),
        ),
        (None, missing) => Check::measured(
            NARRATION_PRESENT,
            Some(scene),
            false,
            word_score,
            format!("{label}{} of {} planned words are not heard: {}", missing.len(), m.words.len(), missing.join(" ")),
            measured.clone(),
        ),
    };
    let over = m.voice_over_music_db;
    let ok = over >= VOICE_OVER_MUSIC_MIN_DB;
    let reason = if ok {
        format!("{label}the voice stands {over:.1} dB above the music and noise under it")
    } else {
        format!(
            "{label}the music drowns the voice: the voice is only {over:.1} dB above the rest (at least \
             {VOICE_OVER_MUSIC_MIN_DB:.0} dB needed)"
        )
    };
    let score = (1.0 - (VOICE_OVER_MUSIC_MIN_DB - over).max(0.0) / 12.0).clamp(0.0, 1.0);
    vec![present, Check::measured(VOICE_OVER_MUSIC, Some(scene), ok, score, reason, measured)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A speech-like test signal: noise bursts (words) with pauses, deterministic.
    fn speech(words: usize, word_s: f64, gap_s: f64, seed: u64) -> (Vec<f32>, Vec<(f64, f64)>) {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed;
        let mut out = Vec::new();
        let mut spans = Vec::new();
        for _ in 0..words {
            let start = out.len() as f64 / f64::from(RATE);
            for i in 0..(word_s * f64::from(RATE)) as usize {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let env = (std::f64::consts::PI * i as f64 / (word_s * f64::from(RATE))).sin();
                out.push(((x >> 40) as f64 / (1u64 << 24) as f64 - 0.5) as f32 * env as f32);
            }
            spans.push((start, out.len() as f64 / f64::from(RATE)));
            out.extend(std::iter::repeat_n(0.0, (gap_s * f64::from(RATE)) as usize));
        }
        (out, spans)
    }

    fn music(len: usize, level: f32) -> Vec<f32> {
        (0..len).map(|i| level * (2.0 * std::f32::consts::PI * 220.0 * i as f32 / RATE as f32).sin()).collect()
    }

    fn words_at(spans: &[(f64, f64)], start_s: f64) -> Vec<WordTiming> {
        spans
            .iter()
            .enumerate()
            .map(|(i, (a, b))| WordTiming { word: format!("w{i}"), start_s: start_s + a, end_s: start_s + b })
            .collect()
    }

    /// Places `clip` (scaled) at `start_s` (+ `delay_s`) over `bed`.
    fn mixed(bed: &[f32], clip: &[f32], gain: f32, start_s: f64, delay_s: f64) -> Vec<f32> {
        let mut out = bed.to_vec();
        let at = ((start_s + delay_s) * f64::from(RATE)) as usize;
        for (i, s) in clip.iter().enumerate() {
            if let Some(o) = out.get_mut(at + i) {
                *o += gain * s;
            }
        }
        out
    }

    #[test]
    fn a_well_mixed_narration_is_found_heard_word_by_word_and_above_the_music() {
        let (clip, spans) = speech(8, 0.3, 0.1, 1);
        let bed = music(RATE as usize * 6, 0.02);
        let mix = mixed(&bed, &clip, 0.7, 1.0, 0.023);
        let m = measure_clip(&mix, &clip, 1.0, &words_at(&spans, 1.0));
        assert!((m.offset_s - 0.023).abs() < 0.002, "{m:?}");
        assert!(m.voice_to_rest_db > VOICE_OVER_MUSIC_MIN_DB, "{m:?}");
        assert!(m.missing().is_empty(), "{m:?}");
        let checks = judge(0, "", &m);
        assert!(checks.iter().all(|c| !c.failed()), "{checks:?}");
    }

    #[test]
    fn a_muted_or_replaced_narration_is_not_present() {
        let (clip, spans) = speech(8, 0.3, 0.1, 1);
        let bed = music(RATE as usize * 6, 0.1);
        let (other, _) = speech(8, 0.27, 0.13, 2);
        for mix in [bed.clone(), mixed(&bed, &other[1000..], 0.7, 1.0, 0.0)] {
            let m = measure_clip(&mix, &clip, 1.0, &words_at(&spans, 1.0));
            assert!(m.voice_to_rest_db < PRESENT_MIN_DB, "{m:?}");
            let checks = judge(2, "", &m);
            assert!(checks[0].failed() && checks[0].name == NARRATION_PRESENT, "{checks:?}");
            assert!(checks[0].reason.contains("not in the soundtrack"), "{}", checks[0].reason);
        }
    }

    #[test]
    fn music_as_loud_as_the_voice_drowns_it() {
        let (clip, spans) = speech(8, 0.3, 0.1, 1);
        let bed = music(RATE as usize * 6, 0.15);
        let m = measure_clip(&mixed(&bed, &clip, 0.7, 1.0, 0.0), &clip, 1.0, &words_at(&spans, 1.0));
        let checks = judge(0, "", &m);
        assert!(!checks[0].failed(), "the words are all there: {checks:?}");
        assert!(checks[1].failed() && checks[1].reason.contains("drowns"), "{checks:?}");
    }

    #[test]
    fn a_narration_cut_mid_scene_names_the_words_not_heard() {
        let (clip, spans) = speech(8, 0.3, 0.1, 1);
        let bed = music(RATE as usize * 6, 0.02);
        // The soundtrack carries only the first 5 words and a half.
        let cut = ((spans[5].0 + 0.15) * f64::from(RATE)) as usize;
        let mix = mixed(&bed, &clip[..cut], 0.7, 1.0, 0.0);
        let m = measure_clip(&mix, &clip, 1.0, &words_at(&spans, 1.0));
        assert_eq!(m.cut_tail(), Some(2), "{m:?}");
        let checks = judge(1, "", &m);
        assert!(checks[0].failed() && checks[0].reason.contains("cut off"), "{checks:?}");
        assert!(checks[0].reason.contains("w6 w7"), "{}", checks[0].reason);
    }
}
