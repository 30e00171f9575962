//! What a quarantined record may keep of its original outside the raw
//! landing area (the warehouse's quarantine files, the published
//! `quarantine` dataset and whatever copies it).
//!
//! - In every feed, an 18-character resident identity number (GB 11643:
//!   17 digits, a check character that verifies and a plausible birth
//!   date) anywhere in the original or the message is replaced by its keyed
//!   person hash (`***` without a key). One number in about 340 also passes
//!   the USCC checks: it is treated as an identity number all the same
//!   (a quarantined row may lose a code; no person is shown).
//! - A *personal feed* is one whose mapping hashes a field (`hash = true`:
//!   persons, police). Its original keeps the organization key, the
//!   organization name and the record-id fields as delivered (with the
//!   hashed values scrubbed out of them), every hashed field as its keyed
//!   hash (the value the canonical column would hold), and `***` for every
//!   other value; a record that cannot be read field by field (a CSV row
//!   with the wrong number of fields or bytes that are not text, a line
//!   that is not a JSON object) keeps its field names only, every value
//!   `***`, or is `"***"` as a whole. Its message names the field and the
//!   reason, never a value.

use std::borrow::Cow;

use serde_json::Value;

/// The value every withheld field gets.
pub const WITHHELD: &str = "***";

/// Weights of GB 11643's ISO 7064 MOD 11-2 check character.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each remainder.
const CHECK: &[u8; 11] = b"10X98765432";

/// An 18-character resident identity number: 17 digits, a check character
/// that verifies, a birth date that exists (years 1800–2199). A string
/// that is also a valid USCC counts: privacy comes first.
pub fn is_identity_number(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    if b[17].to_ascii_uppercase() != CHECK[(sum % 11) as usize] {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<u32>().ok());
    let (Some(y), Some(m), Some(d)) = (num(6..10), num(10..12), num(12..14)) else {
        return false;
    };
    (1800..2200).contains(&y) && chrono::NaiveDate::from_ymd_opt(y as i32, m, d).is_some()
}

/// Shaped like a resident identity number: 17 digits, a digit or `X`, a
/// birth date that exists. The check character is not required: a number
/// miskeyed by one digit is still a person's number (privacy comes first).
pub fn looks_like_identity_number(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 18
        || !b[..17].iter().all(u8::is_ascii_digit)
        || !(b[17].is_ascii_digit() || matches!(b[17], b'X' | b'x'))
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<u32>().ok());
    let (Some(y), Some(m), Some(d)) = (num(6..10), num(10..12), num(12..14)) else {
        return false;
    };
    (1800..2200).contains(&y) && chrono::NaiveDate::from_ymd_opt(y as i32, m, d).is_some()
}

/// `text` with every identity number in it (a run of 18 digits, or 17 and
/// an `X`, not inside a longer run of digits, shaped as
/// [`looks_like_identity_number`] says) replaced by `replace(number)`.
pub fn scrub_identity_numbers<'a>(text: &'a str, replace: &dyn Fn(&str) -> String) -> Cow<'a, str> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let end = match i - start {
            18 => i,
            17 if i < b.len() && matches!(b[i], b'X' | b'x') => i + 1,
            _ => continue,
        };
        // Digits and X are ASCII: the slice is on character boundaries.
        let candidate = &text[start..end];
        if looks_like_identity_number(candidate) {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..start]);
            o.push_str(&replace(candidate));
            copied = end;
        }
        i = end;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// What [`redact_original`] needs to know of a personal feed.
pub struct PersonalFields<'a> {
    /// Raw fields kept as delivered: organization key and name, record id.
    pub kept: &'a [&'a str],
    /// Raw fields replaced by their keyed hash.
    pub hashed: &'a [&'a str],
    /// Every raw field the mapping reads: a key outside them is data (a
    /// first data row read as the header, a name used as a JSON key) and is
    /// shown as its position, never as itself.
    pub mapped: &'a [&'a str],
}

