//! The music bed: a small deterministic synthesiser that turns an [`AudioPlan`] into stereo
//! samples, streamed in chunks alongside the video. A chord progression in the plan's scale
//! (chosen from the seed) plays as soft pads over a bass line; energy adds a plucked
//! arpeggio, then a kick-and-hat pulse. Gain, a soft clipper and short fades finish it.

use std::f32::consts::PI;

use crate::domain::{AudioPlan, Scale};
use crate::render::compose::SplitMix;

/// Samples per wavetable cycle (a power of two).
const TABLE_BITS: u32 = 11;
const TABLE_LEN: usize = 1 << TABLE_BITS;

/// Semitone offsets of the seven scale degrees.
fn scale_steps(scale: Scale) -> [i32; 7] {
    match scale {
        Scale::Major => [0, 2, 4, 5, 7, 9, 11],
        Scale::Minor => [0, 2, 3, 5, 7, 8, 10],
    }
}

/// Chord progressions as scale degrees (0 = tonic); the seed picks one.
fn progressions(scale: Scale) -> &'static [[usize; 4]] {
    match scale {
        // I–V–vi–IV, I–vi–IV–V, I–IV–vi–V
        Scale::Major => &[[0, 4, 5, 3], [0, 5, 3, 4], [0, 3, 5, 4]],
        // i–VI–III–VII, i–iv–VI–v, i–VII–VI–VII
        Scale::Minor => &[[0, 5, 2, 6], [0, 3, 5, 4], [0, 6, 5, 6]],
    }
}

/// Semitones above the root of scale degree `degree` (may exceed an octave).
fn degree_semitones(steps: &[i32; 7], degree: usize) -> i32 {
    steps[degree % 7] + 12 * (degree / 7) as i32
}

/// One cycle of a waveform built from harmonic amplitudes, normalised to peak 1.
fn wavetable(harmonics: &[f32]) -> Vec<f32> {
    let mut t: Vec<f32> = (0..TABLE_LEN)
        .map(|i| {
            let ph = i as f32 / TABLE_LEN as f32 * 2.0 * PI;
            harmonics.iter().enumerate().map(|(h, a)| a * (ph * (h + 1) as f32).sin()).sum()
        })
        .collect();
    let peak = t.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    t.iter_mut().for_each(|v| *v /= peak);
    t
}

/// A phase-accumulating oscillator reading a shared wavetable.
#[derive(Debug, Clone, Copy, Default)]
struct Osc {
    phase: u32,
    inc: u32,
}

impl Osc {
    fn set_freq(&mut self, hz: f32, rate: f32) {
        self.inc = ((hz / rate).clamp(0.0, 0.49) as f64 * 4_294_967_296.0) as u32;
    }
    #[inline]
    fn tick(&mut self, table: &[f32]) -> f32 {
        let idx = (self.phase >> (32 - TABLE_BITS)) as usize;
        let frac = ((self.phase >> (32 - TABLE_BITS - 16)) & 0xffff) as f32 / 65536.0;
        let a = table[idx];
        let b = table[(idx + 1) & (TABLE_LEN - 1)];
        self.phase = self.phase.wrapping_add(self.inc);
        a + (b - a) * frac
    }
}

/// A short decaying note (pluck or kick) started on a beat subdivision.
#[derive(Debug, Clone, Copy, Default)]
struct Hit {
    osc: Osc,
    age: u32,
    /// Current decay level (multiplied by the decay factor every sample).
    level: f32,
    active: bool,
    pan: f32,
}

/// Streams the music bed for one plan; the same plan and seed always give the same samples.
pub struct MusicBed {
    rate: f32,
    total: u64,
    pos: u64,
    gain: f32,
    energy: f32,
    fade_in: u64,
    fade_out: u64,
    /// Chord tones (semitones above the root) for each chord of the progression.
    chords: Vec<[i32; 3]>,
    root_hz: f32,
    samples_per_beat: f64,
    beats_per_chord: u32,
    /// Arpeggio note order within a chord (indices into chord tones, 3 = octave above).
    arp_pattern: [usize; 4],
    pad_table: Vec<f32>,
    pluck_table: Vec<f32>,
    sine: Vec<f32>,
    /// Two pad banks alternate chords so one can release while the other attacks; each bank
    /// has three chord tones, each a left and a right (detuned) oscillator.
    pads: [[[Osc; 2]; 3]; 2],
    bass: Osc,
    plucks: [Hit; 4],
    next_pluck: usize,
    kick: Hit,
    hat_age: u32,
    hat_level: f32,
    noise: SplitMix,
    last_step: i64,
}

