//! The 15-digit business registration number (工商注册号) that predates the USCC.

/// A valid 15-digit registration number (ISO 7064 MOD 11,10 over the first 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegNo([u8; 15]);

/// ISO 7064 MOD 11,10: the check digit for 14 digits, `None` if not all digits.
fn check_digit(first14: &[u8]) -> Option<u8> {
    let mut p = 10u32;
    for c in first14 {
        if !c.is_ascii_digit() {
            return None;
        }
        let mut s = (p + u32::from(c - b'0')) % 10;
        if s == 0 {
            s = 10;
        }
        p = (s * 2) % 11;
    }
    // The check digit c makes (p + c) mod 10 == 1.
    Some(b'0' + ((11 - p) % 10) as u8)
}

impl RegNo {
    /// Checks a normalized 15-character number; the error says what is wrong.
    pub fn parse(normalized: &str) -> Result<Self, String> {
        let bytes = normalized.as_bytes();
        if bytes.len() != 15 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err("registration number must be 15 digits".into());
        }
        let expected = check_digit(&bytes[..14]).unwrap_or(b'?');
        if expected != bytes[14] {
            return Err(format!(
                "registration number check digit is {:?}, expected {:?}",
                char::from(bytes[14]),
                char::from(expected)
            ));
        }
        let mut n = [0u8; 15];
        n.copy_from_slice(bytes);
        Ok(Self(n))
    }

    /// The number as a string slice.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The digits, for building synthetic numbers in the generator.
    pub fn with_check_digit(first14: &str) -> Option<String> {
        let d = check_digit(first14.as_bytes())?;
        (first14.len() == 14).then(|| format!("{first14}{}", char::from(d)))
    }
}
