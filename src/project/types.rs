//! The readable type names of `schemas/*.toml`, converted to Arrow in one place.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// The type names a schema may use, for messages.
pub(crate) const TYPE_NAMES: &str =
    "string, int32, int64, float64, boolean, date, timestamp, decimal(P,S)";

/// Converts a schema type name to its Arrow type.
///
/// Money is `decimal(18,2)` (yuan), dates are `date` (a calendar date, no
/// zone), instants are `timestamp` (milliseconds, UTC).
pub fn arrow_type(name: &str) -> Result<DataType, String> {
    let name = name.trim();
    let t = match name {
        "string" | "utf8" => DataType::Utf8,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "float64" => DataType::Float64,
        "boolean" | "bool" => DataType::Boolean,
        "date" | "date32" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC"))),
        _ => return decimal(name),
    };
    Ok(t)
}

fn decimal(name: &str) -> Result<DataType, String> {
    let unknown = || format!("found type {name:?}, expected one of {TYPE_NAMES}");
    let args = name
        .strip_prefix("decimal(")
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(unknown)?;
    let (p, s) = args.split_once(',').ok_or_else(unknown)?;
    let p: u8 = p.trim().parse().map_err(|_| unknown())?;
    let s: i8 = s.trim().parse().map_err(|_| unknown())?;
    if p == 0 || p > 38 || s < 0 || s as u8 > p {
        return Err(format!(
            "found type {name:?}, expected decimal precision 1-38 and scale 0..=precision"
        ));
    }
    Ok(DataType::Decimal128(p, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_arrow() {
        assert_eq!(
            arrow_type("decimal(18, 2)"),
            Ok(DataType::Decimal128(18, 2))
        );
        assert_eq!(arrow_type("date"), Ok(DataType::Date32));
        assert!(arrow_type("strng").is_err());
        assert!(arrow_type("decimal(40,2)").is_err());
    }
}
