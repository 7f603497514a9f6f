//! The `hello` mechtron: answers `Ext<Hello>` with a greeting.

use cosmic_mechtron::prelude::*;

#[mechtron]
#[derive(Debug, Default)]
pub struct Hello;

#[handlers]
impl Hello {
    #[route("Ext<Hello>")]
    fn hello(&mut self, ctx: &mut Ctx, name: String) -> String {
        ctx.info(format!("greeting {name}"));
        format!("Goodbye, {name}!")
    }
}

#[cfg(test)]
mod tests {
    use cosmic_mechtron::testing::TestMechtron;

    use super::*;

    #[test]
    fn says_goodbye() -> Result<()> {
        let mut mechtron = TestMechtron::<Hello>::new()?;
        let answer = mechtron.ping("Ext<Hello>", "world");
        assert_eq!(answer.body, Substance::from("Goodbye, world!"));
        assert_eq!(
            mechtron.logs(),
            [(LogLevel::Info, "greeting world".to_string())]
        );
        Ok(())
    }
}
