//! Text to typed values: the date forms, amounts (万元 included), booleans
//! and numbers that departments deliver. Each parser says what it expected.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Asia::Shanghai;

/// Parses a date in any delivered form: `2017年03月24日`, `2019-11-18`,
/// `2019-11-18 00:00:00`, `2019/11/18`, `20191118`, an RFC 3339 instant, or
/// epoch milliseconds (the date in Beijing time).
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let folded = fold_numerals(text.trim());
    let t = folded.trim();
    let expected = || {
        format!(
            "found {t:?}, expected a date (2017年03月24日, 2019-11-18, 2019-11-18 00:00:00 or epoch milliseconds)"
        )
    };
    if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
        if t.len() == 8 {
            return NaiveDate::parse_from_str(t, "%Y%m%d").map_err(|_| expected());
        }
        if (10..=13).contains(&t.len()) {
            let ms: i64 = t.parse().map_err(|_| expected())?;
            return Shanghai
                .timestamp_millis_opt(ms)
                .single()
                .map(|d| d.date_naive())
                .ok_or_else(expected);
        }
        return Err(expected());
    }
    if let Some(rest) = t.strip_suffix('日') {
        return NaiveDate::parse_from_str(rest, "%Y年%m月%d").map_err(|_| expected());
    }
    for format in ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, format) {
            return Ok(d);
        }
    }
    // Local date-times, as a form or an API writes them (ISO with `T`).
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, format) {
            return Ok(d.date());
        }
    }
    // An instant is the date it falls on in Beijing, as epoch milliseconds
    // are: RFC 3339, or an offset without its colon (`+0800`, as Java
    // formats instants).
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Shanghai).date_naive());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(t, format) {
            return Ok(d.with_timezone(&Shanghai).date_naive());
        }
    }
    Err(expected())
}

/// 1900-01-01: what government exports write for "no date" (the zero of
/// their date pickers). It is read as a missing value: NULL in a nullable
/// column, a `missing_value` quarantine in a required one.
pub const PLACEHOLDER_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// Parses an instant: RFC 3339, epoch milliseconds, or a local date-time
/// (Beijing time); returns epoch milliseconds.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let folded = fold_numerals(text.trim());
    let t = folded.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp_millis());
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && (10..=13).contains(&t.len()) {
        return t
            .parse()
            .map_err(|_| format!("found {t:?}, expected an instant"));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, format)
            && let Some(local) = Shanghai.from_local_datetime(&d).single()
        {
            return Ok(local.timestamp_millis());
        }
    }
    parse_date(t)
        .ok()
        .and_then(|d| {
            Shanghai
                .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                .single()
        })
        .map(|d| d.timestamp_millis())
        .ok_or_else(|| format!("found {t:?}, expected an instant (RFC 3339 or epoch milliseconds)"))
}

/// The numeral forms departments type besides ASCII: full-width digits,
/// signs, comma and point (`１，５００．００`, `－３`) and the minus sign
/// U+2212, folded to ASCII; everything else is kept as it is (and refused
/// by the parsers).
fn fold_numerals(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_ascii() {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| match c {
                '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
                '，' => ',',
                '．' => '.',
                '－' | '−' => '-',
                '＋' => '+',
                '　' => ' ',
                c => c,
            })
            .collect(),
    )
}

/// Whether the integer part of an amount groups its digits by thousands
/// when it holds commas: `1,500` and `12,345,678` do, `1,5`, `1,50,000`,
/// `,5` and `1,,500` do not.
fn grouped_by_thousands(int: &str) -> bool {
    let mut groups = int.split(',');
    let head = groups.next().unwrap_or_default();
    (1..=3).contains(&head.len()) && groups.all(|g| g.len() == 3)
}

/// Parses a decimal amount exactly into an integer of `scale` decimal
/// places, after multiplying by `factor` (10,000 for 万元). Thousands
/// separators are accepted only where they group thousands (`12,345.67`,
/// not `1,5`); full-width digits and signs are read as ASCII; exponents and
/// more decimals than fit are not accepted.
pub fn parse_decimal(text: &str, factor: i64, scale: i8) -> Result<i128, String> {
    let folded = fold_numerals(text.trim());
    let t = folded.trim();
    let expected = || format!("found {:?}, expected a decimal amount", text.trim());
    let (negative, signed) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = signed.split_once('.').unwrap_or((signed, ""));
    if int.contains(',') && !grouped_by_thousands(int) {
        return Err(format!(
            "found {:?}, expected a decimal amount (a comma only between groups of three digits, as in 12,345.67)",
            text.trim()
        ));
    }
    let int: String = int.chars().filter(|c| *c != ',').collect();
    let (int, frac) = (int.as_str(), frac);
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(expected());
    }
    // value = int.frac × factor, at `scale` places: all in integers.
    let frac_places = frac.len() as u32;
    let all_digits = format!("{int}{frac}");
    let significant = all_digits.trim_start_matches('0');
    let mantissa: i128 = if significant.is_empty() {
        0
    } else {
        significant.parse().map_err(|_| expected())?
    };
    let scaled = mantissa
        .checked_mul(i128::from(factor))
        .ok_or_else(expected)?;
    let scale = u32::try_from(scale).map_err(|_| expected())?;
    let value = if scale >= frac_places {
        scaled
            .checked_mul(
                10i128
                    .checked_pow(scale - frac_places)
                    .ok_or_else(expected)?,
            )
            .ok_or_else(expected)?
    } else {
        // More places than an i128 power of ten holds: only zeros fit.
        let Some(divisor) = 10i128.checked_pow(frac_places - scale) else {
            return if scaled == 0 {
                Ok(0)
            } else {
                Err(format!(
                    "found {:?}, expected at most {scale} decimal places (in yuan)",
                    text.trim()
                ))
            };
        };
        if scaled % divisor != 0 {
            return Err(format!(
                "found {:?}, expected at most {scale} decimal places (in yuan)",
                text.trim()
            ));
        }
        scaled / divisor
    };
    Ok(if negative { -value } else { value })
}