impl MusicBed {
    /// Prepares a bed of `duration_s` seconds for `plan`, with choices drawn from `seed`.
    pub fn new(plan: &AudioPlan, duration_s: f64, seed: u64) -> MusicBed {
        let rate = plan.sample_rate.max(1) as f32;
        let mut rng = SplitMix(seed ^ 0xA0D1_0B3D);
        let steps = scale_steps(plan.scale);
        let options = progressions(plan.scale);
        let progression = options[(rng.next_u64() % options.len() as u64) as usize];
        let chords = progression
            .iter()
            .map(|&d| [degree_semitones(&steps, d), degree_semitones(&steps, d + 2), degree_semitones(&steps, d + 4)])
            .collect();
        let tempo = plan.tempo_bpm.clamp(20.0, 400.0) as f64;
        let samples_per_beat = rate as f64 * 60.0 / tempo;
        let arp_patterns = [[0, 1, 2, 1], [0, 1, 2, 3], [0, 2, 1, 3], [3, 2, 1, 0]];
        let arp_pattern = arp_patterns[(rng.next_u64() % arp_patterns.len() as u64) as usize];
        let total = (duration_s.max(0.0) * rate as f64).round() as u64;
        let fade_in = ((0.4 * rate) as u64).min(total / 4);
        let fade_out = ((1.2 * rate) as u64).min(total / 3);
        MusicBed {
            rate,
            total,
            pos: 0,
            gain: plan.gain.clamp(0.0, 1.0),
            energy: plan.energy.clamp(0.0, 1.0),
            fade_in,
            fade_out,
            chords,
            root_hz: plan.root_hz.clamp(20.0, 2000.0),
            samples_per_beat,
            beats_per_chord: if tempo > 110.0 { 8 } else { 4 },
            arp_pattern,
            pad_table: wavetable(&[1.0, 0.3, 0.12, 0.05]),
            pluck_table: wavetable(&[1.0, 0.5, 0.25, 0.0, 0.12]),
            sine: wavetable(&[1.0]),
            pads: [[[Osc::default(); 2]; 3]; 2],
            bass: Osc::default(),
            plucks: [Hit::default(); 4],
            next_pluck: 0,
            kick: Hit::default(),
            hat_age: u32::MAX,
            hat_level: 0.0,
            noise: SplitMix(seed ^ 0x5EED_F4A7),
            last_step: -1,
        }
    }

    /// Total length of the bed in samples (per channel).
    pub fn total_samples(&self) -> u64 {
        self.total
    }

