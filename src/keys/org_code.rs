//! The 9-character organization code, GB 11714-1997 (printed `XXXXXXXX-X`).

use std::fmt;

const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

fn body_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        _ => None,
    }
}

/// The check character for an 8-character body, or `None` when the body
/// holds something other than digits and capital letters.
pub(crate) fn check_char(body: &[u8]) -> Option<u8> {
    if body.len() != 8 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in body.iter().zip(WEIGHTS) {
        sum += body_value(*c)? * w;
    }
    Some(match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        d => b'0' + d as u8,
    })
}

/// A valid 9-character organization code. It equals positions 9–17 of the
/// USCC issued later to the same organization, so it joins through the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgCode([u8; 9]);

impl OrgCode {
    /// Checks a normalized 9-character code; the error says what is wrong.
    pub fn parse(normalized: &str) -> Result<Self, String> {
        let bytes = normalized.as_bytes();
        if bytes.len() != 9 || !normalized.is_ascii() {
            return Err(format!("length {}, expected 9", normalized.chars().count()));
        }
        let Some(expected) = check_char(&bytes[..8]) else {
            return Err("organization code body must be digits and capital letters".into());
        };
        if expected != bytes[8] {
            return Err(format!(
                "organization code check character is {:?}, expected {:?}",
                char::from(bytes[8]),
                char::from(expected)
            ));
        }
        Ok(Self::from_checked(bytes))
    }

    pub(crate) fn from_checked(bytes: &[u8]) -> Self {
        let mut code = [0u8; 9];
        code.copy_from_slice(&bytes[..9]);
        Self(code)
    }

    /// The code as a string slice, without the printed hyphen.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_codes_of_valid_usccs_check() {
        // Positions 9–17 of 53330000501874064B.
        assert!(OrgCode::parse("501874064").is_ok());
        assert!(OrgCode::parse("501874065").is_err());
        assert!(OrgCode::parse("50187406").is_err());
    }
}
