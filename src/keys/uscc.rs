//! The unified social credit code, GB 32100-2015.

use std::fmt;

use super::org_code::{self, OrgCode};

/// The 31 characters a USCC may contain; a character's value is its index.
/// I, O, Z, S and V are left out so they cannot be confused with 1, 0, 2, 5, U.
pub const CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights of positions 1–17: 3^(i−1) mod 31.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Lookup from an ASCII byte to its USCC value, 255 for bytes outside [`CHARSET`].
const VALUES: [u8; 256] = {
    let mut table = [255u8; 256];
    let mut i = 0;
    while i < CHARSET.len() {
        table[CHARSET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// The value of a USCC character, or `None` for a character outside [`CHARSET`].
pub fn char_value(c: u8) -> Option<u32> {
    match VALUES[c as usize] {
        255 => None,
        v => Some(u32::from(v)),
    }
}

/// The check character for the first 17 characters of a code, or `None` when
/// one of them is outside [`CHARSET`].
pub fn mod31_check_char(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.iter().zip(WEIGHTS) {
        sum += char_value(*c)? * w;
    }
    Some(CHARSET[((31 - sum % 31) % 31) as usize])
}

/// Why a normalized string is not a valid USCC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    /// Not 18 characters long.
    #[error("length {0}, expected 18")]
    Length(usize),
    /// A character outside the 31-character set.
    #[error("character {ch:?} at position {position} is not in the USCC character set")]
    Character {
        /// 1-based position.
        position: usize,
        /// The offending character.
        ch: char,
    },
    /// Positions 3–8 must be digits (an administrative division code).
    #[error("division code at positions 3-8 is {0:?}, expected six digits")]
    Division(String),
    /// The 18th character does not match the mod-31 check.
    #[error("check character is {found:?}, expected {expected:?}")]
    Checksum {
        /// The character found at position 18.
        found: char,
        /// The character the first 17 require.
        expected: char,
    },
    /// Positions 9–17 fail the GB 11714 organization-code check.
    #[error("embedded organization code check character is {found:?}, expected {expected:?}")]
    OrgCodeChecksum {
        /// The character found at position 17.
        found: char,
        /// The character positions 9–16 require.
        expected: char,
    },
}

/// A valid unified social credit code: 18 characters, both checks passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc([u8; 18]);

impl Uscc {
    /// Checks an already normalized code (see [`super::normalize`]).
    pub fn parse(normalized: &str) -> Result<Self, UsccError> {
        let bytes = normalized.as_bytes();
        if normalized.chars().count() != 18 {
            return Err(UsccError::Length(normalized.chars().count()));
        }
        if !normalized.is_ascii() {
            let (i, ch) = normalized
                .chars()
                .enumerate()
                .find(|(_, c)| !c.is_ascii())
                .unwrap_or((0, '?'));
            return Err(UsccError::Character {
                position: i + 1,
                ch,
            });
        }
        if let Some(i) = bytes.iter().position(|b| char_value(*b).is_none()) {
            return Err(UsccError::Character {
                position: i + 1,
                ch: char::from(bytes[i]),
            });
        }
        if !bytes[2..8].iter().all(u8::is_ascii_digit) {
            return Err(UsccError::Division(normalized[2..8].to_string()));
        }
        // Every byte is in CHARSET here, so the check character exists.
        let expected = mod31_check_char(&bytes[..17]).unwrap_or(b'?');
        if expected != bytes[17] {
            return Err(UsccError::Checksum {
                found: char::from(bytes[17]),
                expected: char::from(expected),
            });
        }
        let org_expected = org_code::check_char(&bytes[8..16]).unwrap_or(b'?');
        if org_expected != bytes[16] {
            return Err(UsccError::OrgCodeChecksum {
                found: char::from(bytes[16]),
                expected: char::from(org_expected),
            });
        }
        let mut code = [0u8; 18];
        code.copy_from_slice(bytes);
        Ok(Self(code))
    }

    /// The code as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII from CHARSET is ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Position 1: the registration authority (5 = civil affairs).
    pub fn authority(&self) -> char {
        char::from(self.0[0])
    }

    /// Positions 1–2: authority and organization type (`51`, `52`, `53` …).
    pub fn type_code(&self) -> &str {
        &self.as_str()[..2]
    }

    /// Positions 3–8: administrative division of the registering authority.
    pub fn division(&self) -> &str {
        &self.as_str()[2..8]
    }

    /// Positions 9–17: the embedded organization code.
    pub fn org_code(&self) -> OrgCode {
        OrgCode::from_checked(&self.0[8..17])
    }

    /// Whether the code was issued by civil affairs (authority 5), i.e. names
    /// a social organization.
    pub fn is_social_organization(&self) -> bool {
        self.0[0] == b'5'
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_of_domain_md() {
        assert!(Uscc::parse("91350100M000100Y43").is_ok());
        assert_eq!(
            Uscc::parse("91350100M000100Y4Z"),
            Err(UsccError::Character {
                position: 18,
                ch: 'Z'
            })
        );
        assert_eq!(
            Uscc::parse("91350100M000100Y44"),
            Err(UsccError::Checksum {
                found: '4',
                expected: '3'
            })
        );
    }

    #[test]
    fn both_checks_are_required() {
        assert!(matches!(
            Uscc::parse("9111000012345678AU"),
            Err(UsccError::OrgCodeChecksum { .. })
        ));
    }

    #[test]
    fn parts_decode() {
        let code = Uscc::parse("52330106MJ00000269").expect("valid");
        assert_eq!(code.authority(), '5');
        assert_eq!(code.type_code(), "52");
        assert_eq!(code.division(), "330106");
        assert_eq!(code.org_code().as_str(), "MJ0000026");
        assert!(code.is_social_organization());
    }
}