    /// Samples produced so far (per channel).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Writes the next samples into `left` and `right` (same length) and returns how many were
    /// written: fewer than asked only at the end of the bed, zero once it is over.
    pub fn fill(&mut self, left: &mut [f32], right: &mut [f32]) -> usize {
        let n = left.len().min(right.len()).min((self.total - self.pos) as usize);
        let rate = self.rate;
        let spb = self.samples_per_beat;
        let chord_len = spb * self.beats_per_chord as f64;
        let attack = (chord_len * 0.3).min(1.5 * rate as f64);
        let release = (chord_len * 0.6).min(2.5 * rate as f64);
        let pluck_level = ((self.energy - 0.2) / 0.8).clamp(0.0, 1.0);
        let pulse_level = ((self.energy - 0.5) / 0.5).clamp(0.0, 1.0);
        let sub_steps = if self.energy > 0.8 { 4 } else { 2 };
        let pluck_decay = (-1.0 / (0.16 * rate)).exp();
        let kick_decay = (-1.0 / (0.09 * rate)).exp();
        let hat_decay = (-1.0 / (0.02 * rate)).exp();
        let bass_hz = {
            let mut f = self.root_hz / 2.0;
            while f > 110.0 {
                f /= 2.0;
            }
            f
        };

        for i in 0..n {
            let s = self.pos + i as u64;
            let sf = s as f64;
            let chord_index = (sf / chord_len) as usize;
            let in_chord = sf - chord_index as f64 * chord_len;
            let chord = self.chords[chord_index % self.chords.len()];

            // Retune a pad bank at the start of its chord (its previous chord has released).
            if in_chord < 1.0 {
                let bank = chord_index % 2;
                for (v, semis) in chord.iter().enumerate() {
                    let hz = self.root_hz * 2f32.powf(*semis as f32 / 12.0);
                    self.pads[bank][v][0].set_freq(hz * 0.9977, rate);
                    self.pads[bank][v][1].set_freq(hz * 1.0023, rate);
                }
                self.bass.set_freq(bass_hz * 2f32.powf(chord[0] as f32 / 12.0), rate);
            }

            // Pads: current bank attacks/sustains, the other bank releases the previous chord.
            let mut l = 0.0;
            let mut r = 0.0;
            for bank in 0..2 {
                let age = if bank == chord_index % 2 { in_chord } else { in_chord + chord_len };
                let env = if bank == chord_index % 2 {
                    smooth((age / attack).min(1.0) as f32)
                } else if chord_index == 0 || age >= chord_len + release {
                    0.0
                } else {
                    1.0 - smooth(((age - chord_len) / release) as f32)
                };
                if env <= 0.0 {
                    // Keep phases running so a later retune stays continuous.
                    for v in 0..3 {
                        self.pads[bank][v][0].tick(&self.pad_table);
                        self.pads[bank][v][1].tick(&self.pad_table);
                    }
                    continue;
                }
                for v in 0..3 {
                    l += env * self.pads[bank][v][0].tick(&self.pad_table);
                    r += env * self.pads[bank][v][1].tick(&self.pad_table);
                }
            }
            let pad_level = 0.09;
            l *= pad_level;
            r *= pad_level;

            // Bass: follows the chord root, breathing with each beat.
            let beat_pos = (sf / spb).fract() as f32;
            let bass_env = 0.6 + 0.4 * (1.0 - beat_pos).powi(2);
            let bass = 0.16 * bass_env * self.bass.tick(&self.sine);
            l += bass;
            r += bass;

            // Rhythmic events on beat subdivisions.
            let step = (sf / (spb / sub_steps as f64)) as i64;
            if step != self.last_step {
                self.last_step = step;
                if pluck_level > 0.0 {
                    let tone = self.arp_pattern[(step as usize) % 4];
                    let semis = if tone == 3 { chord[0] + 12 } else { chord[tone] };
                    let hz = 2.0 * self.root_hz * 2f32.powf(semis as f32 / 12.0);
                    let hit = &mut self.plucks[self.next_pluck];
                    hit.osc.set_freq(hz, rate);
                    hit.osc.phase = 0;
                    hit.age = 0;
                    hit.level = 1.0;
                    hit.active = true;
                    hit.pan = if step % 2 == 0 { -0.35 } else { 0.35 };
                    self.next_pluck = (self.next_pluck + 1) % self.plucks.len();
                }
                if pulse_level > 0.0 {
                    if step % sub_steps as i64 == 0 {
                        self.kick.age = 0;
                        self.kick.level = 1.0;
                        self.kick.active = true;
                        self.kick.osc.phase = 0;
                    } else if step % sub_steps as i64 == (sub_steps / 2) as i64 {
                        self.hat_age = 0;
                        self.hat_level = 1.0;
                    }
                }
            }
            for hit in self.plucks.iter_mut().filter(|h| h.active) {
                let attack_env = (hit.age as f32 / (0.004 * rate)).min(1.0);
                let env = attack_env * hit.level;
                hit.level *= pluck_decay;
                let v = 0.11 * pluck_level * env * hit.osc.tick(&self.pluck_table);
                l += v * (1.0 - hit.pan);
                r += v * (1.0 + hit.pan);
                hit.age += 1;
                if env < 1e-4 && hit.age > rate as u32 / 100 {
                    hit.active = false;
                }
            }
            if self.kick.active {
                let t = self.kick.age as f32 / rate;
                let hz = 45.0 + 70.0 * (-t / 0.03).exp();
                self.kick.osc.set_freq(hz, rate);
                let env = self.kick.level;
                self.kick.level *= kick_decay;
                let v = 0.3 * pulse_level * env * self.kick.osc.tick(&self.sine);
                l += v;
                r += v;
                self.kick.age += 1;
                if env < 1e-4 {
                    self.kick.active = false;
                }
            }
            if self.hat_age != u32::MAX {
                let env = self.hat_level;
                self.hat_level *= hat_decay;
                let white = self.noise.unit() * 2.0 - 1.0;
                let v = 0.05 * pulse_level * env * white;
                l += v * 0.8;
                r += v;
                self.hat_age += 1;
                if env < 1e-4 {
                    self.hat_age = u32::MAX;
                }
            }

            // Master: gain, soft clip, fades.
            let fade = self.fade_at(s);
            left[i] = soft_clip(l * self.gain) * fade;
            right[i] = soft_clip(r * self.gain) * fade;
        }
        self.pos += n as u64;
        n
    }

