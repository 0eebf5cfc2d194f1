//! chrF (Popović 2015): the character n-gram F-score used to judge translation backends.
//! Whitespace is removed, n-grams of order 1–6 are matched with clipped counts, precision and
//! recall are averaged over the orders that occur, and combined with β = 2 (recall weighs
//! twice as much as precision). Corpus scores add the counts of every sentence first.

use std::collections::HashMap;

/// Highest character n-gram order.
pub const MAX_ORDER: usize = 6;
/// Recall weight.
pub const BETA: f64 = 2.0;

/// Matched, hypothesis and reference n-gram counts per order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    matched: [u64; MAX_ORDER],
    hyp: [u64; MAX_ORDER],
    reference: [u64; MAX_ORDER],
}

fn ngrams(chars: &[char], n: usize) -> HashMap<&[char], u64> {
    let mut m = HashMap::new();
    if chars.len() >= n {
        for w in chars.windows(n) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

impl Stats {
    /// Counts for one hypothesis against its reference.
    pub fn sentence(hypothesis: &str, reference: &str) -> Self {
        let h: Vec<char> = hypothesis.chars().filter(|c| !c.is_whitespace()).collect();
        let r: Vec<char> = reference.chars().filter(|c| !c.is_whitespace()).collect();
        let mut s = Stats::default();
        for n in 1..=MAX_ORDER {
            let (hn, rn) = (ngrams(&h, n), ngrams(&r, n));
            s.hyp[n - 1] = hn.values().sum();
            s.reference[n - 1] = rn.values().sum();
            s.matched[n - 1] = hn.iter().map(|(g, c)| (*c).min(rn.get(g).copied().unwrap_or(0))).sum();
        }
        s
    }

    /// Add another sentence's counts.
    pub fn add(&mut self, o: &Stats) {
        for i in 0..MAX_ORDER {
            self.matched[i] += o.matched[i];
            self.hyp[i] += o.hyp[i];
            self.reference[i] += o.reference[i];
        }
    }

    /// The chrF score, 0–100.
    pub fn score(&self) -> f64 {
        let (mut p, mut r, mut orders) = (0.0, 0.0, 0);
        for i in 0..MAX_ORDER {
            if self.hyp[i] == 0 && self.reference[i] == 0 {
                continue;
            }
            orders += 1;
            if self.hyp[i] > 0 {
                p += self.matched[i] as f64 / self.hyp[i] as f64;
            }
            if self.reference[i] > 0 {
                r += self.matched[i] as f64 / self.reference[i] as f64;
            }
        }
        if orders == 0 {
            return 0.0;
        }
        let (p, r) = (p / orders as f64, r / orders as f64);
        let b2 = BETA * BETA;
        if p + r == 0.0 { 0.0 } else { 100.0 * (1.0 + b2) * p * r / (b2 * p + r) }
    }
}

/// Corpus chrF of hypotheses against references (pairs in order).
pub fn corpus(pairs: &[(String, String)]) -> f64 {
    let mut total = Stats::default();
    for (h, r) in pairs {
        total.add(&Stats::sentence(h, r));
    }
    total.score()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_text_scores_100_and_disjoint_text_0() {
        assert!((Stats::sentence("Le pain est chaud.", "Le pain est chaud.").score() - 100.0).abs() < 1e-9);
        assert_eq!(Stats::sentence("xyz", "abc").score(), 0.0);
        assert_eq!(Stats::sentence("", "").score(), 0.0);
    }

    #[test]
    fn a_hand_computed_case() {
        // "ab" vs "abc": order 1: 2 matched of 2 (P=1) and 3 (R=2/3); order 2: 1 of 1 (P=1), of 2
        // (R=1/2); order 3: hyp has none (P contributes 0), ref 1 (R=0). Averages over the 3
        // orders: P = 2/3, R = 7/18. F2 = 5PR / (4P + R).
        let (p, r) = (2.0 / 3.0, 7.0 / 18.0);
        let expected = 100.0 * 5.0 * p * r / (4.0 * p + r);
        let got = Stats::sentence("ab", "abc").score();
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    }

    #[test]
    fn whitespace_is_ignored_and_recall_weighs_more_than_precision() {
        assert_eq!(Stats::sentence("le pain", "lepain").score(), Stats::sentence("lepain", "le pain").score());
        let short = Stats::sentence("pain", "le pain chaud").score();
        let long = Stats::sentence("le pain chaud et frais du matin", "le pain chaud").score();
        assert!(long > short, "{long} vs {short}");
    }
}
