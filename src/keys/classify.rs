//! One raw key in, its class out: the decision every feed and rule shares.

use std::fmt;

use super::normalize::normalize_into;
use super::org_code::OrgCode;
use super::reg_no::RegNo;
use super::uscc::{Uscc, UsccError};

/// What kind of key a record carries, stored beside the key in every
/// canonical table (`key_class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyClass {
    /// A USCC passing both checks.
    Valid,
    /// USCC-shaped but wrong length, character set or mod-31 check.
    BadChecksum,
    /// Passes the mod-31 check but its embedded organization code does not.
    BadOrgCodeChecksum,
    /// Invalid as given, valid after replacing I/O/Z/S/V by 1/0/2/5/U: the
    /// repair is a suggestion, never applied silently.
    Repaired,
    /// A valid 9-character organization code and nothing better.
    OrgCodeOnly,
    /// A valid 15-digit registration number and nothing better.
    RegNoOnly,
    /// No code at all: only a name.
    NameOnly,
    /// Empty.
    Missing,
}

impl KeyClass {
    /// All classes, in the order of the data contract.
    pub const ALL: [KeyClass; 8] = [
        KeyClass::Valid,
        KeyClass::BadChecksum,
        KeyClass::BadOrgCodeChecksum,
        KeyClass::Repaired,
        KeyClass::OrgCodeOnly,
        KeyClass::RegNoOnly,
        KeyClass::NameOnly,
        KeyClass::Missing,
    ];

    /// The name stored in `key_class` columns.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyClass::Valid => "valid",
            KeyClass::BadChecksum => "bad_checksum",
            KeyClass::BadOrgCodeChecksum => "bad_org_code_checksum",
            KeyClass::Repaired => "repaired",
            KeyClass::OrgCodeOnly => "org_code_only",
            KeyClass::RegNoOnly => "reg_no_only",
            KeyClass::NameOnly => "name_only",
            KeyClass::Missing => "missing",
        }
    }
}

impl fmt::Display for KeyClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a key is not a valid USCC; `Display` is the message shown to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyReason {
    /// The USCC checks failed.
    Uscc(UsccError),
    /// A 9-character organization code failed its check.
    OrgCode(String),
    /// A 15-digit registration number failed its check.
    RegNo(String),
    /// The repair that would make the code valid.
    Repair {
        /// What was found after normalization.
        original: String,
    },
    /// Not a code: a name (or free text) was given.
    NotACode,
    /// Nothing was given.
    Empty,
}

impl fmt::Display for KeyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyReason::Uscc(e) => write!(f, "{e}"),
            KeyReason::OrgCode(e) | KeyReason::RegNo(e) => f.write_str(e),
            KeyReason::Repair { original } => write!(
                f,
                "{original} contains letters a USCC never has (I/O/Z/S/V); suggested repair in normalized"
            ),
            KeyReason::NotACode => f.write_str("not a code: kept as a name"),
            KeyReason::Empty => f.write_str("empty key"),
        }
    }
}

/// The outcome of classifying one raw key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    /// The key after normalization; for [`KeyClass::Repaired`], the suggestion.
    pub normalized: String,
    /// The class stored beside the key.
    pub class: KeyClass,
    /// Why the key is not a valid USCC (`None` when it is).
    pub reason: Option<KeyReason>,
}

impl KeyCheck {
    /// Whether the key is a valid USCC as given.
    pub fn is_valid(&self) -> bool {
        self.class == KeyClass::Valid
    }

    /// The valid USCC, when there is one.
    pub fn uscc(&self) -> Option<Uscc> {
        (self.class == KeyClass::Valid)
            .then(|| Uscc::parse(&self.normalized).ok())
            .flatten()
    }
}

