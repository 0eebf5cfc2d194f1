//! The mix measured on the rendered file: integrated loudness and true peak (ffmpeg's
//! EBU R128 meter, `ebur128=peak=true`) against the plan's mix targets, clipped samples
//! counted on the decoded track, and silence gaps longer than [`SILENCE_GAP_S`] inside the
//! video (`silencedetect`).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::domain::RenderPlan;

use super::checks::{CLIPPING, Check, CheckStatus, LOUDNESS, SILENCE_GAPS, TRUE_PEAK};

/// The checks this module reports, in order.
pub const NAMES: [&str; 4] = [LOUDNESS, TRUE_PEAK, CLIPPING, SILENCE_GAPS];
/// How far integrated loudness may sit from the target, in LU.
pub const LOUDNESS_TOLERANCE_LU: f64 = 2.0;
/// How far above the true-peak ceiling the encoded file may peak (AAC adds a few tenths).
pub const TRUE_PEAK_MARGIN_DB: f64 = 0.5;
/// A decoded sample at or above this magnitude counts as clipped …
pub const CLIP_LEVEL: f32 = 0.999;
/// … and more than this share of clipped samples fails the mix.
pub const CLIP_SHARE_MAX: f64 = 1e-4;
/// Silence longer than this, inside the video, fails the mix.
pub const SILENCE_GAP_S: f64 = 1.5;
/// Level under which the soundtrack counts as silent, dBFS.
const SILENCE_DB: f64 = -50.0;
/// Lead-in and tail, in seconds, where silence is allowed.
const EDGE_S: f64 = 1.0;

/// What the meter measured.
#[derive(Debug, Clone, PartialEq)]
pub struct MixMeasure {
    /// Integrated loudness, LUFS (`None` when the meter gave no value, e.g. pure silence).
    pub integrated_lufs: Option<f64>,
    /// True peak, dBTP.
    pub true_peak_dbtp: Option<f64>,
    /// Share of decoded samples at or above [`CLIP_LEVEL`].
    pub clipped_share: f64,
    /// Silences longer than [`SILENCE_GAP_S`]: (start, duration) in seconds.
    pub silences: Vec<(f64, f64)>,
}

/// Why the audio could not be measured.
#[derive(Debug, Clone, PartialEq)]
pub enum MixError {
    /// The file has no audio track.
    NoAudio,
    /// ffmpeg could not run or failed.
    Tool(String),
}

/// Decodes audio track `stream` (0 = the first) once, metering it and counting clipped
/// samples.
pub fn measure(video: &Path, stream: usize) -> Result<MixMeasure, MixError> {
    let map = format!("0:a:{stream}");
    let filter = format!("ebur128=peak=true,silencedetect=noise={SILENCE_DB}dB:d={SILENCE_GAP_S}");
    let mut child = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats", "-i"])
        .arg(video)
        .args(["-map", &map, "-af", &filter, "-f", "f32le", "pipe:1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| MixError::Tool(format!("ffmpeg cannot be started: {e}")))?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (mut total, mut clipped) = (0u64, 0u64);
    if let Some(mut out) = child.stdout.take() {
        let mut buf = vec![0u8; 1 << 16];
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let n = out.read(&mut buf).map_err(|e| MixError::Tool(format!("reading decoded audio: {e}")))?;
            if n == 0 {
                break;
            }
            carry.extend_from_slice(&buf[..n]);
            let whole = carry.len() / 4 * 4;
            for b in carry[..whole].chunks_exact(4) {
                let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                total += 1;
                clipped += u64::from(v.abs() >= CLIP_LEVEL);
            }
            carry.drain(..whole);
        }
    }
    let status = child.wait().map_err(|e| MixError::Tool(format!("ffmpeg: {e}")))?;
    let log = log.join().unwrap_or_default();
    if log.contains("matches no streams") {
        return Err(MixError::NoAudio);
    }
    if !status.success() {
        let tail: Vec<&str> = log.lines().rev().take(3).collect();
        return Err(MixError::Tool(format!("ffmpeg failed measuring the audio: {}", tail.join(" | "))));
    }
    let m = parse_log(&log);
    Ok(MixMeasure { clipped_share: if total > 0 { clipped as f64 / total as f64 } else { 0.0 }, ..m })
}

/// Reads the meter's summary and the silences from ffmpeg's log.
fn parse_log(log: &str) -> MixMeasure {
    let summary = log.rfind("Summary:").map(|i| &log[i..]).unwrap_or("");
    let value = |key: &str| {
        summary.lines().map(str::trim).find_map(|l| l.strip_prefix(key)).and_then(|rest| {
            rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite())
        })
    };
    let mut silences = Vec::new();
    let mut start: Option<f64> = None;
    for line in log.lines() {
        if let Some(i) = line.find("silence_start: ") {
            start = line[i + 15..].split_whitespace().next().and_then(|v| v.parse().ok());
        }
        if let Some(i) = line.find("silence_duration: ")
            && let Some(d) = line[i + 18..].split_whitespace().next().and_then(|v| v.parse::<f64>().ok())
        {
            silences.push((start.take().unwrap_or(0.0), d));
        }
    }
    // A silence still open at the end of the file has a start and no end.
    if let Some(s) = start {
        silences.push((s, f64::INFINITY));
    }
    // ebur128 reports −70 LUFS (its gate) for silence: no loudness was measured.
    let integrated_lufs = value("I:").filter(|v| *v > -69.9);
    MixMeasure { integrated_lufs, true_peak_dbtp: value("Peak:"), clipped_share: 0.0, silences }
}

