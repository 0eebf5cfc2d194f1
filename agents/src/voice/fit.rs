//! Scene durations that follow the speech.
//!
//! Every narrated scene needs a little silence before its speech (the crossfade), the speech,
//! and a breath after it. The total should stay within a tolerance of the length the brief
//! asked for: spare time becomes longer pauses (shared by the planner's own durations), and a
//! narration that is too long is first spoken faster — up to a limit, beyond which speech
//! stops sounding natural — and only then reported as not fitting, so the caller can shorten
//! the text or fail with the reason. Speech is never cut.

use serde::{Deserialize, Serialize};

/// Pauses and limits (from config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSettings {
    /// Silence before a scene's speech, seconds (covers the crossfade into the scene).
    pub lead_in_s: f64,
    /// Silence after a scene's speech, seconds.
    pub tail_s: f64,
    /// Shortest scene, seconds (a silent scene gets at least this).
    pub min_scene_s: f64,
    /// Largest speed-up, as a fraction (0.12 = 12 % faster at most).
    pub max_rate_change: f64,
    /// How far the total may stray from the requested duration, seconds.
    pub tolerance_s: f64,
}

impl Default for FitSettings {
    fn default() -> Self {
        Self { lead_in_s: 0.4, tail_s: 0.5, min_scene_s: 2.0, max_rate_change: 0.12, tolerance_s: 2.0 }
    }
}

/// The narration is longer than the video may be, even spoken at the fastest allowed rate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "the narration needs {needed_s:.1} s at {max_rate:.2}× speed but the video may last at most {allowed_s:.1} s \
     ({requested_s:.0} s requested + {tolerance_s:.0} s tolerance)"
)]
pub struct NoFit {
    /// Total length the scenes need at the fastest allowed rate.
    pub needed_s: f64,
    /// Longest total allowed.
    pub allowed_s: f64,
    /// The requested duration.
    pub requested_s: f64,
    /// The tolerance.
    pub tolerance_s: f64,
    /// The fastest allowed rate.
    pub max_rate: f64,
}

impl FitSettings {
    /// Length a scene needs for `speech_s` seconds of speech (0 = not narrated).
    fn need(&self, speech_s: f64) -> f64 {
        if speech_s > 0.0 { (self.lead_in_s + speech_s + self.tail_s).max(self.min_scene_s) } else { self.min_scene_s }
    }

    /// The speaking rate (1.0 = natural; > 1 faster) for speech measured at rate 1.0:
    /// natural when the scenes fit (half the tolerance may be used to stay natural),
    /// otherwise just fast enough to reach the requested total, at most `1 + max_rate_change`.
    pub fn rate(&self, speech_at_1: &[f64], requested_s: f64) -> Result<f64, NoFit> {
        let total = |r: f64| speech_at_1.iter().map(|&s| self.need(s / r)).sum::<f64>();
        let max_rate = 1.0 + self.max_rate_change;
        if total(1.0) <= requested_s + self.tolerance_s / 2.0 {
            return Ok(1.0);
        }
        if total(max_rate) > requested_s + self.tolerance_s {
            return Err(NoFit {
                needed_s: total(max_rate),
                allowed_s: requested_s + self.tolerance_s,
                requested_s,
                tolerance_s: self.tolerance_s,
                max_rate,
            });
        }
        // total(r) falls as r grows: bisect for total(r) = requested.
        let (mut lo, mut hi) = (1.0, max_rate);
        for _ in 0..40 {
            let mid = (lo + hi) / 2.0;
            if total(mid) > requested_s { lo = mid } else { hi = mid }
        }
        Ok(hi)
    }

    /// Scene durations for the speech as finally synthesised (`speech_s`, 0 = silent scene):
    /// every scene gets what it needs, and time left over up to `requested_s` is shared in
    /// proportion to how much longer the planner wanted each scene (or to each scene's
    /// length when the planner's durations are all covered). Errs when the speech does not
    /// fit within the tolerance.
    pub fn durations(&self, speech_s: &[f64], planned_s: &[f64], requested_s: f64) -> Result<Vec<f64>, NoFit> {
        let mut d: Vec<f64> = speech_s.iter().map(|&s| self.need(s)).collect();
        let total: f64 = d.iter().sum();
        if total > requested_s + self.tolerance_s {
            return Err(NoFit {
                needed_s: total,
                allowed_s: requested_s + self.tolerance_s,
                requested_s,
                tolerance_s: self.tolerance_s,
                max_rate: 1.0 + self.max_rate_change,
            });
        }
        let spare = requested_s - total;
        if spare > 0.0 {
            let wish: Vec<f64> =
                d.iter().enumerate().map(|(i, &n)| (planned_s.get(i).copied().unwrap_or(0.0) - n).max(0.0)).collect();
            let wish_total: f64 = wish.iter().sum();
            let weights = if wish_total > 1e-9 { wish } else { d.clone() };
            let weight_total: f64 = weights.iter().sum::<f64>().max(1e-9);
            for (x, w) in d.iter_mut().zip(weights) {
                *x += spare * w / weight_total;
            }
        }
        Ok(d)
    }
}

