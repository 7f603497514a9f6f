//! The crate's one error type.

use crate::access::{AccessDenied, LineageError};
use crate::bind::FilterError;
use crate::kind::KindError;
use crate::mechtron::LimitError;
use crate::point::PointError;
use crate::selector::HierarchyError;
use crate::substance::SubstanceError;
use crate::syntax::ParseError;
use crate::wave::WaveError;
use crate::wire::WireError;

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
    /// A body was refused by a bind's substance filter.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// Mechtron limits out of bounds.
    #[error(transparent)]
    Limits(#[from] LimitError),
    /// A wave could not be built or answered.
    #[error(transparent)]
    Wave(#[from] WaveError),
    /// A substance could not be made or converted.
    #[error(transparent)]
    Substance(#[from] SubstanceError),
    /// A frame could not be encoded or decoded.
    #[error(transparent)]
    Wire(#[from] WireError),
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
