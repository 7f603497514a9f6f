//! Why a PostgreSQL operation did not succeed, and what the caller is told.

use deadpool_postgres::{HookError, PoolError};
use tokio_postgres::error::SqlState;

use crate::registry::RegistryError;

/// How one attempt at an operation ended, before it is turned into a [`RegistryError`].
#[derive(Debug)]
pub(super) enum Failure {
    /// The registry refused the operation (`NotFound`, `AlreadyExists`, …): final.
    Refused(RegistryError),
    /// A concurrent transaction took the point first (an insert that found the row taken):
    /// running the operation again sees it and decides anew.
    Raced,
    /// The database answered with an error or the connection failed.
    Database(tokio_postgres::Error),
    /// `COMMIT` failed: if the connection broke, the transaction may or may not have been
    /// committed, so it is never run again.
    Commit(tokio_postgres::Error),
    /// No connection could be had from the pool.
    Pool(PoolError),
}

impl From<RegistryError> for Failure {
    fn from(error: RegistryError) -> Self {
        Failure::Refused(error)
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Self {
        Failure::Database(error)
    }
}

impl From<PoolError> for Failure {
    fn from(error: PoolError) -> Self {
        Failure::Pool(error)
    }
}

impl Failure {
    /// Whether running the whole operation again may succeed without changing its meaning:
    /// a race lost on insert, a serialization failure (40001) or a deadlock (40P01) — in each
    /// case the transaction was rolled back entirely.
    pub(super) fn is_retryable(&self) -> bool {
        match self {
            Failure::Raced => true,
            Failure::Database(error) => matches!(
                error.code(),
                Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
            ),
            _ => false,
        }
    }

    /// Whether the connection broke before anything was committed (a session the server ended,
    /// a closed socket): the same operation on another pooled connection may succeed. Pool
    /// errors are not included: the pool has already waited for a connection.
    pub(super) fn is_broken_connection(&self) -> bool {
        matches!(self, Failure::Database(error) if transient(error))
    }

    /// Whether the backend is unreachable for now rather than refusing: a closed connection,
    /// a server shutting down or terminating our session, a pool timeout.
    pub(super) fn is_transient(&self) -> bool {
        match self {
            Failure::Database(error) | Failure::Commit(error) => transient(error),
            Failure::Pool(
                PoolError::Backend(error) | PoolError::PostCreateHook(HookError::Backend(error)),
            ) => transient(error),
            Failure::Pool(PoolError::Timeout(_)) | Failure::Pool(PoolError::Closed) => true,
            _ => false,
        }
    }

    /// The error the caller gets, saying what was being done. Neither tokio-postgres's nor
    /// deadpool's messages include the connection's password.
    pub(super) fn into_error(self, doing: &str) -> RegistryError {
        let transient = self.is_transient();
        let message = match self {
            Failure::Refused(error) => return error,
            Failure::Raced => format!("{doing}: still contended after retrying"),
            Failure::Database(error) => format!("{doing}: {}", describe(&error)),
            Failure::Commit(error) => format!("{doing}: committing: {}", describe(&error)),
            Failure::Pool(error) => format!("{doing}: no database connection: {error}"),
        };
        if transient {
            RegistryError::Unavailable(message)
        } else {
            RegistryError::Storage(message)
        }
    }
}

/// A database error with the server's message when there is one.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

fn transient(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        // Class 08: connection exceptions; 57P01–03: the server is shutting down or ended our
        // session (pg_terminate_backend); 53300: too many connections.
        Some(code) => {
            code.code().starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS
        }
        // No SQLSTATE: the error came from the socket, not from the server.
        None => std::error::Error::source(error)
            .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some()),
    }
}
