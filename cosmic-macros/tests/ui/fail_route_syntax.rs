use cosmic_mechtron::prelude::*;

#[mechtron]
#[derive(Default)]
pub struct Hello;

#[handlers]
impl Hello {
    #[route("Ext<hello>")]
    fn hello(&self) {}

    #[route("Http<Get>/greet/(?P<who>.*")]
    fn greet(&self) {}
}

fn main() {}