/// A translated narration that cannot be spoken inside the scene durations the source
/// narration fixed, even at the fastest allowed rate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "scene {scene} needs {speech_s:.1} s of speech at {max_rate:.2}× speed but has room for {room_s:.1} s \
     (its length is fixed by the source-language narration)"
)]
pub struct SceneNoFit {
    /// The scene, 1-based.
    pub scene: usize,
    /// Its speech at the fastest allowed rate, seconds.
    pub speech_s: f64,
    /// Room for speech in the scene (its length less the lead-in and the tail), seconds.
    pub room_s: f64,
    /// The fastest allowed rate.
    pub max_rate: f64,
}

impl FitSettings {
    /// The speaking rate at which speech measured at rate 1.0 (`speech_at_1`, one entry per
    /// scene, 0 = silent) fits scenes whose lengths are already fixed (`durations_s`): 1.0
    /// when it fits as spoken, else just fast enough for the tightest scene, at most
    /// `1 + max_rate_change`. A second language's narration is fitted this way: the scenes
    /// keep the timing the first language's speech gave them.
    pub fn rate_for_fixed(&self, speech_at_1: &[f64], durations_s: &[f64]) -> Result<f64, SceneNoFit> {
        let max_rate = 1.0 + self.max_rate_change;
        let mut needed: f64 = 1.0;
        for (i, (&speech, &d)) in speech_at_1.iter().zip(durations_s).enumerate() {
            if speech <= 0.0 {
                continue;
            }
            let room = d - self.lead_in_s - self.tail_s;
            if room <= 0.0 || speech / max_rate > room {
                return Err(SceneNoFit { scene: i + 1, speech_s: speech / max_rate, room_s: room.max(0.0), max_rate });
            }
            needed = needed.max(speech / room);
        }
        Ok(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_language_fits_fixed_scenes_by_rate_or_names_the_scene_that_does_not() {
        let s = settings();
        // Room per scene = d - 0.4 - 0.6.
        assert_eq!(s.rate_for_fixed(&[3.0, 0.0, 2.0], &[5.0, 3.0, 4.0]).unwrap(), 1.0);
        let r = s.rate_for_fixed(&[4.4, 2.0], &[5.0, 5.0]).unwrap();
        assert!((r - 1.1).abs() < 1e-9, "{r}");
        let e = s.rate_for_fixed(&[2.0, 5.0], &[5.0, 5.0]).unwrap_err();
        assert_eq!(e.scene, 2);
        assert!((e.room_s - 4.0).abs() < 1e-9);
        assert!(e.to_string().contains("scene 2"), "{e}");
    }

    fn settings() -> FitSettings {
        FitSettings { lead_in_s: 0.4, tail_s: 0.6, min_scene_s: 2.0, max_rate_change: 0.12, tolerance_s: 2.0 }
    }

    #[test]
    fn short_speech_keeps_its_pace_and_pauses_fill_the_requested_length() {
        let s = settings();
        assert_eq!(s.rate(&[3.0, 4.0, 0.0], 15.0).unwrap(), 1.0);
        let d = s.durations(&[3.0, 4.0, 0.0], &[5.0, 5.0, 5.0], 15.0).unwrap();
        assert!((d.iter().sum::<f64>() - 15.0).abs() < 1e-9, "{d:?}");
        assert!(d[0] >= 4.0 && d[1] >= 5.0 && d[2] >= 2.0, "{d:?}");
    }

    #[test]
    fn long_speech_is_spoken_faster_within_the_limit_or_reported() {
        let s = settings();
        // Needs 3 × (1 + 5.5) = 19.5 s at natural pace for 18 s: 1.0 < r ≤ 1.12.
        let r = s.rate(&[5.5, 5.5, 5.5], 18.0).unwrap();
        assert!(r > 1.0 && r <= 1.12, "{r}");
        let d = s.durations(&[5.5 / r, 5.5 / r, 5.5 / r], &[6.0; 3], 18.0).unwrap();
        assert!((d.iter().sum::<f64>() - 18.0).abs() < 0.01, "{d:?}");
        // Far too long: even 12 % faster needs more than 18 + 2 s.
        let e = s.rate(&[9.0, 9.0, 9.0], 18.0).unwrap_err();
        assert!(e.needed_s > 20.0 && e.allowed_s == 20.0, "{e}");
        assert!(e.to_string().contains("at most 20.0 s"), "{e}");
        assert!(s.durations(&[9.0, 9.0, 9.0], &[6.0; 3], 18.0).is_err());
    }

    #[test]
    fn slightly_long_speech_uses_the_tolerance_before_speeding_up() {
        let s = settings();
        assert_eq!(s.rate(&[5.0, 5.0], 12.5), Ok(1.0)); // needs 12 s... fits
        assert_eq!(s.rate(&[5.2, 5.2], 12.0), Ok(1.0)); // needs 12.4 s ≤ 12 + 1
        let d = s.durations(&[5.2, 5.2], &[6.0, 6.0], 12.0).unwrap();
        assert!((d.iter().sum::<f64>() - 12.4).abs() < 1e-9);
    }
}