/// The four mix checks for `video` against `plan`'s mix targets, over every soundtrack the
/// plan asks for (one per narrated language): a check passes only when it passes on each,
/// and a failure names the soundtrack's language.
pub fn check_mix(video: &Path, plan: &RenderPlan) -> Vec<Check> {
    let tracks = crate::render::soundtracks(plan);
    let mut combined: Vec<Check> = Vec::new();
    for (k, lang) in tracks.iter().enumerate() {
        let checks = match measure(video, k) {
            Ok(m) => from_measure(&m, plan),
            Err(MixError::NoAudio) if k == 0 => {
                return NAMES.iter().map(|n| Check::not_applicable(n, None, "the video has no audio track")).collect();
            }
            // A narrated language without its stream is the technical gate's failure
            // (audio_present); the mix of the streams that exist is still judged.
            Err(MixError::NoAudio) => continue,
            Err(MixError::Tool(why)) => NAMES.iter().map(|n| Check::not_measured(n, None, &why)).collect(),
        };
        let named = |mut c: Check| {
            if tracks.len() > 1 {
                c.reason = format!("{} soundtrack: {}", lang.as_deref().unwrap_or("music"), c.reason);
            }
            c
        };
        combined = if combined.is_empty() {
            checks.into_iter().map(named).collect()
        } else {
            // Keep the first failure (or the first measurement while everything passes).
            combined
                .into_iter()
                .zip(checks)
                .map(|(kept, next)| match (kept.status, next.status) {
                    (CheckStatus::Passed, CheckStatus::Failed) => named(next),
                    _ => kept,
                })
                .collect()
        };
    }
    combined
}

