//! The crate's one error type.

use crate::access::{AccessDenied, LineageError};
use crate::kind::KindError;
use crate::point::PointError;
use crate::selector::HierarchyError;
use crate::syntax::ParseError;

/// Everything that can fail in `cosmic-space`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Some text did not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A point could not be built.
    #[error(transparent)]
    Point(#[from] PointError),
    /// A kind was refused.
    #[error(transparent)]
    Kind(#[from] KindError),
    /// A point hierarchy's kinds did not fit its point.
    #[error(transparent)]
    Hierarchy(#[from] HierarchyError),
    /// A lineage's owners did not fit its point.
    #[error(transparent)]
    Lineage(#[from] LineageError),
    /// An agent lacks a permission, a privilege or full access.
    #[error(transparent)]
    AccessDenied(#[from] AccessDenied),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
