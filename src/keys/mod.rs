//! The key library: every identifier a feed may carry for an organization,
//! checked and classified the same way everywhere.
//!
//! Feeds identify organizations by the 18-character unified social credit
//! code ([`Uscc`], GB 32100-2015), by the 9-character organization code it
//! embeds ([`OrgCode`], GB 11714-1997), by the 15-digit business registration
//! number ([`RegNo`]), or by name alone. [`classify`] turns any raw key into a
//! [`KeyCheck`]: the normalized form, a [`KeyClass`] stored beside the key in
//! every canonical table, and, when the key is not valid, the [`KeyReason`].
//!
//! The same functions back the SQL scalar functions of [`udf`], so mappings,
//! rules and `qinglian uscc check` cannot disagree.

mod classify;
mod decode;
mod normalize;
mod org_code;
mod reg_no;
mod registry_codes;
pub mod udf;
mod uscc;

pub use classify::{KeyCheck, KeyClass, KeyReason, classify};
pub use decode::{Decoded, decode, division_name};
pub use normalize::{invisible_chars, is_invisible, normalize, normalize_into, normalize_name};
pub use org_code::OrgCode;
pub use reg_no::RegNo;
pub use registry_codes::RegistryCodes;
pub use uscc::{CHARSET, Uscc, UsccError, char_value, mod31_check_char};
