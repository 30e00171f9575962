//! The key library as SQL scalar functions over whole Arrow string arrays,
//! so source mappings and risk rules classify keys exactly as Rust does.
//!
//! | function | returns |
//! |---|---|
//! | `uscc_normalize(key)` | the key after NFKC, separators removed, upper case; NULL for NULL |
//! | `uscc_class(key)` | the [`KeyClass`] name: `valid`, `bad_checksum`, … |
//! | `uscc_of(key)` | the USCC when the key is a valid one, else NULL |
//! | `uscc_org_code(key)` | the 9-character organization code of a valid USCC or org code, else NULL |
//! | `name_normalize(name)` | the organization name folded for matching ([`normalize_name`]) |

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use super::classify::{KeyClass, classify};
use super::normalize::{normalize_into, normalize_name};
use super::org_code::OrgCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum KeyFunction {
    Normalize,
    Class,
    UsccOf,
    OrgCodeOf,
    NameNormalize,
}

impl KeyFunction {
    const ALL: [KeyFunction; 5] = [
        KeyFunction::Normalize,
        KeyFunction::Class,
        KeyFunction::UsccOf,
        KeyFunction::OrgCodeOf,
        KeyFunction::NameNormalize,
    ];

    fn name(self) -> &'static str {
        match self {
            KeyFunction::Normalize => "uscc_normalize",
            KeyFunction::Class => "uscc_class",
            KeyFunction::UsccOf => "uscc_of",
            KeyFunction::OrgCodeOf => "uscc_org_code",
            KeyFunction::NameNormalize => "name_normalize",
        }
    }

    /// Appends the function's value for one non-null input to `out` (a
    /// value or a NULL). `scratch` avoids an allocation per row.
    fn eval(self, raw: &str, scratch: &mut String, out: &mut StringBuilder) {
        match self {
            KeyFunction::Normalize => {
                normalize_into(raw, scratch);
                out.append_value(scratch.as_str());
            }
            KeyFunction::Class => out.append_value(classify(raw).class.as_str()),
            KeyFunction::UsccOf => {
                let check = classify(raw);
                if check.class == KeyClass::Valid {
                    out.append_value(&check.normalized);
                } else {
                    out.append_null();
                }
            }
            KeyFunction::OrgCodeOf => {
                let check = classify(raw);
                match check.class {
                    KeyClass::Valid => out.append_value(&check.normalized[8..17]),
                    KeyClass::OrgCodeOnly if OrgCode::parse(&check.normalized).is_ok() => {
                        out.append_value(&check.normalized)
                    }
                    _ => out.append_null(),
                }
            }
            KeyFunction::NameNormalize => out.append_value(normalize_name(raw)),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct KeyUdf {
    function: KeyFunction,
    signature: Signature,
}

impl ScalarUDFImpl for KeyUdf {
    fn name(&self) -> &str {
        self.function.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("{} takes one argument", self.function.name());
        };
        let array = arg.to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(apply(self.function, &array)?))
    }
}

fn apply(function: KeyFunction, array: &ArrayRef) -> Result<ArrayRef> {
    let mut out = StringBuilder::with_capacity(array.len(), array.len() * 18);
    let mut scratch = String::with_capacity(32);
    let mut each = |value: Option<&str>| match value {
        Some(raw) => function.eval(raw, &mut scratch, &mut out),
        None => out.append_null(),
    };
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().for_each(&mut each),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().for_each(&mut each),
        DataType::Utf8View => array.as_string_view().iter().for_each(&mut each),
        DataType::Null => (0..array.len()).for_each(|_| each(None)),
        other => return exec_err!("{} expects a string, got {other}", function.name()),
    }
    Ok(Arc::new(out.finish()))
}

/// `uscc_class` over one array, outside a query: the benchmark's entry.
pub fn classes(array: &ArrayRef) -> ArrayRef {
    apply(KeyFunction::Class, array)
        .unwrap_or_else(|_| Arc::new(StringArray::new_null(array.len())))
}

/// The key functions as DataFusion UDFs.
pub fn functions() -> Vec<ScalarUDF> {
    KeyFunction::ALL
        .into_iter()
        .map(|function| {
            ScalarUDF::from(KeyUdf {
                function,
                signature: Signature::string(1, Volatility::Immutable),
            })
        })
        .collect()
}

/// Registers every key function with a session.
pub fn register(ctx: &SessionContext) {
    for f in functions() {
        ctx.register_udf(f);
    }
}