/// The original of a quarantined record of a personal feed, redacted (see
/// the module documentation). `malformed` says the record could not be
/// read field by field; `clear` holds the values of its hashed fields as
/// read, scrubbed from the kept fields too; `hash` is the keyed person hash
/// (`None` without a key: hashed values are withheld).
pub fn redact_original(
    original: &str,
    malformed: bool,
    fields: &PersonalFields<'_>,
    clear: &[&str],
    hash: Option<&dyn Fn(&str) -> String>,
) -> String {
    let withheld = || Value::String(WITHHELD.to_string());
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(original) else {
        return withheld().to_string();
    };
    let hashed_value = |v: &Value| -> Value {
        let text = match v {
            Value::Null => return Value::Null,
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        };
        match hash {
            Some(h) if !text.is_empty() => Value::String(h(&text)),
            Some(_) => Value::String(String::new()),
            None => withheld(),
        }
    };
    let scrub = |s: &str| -> String {
        let mut s = s.to_string();
        for c in clear.iter().filter(|c| c.chars().count() >= 4) {
            let replacement = hash.map_or_else(|| WITHHELD.to_string(), |h| h(c));
            // The hash ignores case (an `x` check character is an `X`).
            let mut forms = vec![c.to_string(), c.to_uppercase(), c.to_lowercase()];
            forms.dedup();
            for form in forms {
                if s.contains(&form) {
                    s = s.replace(&form, &replacement);
                }
            }
        }
        s
    };
    let known = |k: &str| {
        fields.kept.contains(&k) || fields.hashed.contains(&k) || fields.mapped.contains(&k)
    };
    let redacted: serde_json::Map<String, Value> = map
        .into_iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let k = if known(&k) {
                k
            } else {
                format!("field {}", i + 1)
            };
            let v = if v.is_null() {
                Value::Null
            } else if malformed {
                withheld()
            } else if fields.hashed.contains(&k.as_str()) {
                hashed_value(&v)
            } else if fields.kept.contains(&k.as_str()) {
                match &v {
                    Value::String(s) => Value::String(scrub(s)),
                    Value::Number(_) | Value::Bool(_) => Value::String(scrub(&v.to_string())),
                    _ => withheld(),
                }
            } else {
                withheld()
            };
            (k, v)
        })
        .collect();
    Value::Object(redacted).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: &str) -> String {
        format!("<{}>", &n[..2])
    }

    #[test]
    fn identity_numbers_are_recognized_by_their_check_character() {
        assert!(is_identity_number("11010519491231002X"));
        assert!(is_identity_number("11010519491231002x"));
        assert!(!is_identity_number("110105194912310021"), "check fails");
        assert!(!is_identity_number("11010519491331002X"), "month 13");
        assert!(!is_identity_number("91330100MA27XL0E2K"));
        // Also a valid USCC: an identity number all the same.
        assert!(is_identity_number("513301198001015127"));
        assert_eq!(
            crate::keys::classify("513301198001015127").class,
            crate::keys::KeyClass::Valid
        );
    }

    #[test]
    fn numbers_are_scrubbed_wherever_they_stand() {
        let text = "a11010519491231002Xb 身份证11010519491231002X, 911010519491231002X";
        assert_eq!(
            scrub_identity_numbers(text, &tag),
            "a<11>b 身份证<11>, 911010519491231002X"
        );
        assert!(matches!(
            scrub_identity_numbers("no number", &tag),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_personal_original_keeps_keys_hashes_and_nothing_else() {
        let fields = PersonalFields {
            kept: &["code", "id"],
            hashed: &["pid"],
            mapped: &["code", "id", "pid", "name", "n", "x"],
        };
        let original = r#"{"code":"91330100MA27XL0E2K","id":"r1 11010519491231002X","pid":" 11010519491231002X ","name":"张三","n":3,"x":null}"#;
        let h = |s: &str| format!("h({s})");
        let out = redact_original(original, false, &fields, &["11010519491231002X"], Some(&h));
        let v: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["code"], "91330100MA27XL0E2K");
        assert_eq!(v["id"], "r1 h(11010519491231002X)");
        assert_eq!(v["pid"], "h(11010519491231002X)");
        assert_eq!(v["name"], WITHHELD);
        assert_eq!(v["n"], WITHHELD);
        assert!(v["x"].is_null());
        // A key that is not a field of the mapping (a name, a number read
        // as a header) is shown as its position.
        let keyed = r#"{"code":"C","张三":"x","11010519491231002X":1}"#;
        let out = redact_original(keyed, false, &fields, &[], Some(&h));
        assert!(!out.contains("张三") && !out.contains("1101"), "{out}");
        assert_eq!(out.matches("\"field ").count(), 2, "{out}");
        let malformed = redact_original(original, true, &fields, &[], Some(&h));
        assert!(!malformed.contains("1101"), "{malformed}");
        assert!(!malformed.contains("张三"), "{malformed}");
        assert_eq!(
            redact_original("11010519491231002X,张三", false, &fields, &[], Some(&h)),
            "\"***\""
        );
    }
}