/// Classifies any raw key a feed carries for an organization.
pub fn classify(raw: &str) -> KeyCheck {
    let mut normalized = String::with_capacity(raw.len());
    normalize_into(raw, &mut normalized);
    let class_and_reason = classify_normalized(&normalized);
    match class_and_reason {
        Classified::Plain(class, reason) => KeyCheck {
            normalized,
            class,
            reason,
        },
        Classified::Repaired(suggestion) => KeyCheck {
            reason: Some(KeyReason::Repair {
                original: normalized,
            }),
            normalized: suggestion,
            class: KeyClass::Repaired,
        },
    }
}

enum Classified {
    Plain(KeyClass, Option<KeyReason>),
    Repaired(String),
}

fn classify_normalized(n: &str) -> Classified {
    use Classified::Plain;
    if n.is_empty() {
        return Plain(KeyClass::Missing, Some(KeyReason::Empty));
    }
    // A code is ASCII letters and digits; anything else (Chinese text above
    // all) is a name.
    if !n.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Plain(KeyClass::NameOnly, Some(KeyReason::NotACode));
    }
    match n.len() {
        18 => classify_uscc(n),
        9 => match OrgCode::parse(n) {
            Ok(_) => Plain(KeyClass::OrgCodeOnly, None),
            Err(e) => Plain(KeyClass::BadOrgCodeChecksum, Some(KeyReason::OrgCode(e))),
        },
        15 if n.bytes().all(|b| b.is_ascii_digit()) => match RegNo::parse(n) {
            Ok(_) => Plain(KeyClass::RegNoOnly, None),
            Err(e) => Plain(KeyClass::BadChecksum, Some(KeyReason::RegNo(e))),
        },
        len => Plain(
            KeyClass::BadChecksum,
            Some(KeyReason::Uscc(UsccError::Length(len))),
        ),
    }
}

fn classify_uscc(n: &str) -> Classified {
    use Classified::Plain;
    match Uscc::parse(n) {
        Ok(_) => Plain(KeyClass::Valid, None),
        Err(UsccError::Character { .. }) => {
            let repaired: String = n
                .chars()
                .map(|c| match c {
                    'O' => '0',
                    'I' => '1',
                    'Z' => '2',
                    'S' => '5',
                    'V' => 'U',
                    c => c,
                })
                .collect();
            match Uscc::parse(&repaired) {
                Ok(_) if repaired != n => Classified::Repaired(repaired),
                _ => Plain(
                    KeyClass::BadChecksum,
                    Uscc::parse(n).err().map(KeyReason::Uscc),
                ),
            }
        }
        Err(e @ UsccError::OrgCodeChecksum { .. }) => {
            Plain(KeyClass::BadOrgCodeChecksum, Some(KeyReason::Uscc(e)))
        }
        Err(e) => Plain(KeyClass::BadChecksum, Some(KeyReason::Uscc(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let cases = [
            ("53330000501874064B", KeyClass::Valid),
            (" 53330000 501874064b ", KeyClass::Valid),
            ("91350100M000100Y4Z", KeyClass::BadChecksum),
            ("9111000012345678AU", KeyClass::BadOrgCodeChecksum),
            ("50187406-4", KeyClass::OrgCodeOnly),
            ("50187406-5", KeyClass::BadOrgCodeChecksum),
            ("330106000129004", KeyClass::RegNoOnly),
            ("330106000000000", KeyClass::BadChecksum),
            ("杭州市西湖区阳光公益服务中心", KeyClass::NameOnly),
            ("  ", KeyClass::Missing),
            ("", KeyClass::Missing),
            ("91330000MA27U0XX", KeyClass::BadChecksum),
        ];
        for (raw, class) in cases {
            assert_eq!(classify(raw).class, class, "{raw:?}");
        }
    }

    #[test]
    fn repair_is_a_flagged_suggestion() {
        // 53330000501874064B with its zeros typed as the letter O.
        let check = classify("5333OOOO5O1874O64B");
        assert_eq!(check.class, KeyClass::Repaired);
        assert_eq!(check.normalized, "53330000501874064B");
        assert!(!check.is_valid());
        assert_eq!(
            check.reason,
            Some(KeyReason::Repair {
                original: "5333OOOO5O1874O64B".into()
            })
        );
    }
}
