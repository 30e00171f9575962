//! Raw records from JSON objects, shared by every source kind that reads JSON.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// The raw row of one NDJSON line: the mapped fields' values read straight
/// from the text, as [`row_from_object`] would give them for the parsed
/// object, without building the object (unmapped fields are only skipped).
/// A line that is not a JSON object, or not JSON, is a malformed row.
pub(super) fn row_from_json_line(
    fields: &[String],
    text: &str,
    position: String,
    drift: &mut Drift,
    presence: &mut Presence,
) -> RawRow {
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = Wanted {
        fields,
        drift,
        presence,
    };
    let read = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match read {
        Ok(Some(values)) => RawRow {
            position,
            values,
            original: text.to_string(),
            malformed: None,
        },
        Ok(None) => malformed_row(
            fields,
            position,
            text.to_string(),
            "not a JSON object".into(),
        ),
        Err(e) => malformed_row(
            fields,
            position,
            text.to_string(),
            format!("malformed JSON: {e}"),
        ),
    }
}

/// Reads a JSON value: an object's mapped fields, `None` for anything else.
struct Wanted<'a> {
    fields: &'a [String],
    drift: &'a mut Drift,
    presence: &'a mut Presence,
}

impl<'de> DeserializeSeed<'de> for Wanted<'_> {
    type Value = Option<Vec<Option<String>>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Wanted<'_> {
    type Value = Option<Vec<Option<String>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = vec![None; self.fields.len()];
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match self.fields.iter().position(|f| *f == key) {
                Some(i) => {
                    self.presence.0[i] = true;
                    values[i] = map.next_value::<Text>()?.0;
                }
                None => {
                    self.drift.note_unmapped(&key);
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(values))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        // Parsed, not skipped: nesting beyond serde_json's recursion limit
        // is refused as malformed, as for any parsed value.
        Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// An object key, borrowed from the line unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A field's value as [`json_text`] gives it: strings as they are, null as
/// `None`, other values in their JSON form.
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Some(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(json_text(&Value::from(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(json_text(&Value::from(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(json_text(&Value::from(v))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(json_text(&Value::from(v))))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let v = Value::deserialize(MapAccessDeserializer::new(map))?;
                Ok(Text(json_text(&v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let v = Value::deserialize(SeqAccessDeserializer::new(seq))?;
                Ok(Text(json_text(&v)))
            }
        }
        d.deserialize_any(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streaming read gives what parsing the whole object gives.
    #[test]
    fn a_line_reads_as_its_parsed_object() {
        let fields: Vec<String> = ["a", "b", "c", "d", "e", "f", "missing"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let lines: [&str; 9] = [
            r#"{"a":"x","b":1,"c":1.50,"d":null,"e":{"k":[1, 2]},"f":true,"z":"unmapped"}"#,
            r#"{"a":"\u00e9\"q","a":"last wins","b":-7,"c":1e3,"d":[],"e\u0041":1}"#,
            r#"{"b":18446744073709551615,"c":0.000000000000000000000000000000000000000001}"#,
            r#"[1,2]"#,
            r#""text""#,
            r#"{"a":1,}"#,
            r#"{"a":1} trailing"#,
            &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            r#"{"a":"#,
        ];
        for line in lines {
            let (mut d1, mut d2) = (Drift::default(), Drift::default());
            let (mut p1, mut p2) = (Presence::new(&fields), Presence::new(&fields));
            let expected = match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(o)) => {
                    row_from_object(&fields, &o, "p".into(), line.into(), &mut d1, &mut p1)
                }
                Ok(_) => {
                    malformed_row(&fields, "p".into(), line.into(), "not a JSON object".into())
                }
                Err(e) => malformed_row(
                    &fields,
                    "p".into(),
                    line.into(),
                    format!("malformed JSON: {e}"),
                ),
            };
            let got = row_from_json_line(&fields, line, "p".into(), &mut d2, &mut p2);
            assert_eq!(got, expected, "{line}");
            if expected.malformed.is_none() {
                assert_eq!(d1, d2, "{line}");
                assert_eq!(p1.0, p2.0, "{line}");
            }
        }
    }
}
