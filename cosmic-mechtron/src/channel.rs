//! Channels from a mechtron (SPEC §18): publishing on a `Channel`, and subscribing to what
//! channels publish and to particles' lifecycle events.
//!
//! What a subscription delivers arrives as a Signal: a channel's message with the method,
//! path, headers and body it was published with (`ctx.from()` is the channel; the
//! publisher's agent is in the `publisher` header), a lifecycle event as `Cmd<Event>` with
//! the event in the `event` header (see [`cosmic_space::event_of`]). Route them like any
//! other wave: `#[route("Ext<Say>")]`, `#[route("Cmd<Event>")]`.

use cosmic_space::{
    CmdMethod, DirectedCore, Method, Point, RawCommand, Selector, Substance, Surface,
};

use crate::ctx::Ctx;
use crate::error::Result;

impl Ctx {
    /// Publishes `body` with `method` on the channel `channel`, as this mechtron (it needs
    /// `w` on the channel): every subscriber gets it. A refusal (403), a missing channel
    /// (404) and the like are errors with their status.
    pub fn publish(
        &self,
        channel: impl Into<Surface>,
        method: Method,
        body: impl Into<Substance>,
    ) -> Result<()> {
        self.ping(channel, method, body).core.into_result()?;
        Ok(())
    }

    /// Subscribes this mechtron to what `selector` publishes — the messages of the channels
    /// and the lifecycle events of the particles it matches, those this mechtron may read
    /// (`r`) — kept in the registry until [`Ctx::unsubscribe`], across restarts.
    pub fn subscribe(&self, selector: &Selector) -> Result<()> {
        self.command(format!("subscribe {selector}"))
    }

    /// Undoes [`Ctx::subscribe`] of the same selector (404 if there was none).
    pub fn unsubscribe(&self, selector: &Selector) -> Result<()> {
        self.command(format!("unsubscribe {selector}"))
    }

    /// Runs one command of the operator language as this mechtron.
    fn command(&self, line: String) -> Result<()> {
        let core = DirectedCore::new(Method::Cmd(CmdMethod::RawCommand))
            .with_body(Substance::RawCommand(RawCommand::new(line)));
        self.ping_core(Point::global_executor(), core)
            .core
            .into_result()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::TestMechtron;

    const LOBBY: &str = "localhost:chat:lobby";

    /// Joins the lobby, repeats what it hears there, and leaves.
    #[mechtron]
    #[derive(Debug, Default)]
    pub struct Parrot {
        heard: Vec<String>,
    }

    #[handlers]
    impl Parrot {
        #[route("Ext<Join>")]
        fn join(&self, ctx: &mut Ctx) -> Result<()> {
            ctx.subscribe(&LOBBY.parse()?)?;
            ctx.publish(LOBBY.parse::<Point>()?, "Ext<Say>".parse()?, "hello")
        }

        #[route("Ext<Say>")]
        fn say(&mut self, ctx: &mut Ctx, text: String) {
            let publisher = ctx.headers().get(PUBLISHER).unwrap_or("nobody");
            self.heard.push(format!("{publisher}: {text}"));
        }

        #[route("Ext<Leave>")]
        fn leave(&self, ctx: &mut Ctx) -> Result<()> {
            ctx.unsubscribe(&LOBBY.parse()?)
        }
    }

    #[test]
    fn a_mechtron_subscribes_publishes_hears_and_leaves() -> Result<()> {
        let mut parrot = TestMechtron::<Parrot>::new()?.with_channel(LOBBY)?;
        assert_eq!(parrot.ping("Ext<Join>", ()).status, StatusCode::OK);
        assert_eq!(parrot.host().subscriptions(), [LOBBY]);
        let published = parrot.host().published(&LOBBY.parse()?);
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].body, Substance::from("hello"));

        let say = DirectedCore::new("Ext<Say>".parse()?).with_body("hi");
        parrot.publication(LOBBY, "localhost:users:ann", say)?;
        assert_eq!(parrot.mechtron().heard, ["localhost:users:ann: hi"]);

        assert_eq!(parrot.ping("Ext<Leave>", ()).status, StatusCode::OK);
        assert!(parrot.host().subscriptions().is_empty());
        // Leaving twice: there is no subscription left to undo.
        assert_eq!(parrot.ping("Ext<Leave>", ()).status, StatusCode::NOT_FOUND);
        Ok(())
    }

    #[test]
    fn publishing_on_a_channel_the_test_did_not_give_fails_with_its_status() -> Result<()> {
        let mut parrot = TestMechtron::<Parrot>::new()?;
        assert_eq!(parrot.ping("Ext<Join>", ()).status, StatusCode::NOT_FOUND);
        Ok(())
    }
}
