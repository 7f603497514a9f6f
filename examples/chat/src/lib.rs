//! The `history` mechtron of the chat example (SPEC §18): it is subscribed to the room
//! channel (its `.mechtron` document says `Subscribe { +localhost:chat:room; }`), keeps the
//! last [`KEPT`] messages published there, and answers `GET /history` with them.
//!
//! A message is whatever is published on the room — `Http<Post>` from a browser's
//! WebSocket, `Ext<Say>` from `starlane send localhost:chat:room 'Ext<Say>' hello` — with a
//! text body; the channel names who published it in the `publisher` header.

use std::collections::{BTreeMap, VecDeque};

use cosmic_mechtron::prelude::*;

/// How many messages the history keeps.
pub const KEPT: usize = 50;

/// The longest message kept, in bytes; longer ones are cut (on a character boundary).
pub const LONGEST: usize = 4096;

#[mechtron]
#[derive(Debug, Default)]
pub struct History {
    messages: VecDeque<Message>,
}

/// One message of the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who published it (an agent's point).
    pub publisher: String,
    /// What it said.
    pub text: String,
}

#[handlers]
impl History {
    /// A message from a browser (the room publishes what its WebSocket sends as `Http<Post>`).
    #[route("Http<Post>")]
    fn posted(&mut self, ctx: &mut Ctx, body: Substance) -> Result<()> {
        self.heard(ctx, body)
    }

    /// A message from anywhere else, e.g. `starlane send localhost:chat:room 'Ext<Say>' hi`.
    #[route("Ext<Say>")]
    fn said(&mut self, ctx: &mut Ctx, body: Substance) -> Result<()> {
        self.heard(ctx, body)
    }

    /// `GET /history`: the kept messages, oldest first, as
    /// `[{"publisher": "...", "text": "..."}, …]`.
    #[route("Http<Get>/history")]
    fn history(&self) -> HttpResponse {
        let messages: Vec<BTreeMap<&str, &str>> = self
            .messages
            .iter()
            .map(|m| {
                BTreeMap::from([
                    ("publisher", m.publisher.as_str()),
                    ("text", m.text.as_str()),
                ])
            })
            .collect();
        HttpResponse::json(&messages).with_header("cache-control", "no-store")
    }
}

impl History {
    /// Keeps a message the room delivered: only waves that come through the channel (they
    /// carry the publisher) count, so nobody writes into the history by sending to the
    /// mechtron directly.
    fn heard(&mut self, ctx: &Ctx, body: Substance) -> Result<()> {
        let Some(publisher) = ctx.headers().get(PUBLISHER) else {
            return Err(Error::status(
                StatusCode::BAD_REQUEST,
                "the history keeps what the room publishes: publish on localhost:chat:room",
            ));
        };
        let text = match body {
            Substance::Text(text) => text,
            Substance::Bin(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            other => {
                return Err(Error::status(
                    StatusCode::BAD_REQUEST,
                    format!("a message is text, not {}", other.kind()),
                ));
            }
        };
        self.keep(Message {
            publisher: publisher.to_string(),
            text: shortened(text),
        });
        Ok(())
    }

    /// Adds a message, forgetting the oldest beyond [`KEPT`].
    pub fn keep(&mut self, message: Message) {
        if self.messages.len() == KEPT {
            self.messages.pop_front();
        }
        self.messages.push_back(message);
    }
}

/// `text` cut to at most [`LONGEST`] bytes.
fn shortened(mut text: String) -> String {
    if text.len() > LONGEST {
        let mut end = LONGEST;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmic_mechtron::testing::TestMechtron;

    const ROOM: &str = "localhost:chat:room";

    fn say(history: &mut TestMechtron<History>, who: &str, text: &str) -> Result<()> {
        let core = DirectedCore::new(Method::Http(HttpMethod::Post)).with_body(text);
        history.publication(ROOM, who, core)
    }

    #[test]
    fn it_keeps_the_last_fifty_messages_in_order() -> Result<()> {
        let mut history = TestMechtron::<History>::new()?;
        for n in 0..60 {
            say(&mut history, "localhost:users:ann", &format!("message {n}"))?;
        }
        let answer = history.get("/history");
        assert_eq!(answer.status, StatusCode::OK);
        let Substance::Bin(body) = answer.body else {
            return Err(Error::msg(format!(
                "the history came as {}",
                answer.body.kind()
            )));
        };
        let text = String::from_utf8(body).map_err(|e| Error::msg(e.to_string()))?;
        assert!(text.starts_with(r#"[{"publisher":"localhost:users:ann","text":"message 10"}"#));
        assert!(text.ends_with(r#"{"publisher":"localhost:users:ann","text":"message 59"}]"#));
        assert_eq!(text.matches("message").count(), KEPT);
        Ok(())
    }

    #[test]
    fn only_what_the_room_publishes_is_kept() -> Result<()> {
        let mut history = TestMechtron::<History>::new()?;
        let direct =
            history.request(DirectedCore::new(Method::Http(HttpMethod::Post)).with_body("x"));
        assert_eq!(direct.status, StatusCode::BAD_REQUEST);
        say(&mut history, "localhost:users:bob", &"é".repeat(LONGEST))?;
        assert_eq!(history.mechtron().messages[0].text.len(), LONGEST);
        Ok(())
    }
}
