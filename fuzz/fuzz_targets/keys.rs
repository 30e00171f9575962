//! Organization keys: classification, normalization and decoding of any
//! text, and what holds for every valid code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qinglian::keys::{KeyClass, classify, normalize_name};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let check = classify(&text);
    let _ = normalize_name(&text);
    if check.class == KeyClass::Valid {
        // A valid code normalizes to itself and stays valid.
        let again = classify(&check.normalized);
        assert_eq!(again.class, KeyClass::Valid);
        assert_eq!(again.normalized, check.normalized);
    }
});
