//! The route's calendar day (`YYYY-MM-DD`) as the model sees it: local midnight in Unix ms
//! and whether it is a weekend. Pure; the device's UTC offset comes from the caller (the app's
//! web view knows the time zone).

use thiserror::Error;

/// The widest UTC offsets in use (UTC−12 to UTC+14), in minutes.
const MAX_OFFSET_MIN: i32 = 14 * 60;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DayError {
    #[error("route day {day:?} is not a YYYY-MM-DD date")]
    BadDay { day: String },
    #[error("UTC offset {minutes} min is outside -720..=840")]
    BadOffset { minutes: i32 },
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since the Unix epoch of `day`.
pub fn epoch_day(day: &str) -> Result<i64, DayError> {
    let bad = || DayError::BadDay {
        day: day.chars().take(40).collect(),
    };
    let parts: Vec<&str> = day.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d))
}

/// Unix ms of local midnight starting `day` at `utc_offset_min` (east of UTC is positive).
pub fn local_midnight_ms(day: &str, utc_offset_min: i32) -> Result<u64, DayError> {
    if !(-12 * 60..=MAX_OFFSET_MIN).contains(&utc_offset_min) {
        return Err(DayError::BadOffset {
            minutes: utc_offset_min,
        });
    }
    let ms = epoch_day(day)? * 86_400_000 - i64::from(utc_offset_min) * 60_000;
    Ok(ms.max(0) as u64)
}

/// Saturday or Sunday.
pub fn is_weekend(day: &str) -> Result<bool, DayError> {
    // 1970-01-01 was a Thursday; 0 = Sunday.
    let weekday = (epoch_day(day)? + 4).rem_euclid(7);
    Ok(weekday == 0 || weekday == 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(epoch_day("1970-01-01"), Ok(0));
        assert_eq!(epoch_day("2000-03-01"), Ok(11_017));
        assert_eq!(epoch_day("2026-11-23"), Ok(20_780));
        assert_eq!(is_weekend("2026-11-23"), Ok(false), "a Monday");
        assert_eq!(is_weekend("2026-11-21"), Ok(true), "a Saturday");
        assert_eq!(is_weekend("2026-11-22"), Ok(true), "a Sunday");
        assert_eq!(is_weekend("2026-11-27"), Ok(false), "a Friday");
    }

    #[test]
    fn midnight_moves_with_the_offset() {
        let utc = local_midnight_ms("2026-11-23", 0).expect("valid");
        assert_eq!(utc, 20_780 * 86_400_000);
        assert_eq!(local_midnight_ms("2026-11-23", 60), Ok(utc - 3_600_000));
        assert_eq!(
            local_midnight_ms("2026-11-23", -300),
            Ok(utc + 5 * 3_600_000)
        );
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        for day in [
            "",
            "2026-13-01",
            "2026-02-29",
            "26-11-23",
            "2026-11-23T00",
            "abcd-ef-gh",
        ] {
            assert!(
                matches!(epoch_day(day), Err(DayError::BadDay { .. })),
                "{day:?}"
            );
        }
        assert_eq!(epoch_day("2024-02-29"), Ok(19_782));
        assert_eq!(
            local_midnight_ms("2026-11-23", 900),
            Err(DayError::BadOffset { minutes: 900 })
        );
    }
}
