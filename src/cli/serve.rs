//! `qinglian serve`: the public lookup (一码通查); its arguments and its
//! work live in [`crate::serve`].

use super::shared::block_on;
use super::{CommandResult, Done, Failure};
use crate::serve::{ServeArgs, ServeError};

/// The exit an error of the lookup maps to.
pub(super) fn failure(e: ServeError) -> Failure {
    match e {
        ServeError::Config(m) => Failure::Usage(m),
        other => Failure::Failed(other.to_string()),
    }
}

/// Runs `serve` until SIGINT or SIGTERM.
pub(super) fn execute(args: ServeArgs) -> CommandResult {
    block_on(async move {
        crate::serve::execute(args).await.map_err(failure)?;
        Ok(Done::Ok)
    })
}
