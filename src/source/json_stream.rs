//! Streams the elements of the array a JSON pointer names inside one JSON
//! document, one at a time, without holding the document in memory.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Calls `each` for every element of the array at `pointer` (RFC 6901,
/// `""` for the root). Returns whether the pointer was found.
pub(crate) fn for_each_at_pointer<R: Read>(
    reader: R,
    pointer: &str,
    each: &mut dyn FnMut(Value) -> Result<(), String>,
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
    each: &'f mut dyn FnMut(Value) -> Result<(), String>,
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
    each: &'f mut dyn FnMut(Value) -> Result<(), String>,
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            (self.each)(v).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(doc: &str, pointer: &str) -> Result<(bool, Vec<Value>), String> {
        let mut out = Vec::new();
        let found = for_each_at_pointer(doc.as_bytes(), pointer, &mut |v| {
            out.push(v);
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
}
