//! Streams the elements of the array a JSON pointer names inside one JSON
//! document, one at a time, without holding the document in memory.
//!
//! An element nested deeper than [`RECORD_DEPTH`] is not built: the rest of
//! it is skipped (serde_json skips without recursing) and it is handed on
//! as [`Element::TooDeep`], so one such record is quarantined and the
//! records after it are still read. Anything that breaks the document's
//! syntax (a truncated string, bytes that are not UTF-8, `NaN`) leaves no
//! way to find where the next element starts: the document is refused.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// How deep a record inside a JSON document may nest (containers within
/// the record, the record itself counted): below serde_json's limit of 128
/// for the whole document, with room for the pointer's path.
pub(crate) const RECORD_DEPTH: usize = 100;

/// The first bytes of a too-deep record kept for quarantine.
const KEPT_OF_TOO_DEEP: usize = 1024;

/// One element of the record array.
#[derive(Debug, PartialEq)]
pub(crate) enum Element {
    /// The element, parsed.
    Record(Value),
    /// An element nested deeper than [`RECORD_DEPTH`]: its first KiB, as
    /// read up to the cut (the part too deep shown as `"…"`).
    TooDeep(String),
}

/// Calls `each` for every element of the array at `pointer` (RFC 6901,
/// `""` for the root). Returns whether the pointer was found.
pub(crate) fn for_each_at_pointer<R: Read>(
    reader: R,
    pointer: &str,
    each: &mut dyn FnMut(Element) -> Result<(), String>,
) -> Result<bool, serde_json::Error> {
    let path: Vec<String> = if pointer.is_empty() {
        Vec::new()
    } else {
        pointer
            .trim_start_matches('/')
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect()
    };
    let mut found = false;
    let mut de = serde_json::Deserializer::from_reader(reader);
    Navigate {
        path: &path,
        each,
        found: &mut found,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

struct Navigate<'a, 'f> {
    path: &'a [String],
    each: &'f mut dyn FnMut(Element) -> Result<(), String>,
    found: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for Navigate<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            *self.found = true;
            d.deserialize_seq(Elements { each: self.each })
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Navigate<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object or array containing /{}", self.path.join("/"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (head, rest) = (&self.path[0], &self.path[1..]);
        let mut seed = Some((rest, self.each, self.found));
        while let Some(key) = map.next_key::<String>()? {
            if key == *head
                && let Some((path, each, found)) = seed.take()
            {
                map.next_value_seed(Navigate { path, each, found })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let wanted: Option<usize> = self.path[0].parse().ok();
        let rest = &self.path[1..];
        let mut seed = Some((rest, self.each, self.found));
        let mut index = 0usize;
        loop {
            if Some(index) == wanted
                && let Some((path, each, found)) = seed.take()
            {
                if seq
                    .next_element_seed(Navigate { path, each, found })?
                    .is_none()
                {
                    break;
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            index += 1;
        }
        Ok(())
    }

    // Scalars on the way: the pointer does not lead anywhere.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

struct Elements<'f> {
    each: &'f mut dyn FnMut(Element) -> Result<(), String>,
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let mut too_deep = false;
            let seed = Bounded {
                depth: RECORD_DEPTH,
                too_deep: &mut too_deep,
            };
            let Some(v) = seq.next_element_seed(seed)? else {
                return Ok(());
            };
            let element = if too_deep {
                let text = v.to_string();
                let mut cut = text.len().min(KEPT_OF_TOO_DEEP);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                Element::TooDeep(format!("{}…", &text[..cut]))
            } else {
                Element::Record(v)
            };
            (self.each)(element).map_err(de::Error::custom)?;
        }
    }
}

/// Builds a value as serde_json's `Value` does, at most `depth` containers
/// deep; a container below that is skipped whole and marks `too_deep`.
struct Bounded<'a> {
    depth: usize,
    too_deep: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth == 0 {
            *self.too_deep = true;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Value::String("…".into()));
        }
        let mut out = Vec::new();
        loop {
            let seed = Bounded {
                depth: self.depth - 1,
                too_deep: &mut *self.too_deep,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth == 0 {
            *self.too_deep = true;
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Value::String("…".into()));
        }
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let seed = Bounded {
                depth: self.depth - 1,
                too_deep: &mut *self.too_deep,
            };
            let v = map.next_value_seed(seed)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(doc: &str, pointer: &str) -> Result<(bool, Vec<Value>), String> {
        let mut out = Vec::new();
        let found = for_each_at_pointer(doc.as_bytes(), pointer, &mut |e| {
            out.push(match e {
                Element::Record(v) => v,
                Element::TooDeep(text) => Value::String(format!("too deep: {text}")),
            });
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok((found, out))
    }

    #[test]
    fn streams_the_array_at_the_pointer() {
        let doc = r#"{"code":0,"result":{"total":2,"records":[{"a":1},{"a":2}]},"tail":[1]}"#;
        let (found, rows) = collect(doc, "/result/records").expect("parse");
        assert!(found);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["a"], 2);
        let (found, rows) = collect("[[0],[{\"x\":1}]]", "/1").expect("parse");
        assert!(found);
        assert_eq!(rows.len(), 1);
        assert!(!collect(doc, "/result/none").expect("parse").0);
        assert!(collect(r#"{"result":{"records":[{"a":1},{"a""#, "/result/records").is_err());
        assert!(collect(r#"{"result":{"records":{"a":1}}}"#, "/result/records").is_err());
    }

    #[test]
    fn a_record_too_deep_is_handed_on_and_the_rest_read() {
        let deep = format!(
            "{{\"id\":2,\"x\":{}1{}}}",
            "[".repeat(5_000),
            "]".repeat(5_000)
        );
        let just = format!(
            "{{\"id\":3,\"x\":{}1{}}}",
            "[".repeat(RECORD_DEPTH - 1),
            "]".repeat(RECORD_DEPTH - 1)
        );
        let doc = format!(r#"{{"result":{{"records":[{{"id":1}},{deep},{just},{{"id":4}}]}}}}"#);
        let (found, rows) = collect(&doc, "/result/records").expect("parse");
        assert!(found);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0]["id"], 1);
        let kept = rows[1].as_str().unwrap_or_default();
        assert!(kept.starts_with("too deep: {\"id\":2,\"x\":[[[["), "{kept}");
        assert!(kept.len() < 1100 + 12, "{}", kept.len());
        assert_eq!(rows[2]["id"], 3);
        assert_eq!(rows[2], serde_json::from_str::<Value>(&just).expect("just"));
        assert_eq!(rows[3]["id"], 4);
        // Broken syntax inside one record still refuses the document.
        for broken in [
            r#"{"records":[{"a":1},{"a":"open}]}"#,
            r#"{"records":[{"a":1},{"a":NaN},{"a":2}]}"#,
        ] {
            assert!(collect(broken, "/records").is_err(), "{broken}");
        }
    }
}