    /// Fade-in/fade-out gain at sample `s`.
    fn fade_at(&self, s: u64) -> f32 {
        let mut g = 1.0;
        if self.fade_in > 0 && s < self.fade_in {
            g *= s as f32 / self.fade_in as f32;
        }
        let remaining = self.total.saturating_sub(s + 1);
        if self.fade_out > 0 && remaining < self.fade_out {
            g *= remaining as f32 / self.fade_out as f32;
        }
        g
    }
}

/// Smooth 0→1 ease used by the pad envelopes.
fn smooth(x: f32) -> f32 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// Rational tanh approximation: transparent at low levels, never exceeds ±1.
fn soft_clip(x: f32) -> f32 {
    let x = x.clamp(-3.0, 3.0);
    x * (27.0 + x * x) / (27.0 + 9.0 * x * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(energy: f32) -> AudioPlan {
        AudioPlan { sample_rate: 48_000, tempo_bpm: 100.0, root_hz: 220.0, scale: Scale::Minor, energy, gain: 0.8 }
    }

    fn render(p: &AudioPlan, seconds: f64, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut bed = MusicBed::new(p, seconds, seed);
        let (mut l, mut r) = (Vec::new(), Vec::new());
        let (mut bl, mut br) = (vec![0.0; 1024], vec![0.0; 1024]);
        loop {
            let n = bed.fill(&mut bl, &mut br);
            if n == 0 {
                break;
            }
            l.extend_from_slice(&bl[..n]);
            r.extend_from_slice(&br[..n]);
        }
        (l, r)
    }

    fn rms(v: &[f32]) -> f32 {
        (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt()
    }

    #[test]
    fn bed_has_the_planned_length_and_is_audible_and_bounded() {
        for energy in [0.0, 0.5, 1.0] {
            let (l, r) = render(&plan(energy), 3.0, 7);
            assert_eq!(l.len(), 144_000);
            assert_eq!(r.len(), 144_000);
            assert!(rms(&l[24_000..120_000]) > 0.02, "energy {energy}: too quiet");
            assert!(l.iter().chain(&r).all(|v| v.abs() <= 1.0 && v.is_finite()));
        }
    }

    #[test]
    fn same_seed_same_samples_and_energy_changes_the_sound() {
        let a = render(&plan(0.7), 2.0, 42);
        let b = render(&plan(0.7), 2.0, 42);
        assert_eq!(a, b);
        let calm = render(&plan(0.0), 2.0, 42);
        assert_ne!(a.0, calm.0);
    }

    #[test]
    fn fades_start_and_end_at_silence() {
        let (l, _) = render(&plan(1.0), 4.0, 1);
        assert_eq!(l[0], 0.0);
        assert!(l.last().unwrap().abs() < 1e-3);
    }
}
