//! When a certificate is due for renewal: a pure function of its validity, the moment and the
//! operator's threshold, so that the one-shot command, the daemon and the tests agree.

use std::str::FromStr;

use time::{Duration, OffsetDateTime};

/// The operator's threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RenewAt {
    /// Once this fraction of the certificate's lifetime has passed (`2/3`, `0.75`, `80%`).
    Elapsed(f64),
    /// Once less than this is left before `not_after`.
    Left(Duration),
}

impl Default for RenewAt {
    /// Two thirds through the lifetime: a failed attempt leaves a third of it for retries.
    fn default() -> Self {
        Self::Elapsed(2.0 / 3.0)
    }
}

/// A certificate's validity window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl RenewAt {
    /// The moment the certificate becomes due.
    pub fn due_at(self, validity: Validity) -> OffsetDateTime {
        match self {
            Self::Elapsed(fraction) => {
                let lifetime = validity.not_after - validity.not_before;
                validity.not_before + lifetime * fraction
            }
            Self::Left(left) => validity.not_after - left,
        }
    }

    pub fn is_due(self, validity: Validity, now: OffsetDateTime) -> bool {
        now >= self.due_at(validity)
    }
}

/// `--renew-at`: a fraction of the lifetime, written `2/3`, `0.75` or `80%`, strictly
/// between 0 and 1.
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let value = if let Some(percent) = text.strip_suffix('%') {
        f64::from_str(percent.trim()).map(|p| p / 100.0).ok()
    } else if let Some((numerator, denominator)) = text.split_once('/') {
        match (
            f64::from_str(numerator.trim()),
            f64::from_str(denominator.trim()),
        ) {
            (Ok(n), Ok(d)) if d != 0.0 => Some(n / d),
            _ => None,
        }
    } else {
        f64::from_str(text).ok()
    };
    value
        .filter(|v| *v > 0.0 && *v < 1.0)
        .ok_or_else(|| format!("`{text}` is not a fraction between 0 and 1 (e.g. 2/3, 0.75, 80%)"))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn one_year() -> Validity {
        Validity {
            not_before: datetime!(2026-01-01 00:00 UTC),
            not_after: datetime!(2027-01-01 00:00 UTC),
        }
    }

    #[test]
    fn by_default_a_certificate_is_due_two_thirds_through_its_lifetime() {
        let validity = one_year();
        let due = RenewAt::default().due_at(validity);
        assert_eq!(due, datetime!(2026-09-01 08:00 UTC), "243⅓ of 365 days");
        assert!(!RenewAt::default().is_due(validity, due - Duration::seconds(1)));
        assert!(RenewAt::default().is_due(validity, due));
        assert!(RenewAt::default().is_due(validity, validity.not_after + Duration::days(1)));
    }

    #[test]
    fn a_time_left_threshold_counts_back_from_the_expiry() {
        let validity = one_year();
        let at = RenewAt::Left(Duration::days(30));
        assert_eq!(at.due_at(validity), datetime!(2026-12-02 00:00 UTC));
        assert!(!at.is_due(validity, datetime!(2026-12-01 23:59 UTC)));
        assert!(at.is_due(validity, datetime!(2026-12-02 00:00 UTC)));
    }

    #[test]
    fn a_threshold_longer_than_the_lifetime_makes_it_due_at_once() {
        let validity = one_year();
        let at = RenewAt::Left(Duration::days(400));
        assert!(at.is_due(validity, validity.not_before));
    }

    #[test]
    fn fractions_are_read_in_three_spellings_and_bounded() {
        assert!((parse_fraction("2/3").unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(parse_fraction("0.75"), Ok(0.75));
        assert_eq!(parse_fraction("80%"), Ok(0.8));
        for wrong in ["0", "1", "3/2", "1/0", "-0.5", "abc", "", "100%"] {
            assert!(parse_fraction(wrong).is_err(), "{wrong}");
        }
    }
}
