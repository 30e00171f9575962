//! Dates, instants, amounts (万元 included), booleans and numbers as the
//! departments deliver them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qinglian::validate::coerce::{
    parse_bool, parse_date, parse_decimal, parse_float, parse_int, parse_timestamp,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_date(&text);
    let _ = parse_timestamp(&text);
    let _ = parse_bool(&text);
    let _ = parse_int(&text);
    let _ = parse_float(&text);
    for (factor, scale) in [(1, 2), (10_000, 2), (1, 0), (10_000, 4)] {
        if let Ok(v) = parse_decimal(&text, factor, scale) {
            // Whatever is read fits an 18-digit decimal's range or is refused.
            let _ = v.checked_abs();
        }
    }
});
