//! The registry's codes in compact form: which USCCs are registered, and
//! which USCC each embedded organization code belongs to, so that feeds
//! delivering only the older 9-character code resolve through the registry.

use std::collections::{HashMap, HashSet};

/// Registered USCCs and their organization codes, 18 and 9 bytes each.
#[derive(Debug, Clone, Default)]
pub struct RegistryCodes {
    usccs: HashSet<[u8; 18]>,
    by_org_code: HashMap<[u8; 9], [u8; 18]>,
}

impl RegistryCodes {
    /// Adds a valid, normalized USCC; anything else is ignored.
    pub fn insert(&mut self, uscc: &str) {
        let Ok(code) = <[u8; 18]>::try_from(uscc.as_bytes()) else {
            return;
        };
        let mut org = [0u8; 9];
        org.copy_from_slice(&code[8..17]);
        self.usccs.insert(code);
        self.by_org_code.insert(org, code);
    }

    /// Whether a USCC is registered.
    pub fn contains(&self, uscc: &str) -> bool {
        <[u8; 18]>::try_from(uscc.as_bytes()).is_ok_and(|c| self.usccs.contains(&c))
    }

    /// The USCC of a normalized 9-character organization code.
    pub fn resolve_org_code(&self, org_code: &str) -> Option<String> {
        let key = <[u8; 9]>::try_from(org_code.as_bytes()).ok()?;
        let code = self.by_org_code.get(&key)?;
        String::from_utf8(code.to_vec()).ok()
    }

    /// Registered organizations.
    pub fn len(&self) -> usize {
        self.usccs.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.usccs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_codes_resolve_to_their_uscc() {
        let mut codes = RegistryCodes::default();
        codes.insert("52330106MJ00000269");
        codes.insert("not a code");
        assert_eq!(codes.len(), 1);
        assert!(codes.contains("52330106MJ00000269"));
        assert_eq!(
            codes.resolve_org_code("MJ0000026").as_deref(),
            Some("52330106MJ00000269")
        );
        assert_eq!(codes.resolve_org_code("MJ0000027"), None);
    }
}