/// Parses a yes/no: 是/否, true/false, 1/0, Y/N, yes/no.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "是" | "true" | "1" | "y" | "yes" | "t" => Ok(true),
        "否" | "false" | "0" | "n" | "no" | "f" => Ok(false),
        other => Err(format!(
            "found {other:?}, expected 是/否, true/false or 1/0"
        )),
    }
}

/// Parses an integer; a whole number written with `.0` is accepted, and
/// full-width digits are read as ASCII.
pub fn parse_int(text: &str) -> Result<i64, String> {
    let folded = fold_numerals(text.trim());
    let t = folded.trim();
    t.parse::<i64>()
        .or_else(|_| match t.strip_suffix(".0") {
            Some(whole) => whole.parse::<i64>(),
            None => t.parse::<i64>(),
        })
        .map_err(|_| format!("found {t:?}, expected a whole number"))
}

/// Parses a finite floating-point number; full-width digits are read as
/// ASCII.
pub fn parse_float(text: &str) -> Result<f64, String> {
    let folded = fold_numerals(text.trim());
    let t = folded.trim();
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("found {t:?}, expected a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn every_delivered_date_form() {
        assert_eq!(parse_date("2017年03月24日"), Ok(d(2017, 3, 24)));
        assert_eq!(parse_date("2019-11-18 00:00:00"), Ok(d(2019, 11, 18)));
        assert_eq!(parse_date(" 2019-11-18 "), Ok(d(2019, 11, 18)));
        // Midnight in Beijing is 16:00 UTC the day before.
        assert_eq!(parse_date("1574006400000"), Ok(d(2019, 11, 18)));
        assert_eq!(parse_date("20191118"), Ok(d(2019, 11, 18)));
        // ISO date-times from APIs: local, or an instant read in Beijing.
        assert_eq!(parse_date("2026-02-25T09:00:00"), Ok(d(2026, 2, 25)));
        assert_eq!(parse_date("2026-02-25T09:00:00.000"), Ok(d(2026, 2, 25)));
        assert_eq!(parse_date("2025-12-31T17:30:00Z"), Ok(d(2026, 1, 1)));
        assert_eq!(
            parse_date("2026-08-19T10:30:00.000+0800"),
            Ok(d(2026, 8, 19))
        );
        assert_eq!(parse_date("2025-12-31T20:00:00+0000"), Ok(d(2026, 1, 1)));
        assert_eq!(parse_date("2025-12-31T23:00:00+08:00"), Ok(d(2025, 12, 31)));
        assert!(parse_date("2026-02-30T09:00:00").is_err());
        assert!(parse_date("2019-13-01").is_err());
        assert!(parse_date("yesterday").is_err());
    }

    #[test]
    fn amounts_are_exact() {
        assert_eq!(parse_decimal("1,234.5", 1, 2), Ok(123_450));
        assert_eq!(parse_decimal("0.35", 10_000, 2), Ok(350_000));
        assert_eq!(parse_decimal("5", 10_000, 2), Ok(5_000_000));
        assert_eq!(parse_decimal("-2.00", 1, 2), Ok(-200));
        assert!(parse_decimal("1.005", 1, 2).is_err());
        assert!(parse_decimal("1e5", 1, 2).is_err());
        assert!(parse_decimal("", 1, 2).is_err());
        assert_eq!(parse_decimal("0.00", 1, 2), Ok(0));
    }

    #[test]
    fn commas_group_thousands_or_are_refused() {
        assert_eq!(parse_decimal("1,500", 10_000, 2), Ok(1_500_000_000));
        assert_eq!(parse_decimal("12,345,678.9", 1, 2), Ok(1_234_567_890));
        assert_eq!(parse_decimal("１，５００．５", 1, 2), Ok(150_050));
        assert_eq!(parse_decimal("－１", 1, 0), Ok(-1));
        for bad in [
            "1,5", "1,50,000", ",5", "1,,500", "1500,", "1234,567", "0.1,5", "1 500",
        ] {
            assert!(parse_decimal(bad, 10_000, 2).is_err(), "{bad}");
        }
        assert_eq!(parse_int("２０２４"), Ok(2024));
        assert_eq!(parse_date("２０１９-１１-１８"), Ok(d(2019, 11, 18)));
    }

    #[test]
    fn yes_and_no() {
        assert_eq!(parse_bool("是"), Ok(true));
        assert_eq!(parse_bool("否"), Ok(false));
        assert!(parse_bool("maybe").is_err());
    }
}
