//! The SDK's one error type: what a handler returns when it fails, and what the ABI glue
//! reports when a frame cannot be read or written (SPEC §11.1, §16).

use cosmic_space::{ParseError, ReflectedCore, StatusCode, SubstanceError, WaveError, WireError};

/// A `Result` whose error is the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a handler, a constructor or the ABI glue failed.
///
/// A handler returning `Err(error)` answers with [`Error::status`] (500 unless the error says
/// otherwise) and the error's message as the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A failure with a chosen status: `Error::status(StatusCode::BAD_REQUEST, "no name")`.
    #[error("{message}")]
    Status {
        /// The status the answer carries.
        status: StatusCode,
        /// What went wrong.
        message: String,
    },
    /// A failure described by a message (answered 500).
    #[error("{0}")]
    Message(String),
    /// A wave this mechtron sent was answered with a failure.
    #[error(transparent)]
    Wave(#[from] WaveError),
    /// A body was not of the kind asked for.
    #[error(transparent)]
    Substance(#[from] SubstanceError),
    /// A frame could not be encoded or decoded.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// Text (a point, a method) did not parse.
    #[error("{}", .0.message)]
    Parse(#[from] ParseError),
    /// A route variable's text does not convert into the type the handler takes (answered
    /// 400: the client wrote the path).
    #[error("route variable '{name}' = {value:?} is not a valid {expected}: {reason}")]
    Var {
        /// The variable.
        name: String,
        /// Its text, percent-decoded.
        value: String,
        /// The type asked for (`u64`).
        expected: String,
        /// Why it does not convert.
        reason: String,
    },
    /// A handler asked for a route variable its route does not capture (answered 500: the
    /// handler's mistake, not the client's).
    #[error("the route captured no variable '{name}'")]
    NoVar {
        /// The variable asked for.
        name: String,
    },
    /// The Details given to `mechtron_init` name no mechtron type (property `mechtron`).
    #[error("the particle's details carry no 'mechtron' property naming the mechtron type")]
    MissingMechtronName,
    /// The Details given to `mechtron_init` name a type this wasm does not hold.
    #[error("this wasm holds no mechtron named '{name}' (it holds: {known})")]
    UnknownMechtron {
        /// The name asked for.
        name: String,
        /// The names the wasm holds, comma-separated.
        known: String,
    },
}

impl Error {
    /// A failure answered with `status` and `message`.
    pub fn status(status: StatusCode, message: impl Into<String>) -> Error {
        Error::Status {
            status,
            message: message.into(),
        }
    }

    /// A failure answered 500 with `message`.
    pub fn msg(message: impl Into<String>) -> Error {
        Error::Message(message.into())
    }

    /// The status a handler's answer carries when it fails with this error.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Error::Status { status, .. } => *status,
            Error::Wave(WaveError::Failed { status, .. }) => *status,
            Error::Substance(_) | Error::Parse(_) | Error::Var { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::ERROR,
        }
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::Message(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::Message(message.to_string())
    }
}

impl From<Error> for ReflectedCore {
    /// The failure answer: the error's status, its message as the body.
    fn from(error: Error) -> ReflectedCore {
        ReflectedCore::error(error.status_code(), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_their_status() {
        assert_eq!(Error::msg("x").status_code(), StatusCode::ERROR);
        assert_eq!(
            Error::status(StatusCode::BAD_REQUEST, "no name").status_code(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(Error::from("boom").to_string(), "boom");
        let failed = Error::from(WaveError::Failed {
            status: StatusCode::FORBIDDEN,
            message: "denied".into(),
        });
        assert_eq!(failed.status_code(), StatusCode::FORBIDDEN);
        assert_eq!(Error::MissingMechtronName.status_code(), StatusCode::ERROR);
        let var = Error::Var {
            name: "id".into(),
            value: "abc".into(),
            expected: "u64".into(),
            reason: "invalid digit found in string".into(),
        };
        assert_eq!(var.status_code(), StatusCode::BAD_REQUEST);
        assert_eq!(
            var.to_string(),
            "route variable 'id' = \"abc\" is not a valid u64: invalid digit found in string"
        );
        let missing = Error::NoVar { name: "id".into() };
        assert_eq!(missing.status_code(), StatusCode::ERROR);
        assert_eq!(missing.to_string(), "the route captured no variable 'id'");
    }
}