/// Judges a measurement against the plan (separate from [`measure`] so it can be tested on
/// numbers).
pub fn from_measure(m: &MixMeasure, plan: &RenderPlan) -> Vec<Check> {
    let target = plan.mix.target_lufs;
    let ceiling = plan.mix.true_peak_dbtp;
    let duration = plan.duration_s();
    let mut checks = Vec::with_capacity(4);

    checks.push(match m.integrated_lufs {
        None => Check::measured(
            LOUDNESS,
            None,
            false,
            0.0,
            "the soundtrack is silent (no measurable loudness)",
            json!({"integrated_lufs": null, "target_lufs": target}),
        ),
        Some(i) => {
            let off = (i - target).abs();
            let ok = off <= LOUDNESS_TOLERANCE_LU;
            let reason = if ok {
                format!("integrated loudness {i:.1} LUFS, target {target:.1}")
            } else if i > target {
                format!("too loud: {i:.1} LUFS against a target of {target:.1} LUFS")
            } else {
                format!("too quiet: {i:.1} LUFS against a target of {target:.1} LUFS")
            };
            let score = 1.0 - ((off - LOUDNESS_TOLERANCE_LU).max(0.0) / 8.0);
            Check::measured(LOUDNESS, None, ok, score, reason, json!({"integrated_lufs": i, "target_lufs": target}))
        }
    });

    checks.push(match m.true_peak_dbtp {
        None => Check::not_measured(TRUE_PEAK, None, "the meter reported no true peak"),
        Some(tp) => {
            let ok = tp <= ceiling + TRUE_PEAK_MARGIN_DB;
            let reason = if ok {
                format!("true peak {tp:.1} dBTP, ceiling {ceiling:.1}")
            } else {
                format!("true peak {tp:.1} dBTP is above the {ceiling:.1} dBTP ceiling: it will distort on playback")
            };
            let score = 1.0 - ((tp - ceiling - TRUE_PEAK_MARGIN_DB).max(0.0) / 6.0);
            Check::measured(TRUE_PEAK, None, ok, score, reason, json!({"true_peak_dbtp": tp, "ceiling_dbtp": ceiling}))
        }
    });

    let share = m.clipped_share;
    let ok = share <= CLIP_SHARE_MAX;
    let reason = if ok {
        format!("{:.4} % of samples at full scale", share * 100.0)
    } else {
        format!("the audio is clipped: {:.3} % of samples sit at full scale", share * 100.0)
    };
    checks.push(Check::measured(
        CLIPPING,
        None,
        ok,
        1.0 - (share / (100.0 * CLIP_SHARE_MAX)).min(1.0),
        reason,
        json!({"clipped_share": share}),
    ));

    // Only gaps that start after the lead-in and begin before the tail count: a fade-out or
    // a breath before the first word is not a gap.
    let gaps: Vec<(f64, f64)> = m
        .silences
        .iter()
        .filter(|(s, d)| *s + d.min(duration) > EDGE_S && *s < duration - EDGE_S && *d >= SILENCE_GAP_S)
        .map(|(s, d)| (*s, d.min(duration - s)))
        .collect();
    let longest = gaps.iter().map(|g| g.1).fold(0.0, f64::max);
    let ok = gaps.is_empty();
    let reason = if ok {
        format!("no silence longer than {SILENCE_GAP_S} s inside the video")
    } else {
        format!(
            "{} silent stretch(es) inside the video, the longest {longest:.1} s from {:.1} s",
            gaps.len(),
            gaps.iter().find(|g| g.1 == longest).map(|g| g.0).unwrap_or(0.0)
        )
    };
    let total: f64 = gaps.iter().map(|g| g.1).sum();
    checks.push(Check::measured(
        SILENCE_GAPS,
        None,
        ok,
        1.0 - (total / duration.max(1.0)).min(1.0),
        reason,
        json!({"gaps": gaps.iter().map(|(s, d)| json!({"start_s": s, "duration_s": d})).collect::<Vec<_>>()}),
    ));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_meter_summary_and_silences() {
        let log = "[silencedetect @ 0x1] silence_start: 3.5\n[silencedetect @ 0x1] silence_end: 6 | silence_duration: 2.5\n\
            [Parsed_ebur128_0 @ 0x2] Summary:\n\n  Integrated loudness:\n    I:         -14.2 LUFS\n    Threshold: -24.3 LUFS\n\n\
            \x20 True peak:\n    Peak:       -1.3 dBFS\n[silencedetect @ 0x1] silence_start: 9.0\n";
        let m = parse_log(log);
        assert_eq!(m.integrated_lufs, Some(-14.2));
        assert_eq!(m.true_peak_dbtp, Some(-1.3));
        assert_eq!(m.silences[0], (3.5, 2.5));
        assert_eq!(m.silences[1].0, 9.0);
        assert!(m.silences[1].1.is_infinite());
    }

    #[test]
    fn silence_reads_as_no_loudness() {
        let m = parse_log("Summary:\n  I:  -70.0 LUFS\n  Peak: -inf dBFS\n");
        assert_eq!(m.integrated_lufs, None);
        assert_eq!(m.true_peak_dbtp, None);
    }
}
