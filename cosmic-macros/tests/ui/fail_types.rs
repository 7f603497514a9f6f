use cosmic_mechtron::prelude::*;

#[mechtron]
#[derive(Default)]
pub struct Hello;

pub struct Opaque;

#[handlers]
impl Hello {
    #[route("Ext<In>")]
    fn input(&self, _opaque: Opaque) {}

    #[route("Ext<Out>")]
    fn output(&self) -> Opaque {
        Opaque
    }
}

fn main() {}
