//! Entry timestamps: RFC 3339 UTC with exactly six fractional digits and `Z`, and the injected
//! clock the writer reads them from.
//!
//! The fixed width means timestamps order lexicographically exactly as they order in time, which
//! the chain check uses. Conversions are done by hand (Howard Hinnant's civil-date algorithms) so
//! that the log depends on no date library's formatting choices.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Microseconds since the Unix epoch, UTC. Entries only ever hold years 0001–9999.
///
/// Serialised (in internal binary records such as snapshots) as the integer microseconds;
/// entries spell it as text through `Display`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp(i64);

/// Smallest representable instant: 0001-01-01T00:00:00.000000Z.
const MICROS_MIN: i64 = -62_135_596_800_000_000;
/// Largest representable instant: 9999-12-31T23:59:59.999999Z.
const MICROS_MAX: i64 = 253_402_300_799_999_999;

/// Why a string is not an entry timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 UTC timestamp of the form YYYY-MM-DDTHH:MM:SS.ffffffZ: {0:?}")]
pub struct ParseTimestampError(pub String);

impl Timestamp {
    /// The instant `micros` microseconds after the epoch, clamped to years 0001–9999.
    pub fn from_unix_micros(micros: i64) -> Self {
        Self(micros.clamp(MICROS_MIN, MICROS_MAX))
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(self) -> i64 {
        self.0
    }

    /// Parses the exact entry form `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    ///
    /// # Errors
    /// [`ParseTimestampError`] for any other spelling, including valid RFC 3339 variants
    /// (offsets, other precisions), because entries admit one spelling only.
    pub fn parse(text: &str) -> Result<Self, ParseTimestampError> {
        let err = || ParseTimestampError(text.to_owned());
        let b: &[u8; 27] = text.as_bytes().try_into().map_err(|_| err())?;
        // Every entry's time is parsed when the log is read or verified: the separators and the
        // twenty digits are checked in one pass, then the fields are read without checks.
        const DIGITS: [usize; 20] = [
            0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25,
        ];
        let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
        if separators.iter().any(|&(at, c)| b[at] != c)
            || b[19] != b'.'
            || b[26] != b'Z'
            || !DIGITS.iter().all(|&at| b[at].is_ascii_digit())
        {
            return Err(err());
        }
        let num = |range: std::ops::Range<usize>| -> Result<i64, ParseTimestampError> {
            Ok(b[range]
                .iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second, micro) =
            (num(11..13)?, num(14..16)?, num(17..19)?, num(20..26)?);
        if year < 1
            || !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(err());
        }
        let days = days_from_civil(year, month, day);
        Ok(Self(
            ((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000) + micro,
        ))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0.rem_euclid(1_000_000);
        let secs = self.0.div_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Where the writer gets the time it stamps on entries.
///
/// Injected so that simulations and tests control time; the writer still guarantees that `time`
/// never decreases along the log, whatever a clock returns.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp::from_unix_micros(since)
    }
}

/// A clock that only moves when told to: for tests and simulations.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.unix_micros())))
    }

    /// Sets the time shown (it may go backwards; the writer still never stamps a decreasing time).
    pub fn set(&self, to: Timestamp) {
        self.0.store(to.unix_micros(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `micros`.
    pub fn advance_micros(&self, micros: i64) {
        self.0.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        for (micros, text) in [
            (0, "1970-01-01T00:00:00.000000Z"),
            (1_770_714_000_123_456, "2026-02-10T09:00:00.123456Z"),
            (951_782_400_000_000, "2000-02-29T00:00:00.000000Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
            (MICROS_MAX, "9999-12-31T23:59:59.999999Z"),
            (MICROS_MIN, "0001-01-01T00:00:00.000000Z"),
        ] {
            let ts = Timestamp::from_unix_micros(micros);
            assert_eq!(ts.to_string(), text);
            assert_eq!(Timestamp::parse(text), Ok(ts));
        }
    }

    proptest::proptest! {
        /// Every instant in range reads back from its text; a non-digit at any digit's place, or
        /// anything at a separator's, is refused.
        #[test]
        fn parses_what_it_formats_and_refuses_any_edit(
            micros in MICROS_MIN..=MICROS_MAX,
            at in 0usize..27,
            byte in proptest::prelude::any::<u8>(),
        ) {
            let ts = Timestamp::from_unix_micros(micros);
            let text = ts.to_string();
            proptest::prop_assert_eq!(Timestamp::parse(&text), Ok(ts));
            let mut edited = text.clone().into_bytes();
            edited[at] = byte;
            if let Ok(edited) = String::from_utf8(edited) {
                let digit_place = !matches!(at, 4 | 7 | 10 | 13 | 16 | 19 | 26);
                if edited != text && !(digit_place && byte.is_ascii_digit()) {
                    proptest::prop_assert!(Timestamp::parse(&edited).is_err(), "{}", edited);
                }
            }
        }
    }

    #[test]
    fn rejects_other_spellings() {
        for bad in [
            "2026-02-10T09:00:00Z",
            "2026-02-10T09:00:00.123456+00:00",
            "2026-02-30T09:00:00.000000Z",
            "2025-02-29T09:00:00.000000Z",
            "2026-02-10 09:00:00.000000Z",
            "2026-02-10T24:00:00.000000Z",
            "2026-02-10T09:00:60.000000Z",
            "+026-02-10T09:00:00.000000Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }
}
