//! [`Secret`]: a `Secret` particle (SPEC §17.3) as a mechtron uses it — `ctx.secret(point)`.
//!
//! Every call is a wave the mechtron sends as itself, checked in the Field like any other:
//! revealing needs `r` and the privilege `secret:reveal` on the secret, which only an explicit
//! grant to the mechtron gives (`grant secret:reveal on localhost:app:db-password to
//! localhost:app:worker`); setting and clearing need `w`. Each reveal is logged by the host
//! with the point and the mechtron, never the value — and the mechtron should not log it
//! either.

use cosmic_space::{
    CmdMethod, DirectedCore, HttpMethod, Method, ReflectedCore, StatusCode, Substance, Surface,
};

use crate::{Ctx, Error, Result};

/// A secret seen from a mechtron.
#[derive(Debug)]
pub struct Secret<'c> {
    ctx: &'c Ctx,
    secret: Surface,
}

impl<'c> Secret<'c> {
    pub(crate) fn new(ctx: &'c Ctx, secret: Surface) -> Secret<'c> {
        Secret { ctx, secret }
    }

    /// The value as text: an error if it is not UTF-8, was never set (404), or the mechtron
    /// may not reveal it (403).
    pub fn reveal(&self) -> Result<String> {
        String::from_utf8(self.reveal_bytes()?).map_err(|_| {
            Error::status(
                StatusCode::ERROR,
                format!("the value of {} is not UTF-8", self.secret.point),
            )
        })
    }

    /// The value as bytes: an error if it was never set (404) or the mechtron may not reveal
    /// it (403).
    pub fn reveal_bytes(&self) -> Result<Vec<u8>> {
        let core = self.ask(DirectedCore::new(Method::Cmd(CmdMethod::Read)))?;
        match core.body {
            Substance::Bin(bytes) => Ok(bytes),
            Substance::Text(text) => Ok(text.into_bytes()),
            other => Err(Error::status(
                StatusCode::ERROR,
                format!(
                    "{} answered a reveal with {}, not a value",
                    self.secret.point,
                    other.kind()
                ),
            )),
        }
    }

    /// Replaces the value (at least one byte; needs `w`).
    pub fn set(&self, value: impl Into<Vec<u8>>) -> Result<()> {
        let core = DirectedCore::new(Method::Http(HttpMethod::Put))
            .with_body(Substance::Bin(value.into()));
        self.ask(core).map(|_| ())
    }

    /// Forgets the value (needs `w`); an error (404) if none was set.
    pub fn clear(&self) -> Result<()> {
        self.ask(DirectedCore::new(Method::Http(HttpMethod::Delete)))
            .map(|_| ())
    }

    /// The secret's answer to `core`, or an [`Error`] with its status and message.
    fn ask(&self, core: DirectedCore) -> Result<ReflectedCore> {
        let core = self.ctx.ping_core(self.secret.clone(), core).core;
        if core.is_ok() {
            Ok(core)
        } else {
            let status = core.status;
            let message = core
                .error_message()
                .unwrap_or_else(|| status.reason().to_string());
            Err(Error::status(status, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::TestMechtron;

    const SECRET: &str = "localhost:app:api-key";

    /// Answers with the length of the secret's value: it uses it without showing it.
    #[mechtron]
    #[derive(Debug, Default)]
    pub struct Caller;

    #[handlers]
    impl Caller {
        #[route("Ext<Call>")]
        fn call(&mut self, ctx: &mut Ctx) -> Result<String> {
            let key = ctx.secret(SECRET.parse::<Point>()?).reveal()?;
            Ok(format!("called with a key of {} bytes", key.len()))
        }

        #[route("Ext<Rotate>")]
        fn rotate(&mut self, ctx: &mut Ctx, value: String) -> Result<String> {
            let secret = ctx.secret(SECRET.parse::<Point>()?);
            secret.set(value)?;
            Ok(format!("{} bytes", secret.reveal_bytes()?.len()))
        }

        #[route("Ext<Forget>")]
        fn forget(&mut self, ctx: &mut Ctx) -> Result<String> {
            ctx.secret(SECRET.parse::<Point>()?).clear()?;
            Ok("forgotten".to_string())
        }
    }

    #[test]
    fn a_test_sets_a_secret_and_the_mechtron_reveals_it() -> Result<()> {
        let mut caller = TestMechtron::<Caller>::new()?.with_secret(SECRET, "s3cr3t-t0ken")?;
        let answer = caller.ping("Ext<Call>", ());
        assert_eq!(
            answer.body,
            Substance::from("called with a key of 12 bytes")
        );
        assert!(caller.logs().is_empty());

        let answer = caller.ping("Ext<Rotate>", "rotated");
        assert_eq!(answer.body, Substance::from("7 bytes"));
        let secret: Point = SECRET.parse()?;
        assert_eq!(caller.host().secret(&secret), Some(b"rotated".to_vec()));

        let answer = caller.ping("Ext<Forget>", ());
        assert_eq!(answer.body, Substance::from("forgotten"));
        assert_eq!(caller.host().secret(&secret), None);
        let answer = caller.ping("Ext<Call>", ());
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(caller.ping("Ext<Forget>", ()).status, StatusCode::NOT_FOUND);
        Ok(())
    }

    #[test]
    fn without_a_fake_the_responder_answers_and_refusals_carry_their_status() -> Result<()> {
        let mut caller = TestMechtron::<Caller>::new()?.answer_pings(|_| {
            ReflectedCore::error(
                StatusCode::FORBIDDEN,
                "localhost:test:caller may not secret:reveal localhost:app:api-key",
            )
        });
        let answer = caller.ping("Ext<Call>", ());
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert_eq!(
            answer.error_message().as_deref(),
            Some("localhost:test:caller may not secret:reveal localhost:app:api-key")
        );
        Ok(())
    }

    #[test]
    fn the_fake_holds_values_like_the_driver_and_never_prints_them() -> Result<()> {
        let mut caller = TestMechtron::<Caller>::new()?.with_secret(SECRET, "s3cr3t-t0ken")?;
        assert_eq!(
            caller.ping("Ext<Rotate>", "").status,
            StatusCode::BAD_REQUEST
        );
        let shown = format!("{:?}", caller.host());
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains(SECRET), "{shown}");
        Ok(())
    }
}
