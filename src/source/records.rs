//! Raw records from JSON objects, shared by every source kind that reads JSON.

use serde_json::Value;

use super::{Drift, RawRow};

/// A JSON object's field as text: strings as they are, other scalars in
/// their JSON form, null as `None`, objects and arrays as JSON text.
pub(super) fn json_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Which mapped fields at least one record of a file carried: a field no
/// record carries is schema drift (renamed or dropped upstream).
pub(super) struct Presence(Vec<bool>);

impl Presence {
    pub(super) fn new(fields: &[String]) -> Self {
        Self(vec![false; fields.len()])
    }

    pub(super) fn report(self, fields: &[String], records: u64, drift: &mut Drift) {
        if records == 0 {
            return;
        }
        for (f, seen) in fields.iter().zip(self.0) {
            if !seen {
                drift.missing_fields.insert(f.clone());
            }
        }
    }
}

pub(super) fn row_from_object(
    fields: &[String],
    object: &serde_json::Map<String, Value>,
    position: String,
    original: String,
    drift: &mut Drift,
    presence: &mut Presence,
) -> RawRow {
    for key in object.keys() {
        match fields.iter().position(|f| f == key) {
            Some(i) => presence.0[i] = true,
            None => drift.note_unmapped(key),
        }
    }
    RawRow {
        position,
        values: fields
            .iter()
            .map(|f| object.get(f).and_then(json_text))
            .collect(),
        original,
        malformed: None,
    }
}

/// A record that cannot be read field by field: validation quarantines it.
pub(super) fn malformed_row(
    fields: &[String],
    position: String,
    original: String,
    why: String,
) -> RawRow {
    RawRow {
        position,
        values: vec![None; fields.len()],
        original,
        malformed: Some(why),
    }
}
