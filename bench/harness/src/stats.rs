//! min / median / p90 of a set of samples.

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub(crate) min: f64,
    pub(crate) median: f64,
    pub(crate) p90: f64,
    pub(crate) n: usize,
}

impl Summary {
    /// `None` for no samples. The median of an even count is the mean of the middle two; p90 is
    /// the nearest-rank percentile.
    pub(crate) fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
        Some(Summary {
            min: v[0],
            median,
            p90: v[rank - 1],
            n,
        })
    }

    pub(crate) fn to_json(self) -> Value {
        json!({ "min": self.min, "median": self.median, "p90": self.p90, "n": self.n })
    }
}

/// The median alone, `None` for no samples.
pub(crate) fn median(samples: &[f64]) -> Option<f64> {
    Summary::of(samples).map(|s| s.median)
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn odd_and_even_counts() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).map(|s| (s.min, s.median, s.p90));
        assert_eq!(s, Some((1.0, 3.0, 5.0)));
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = Summary::of(&v).map(|s| (s.min, s.median, s.p90));
        assert_eq!(s, Some((1.0, 5.5, 9.0)));
        assert!(Summary::of(&[]).is_none());
    }
}
