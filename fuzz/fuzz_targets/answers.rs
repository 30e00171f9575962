//! The push's reading of the platform's answers: only a receipt naming the
//! batch's key and row count acknowledges it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qinglian::deliver::{Answer, read_answer};

fuzz_target!(|data: &[u8]| {
    let Some((status, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = 100 + u16::from_le_bytes(*status) % 500;
    if let Answer::Acknowledged { .. } =
        read_answer("nightly-20261128-changes-00001-k", 3, status, body)
    {
        let receipt: serde_json::Value = serde_json::from_slice(body).expect("a receipt is JSON");
        assert_eq!(
            receipt["idempotency_key"],
            "nightly-20261128-changes-00001-k"
        );
        assert_eq!(receipt["accepted_rows"], 3);
        assert!((200..300).contains(&status));
    }
});
