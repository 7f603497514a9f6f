use cosmic_mechtron::prelude::*;

#[mechtron]
#[derive(Default)]
pub struct Hello;

#[handlers]
impl Hello {
    #[route("Ext<Hello>")]
    fn by_value(self) {}

    #[route("Ext<Two>")]
    fn two_inputs(&self, _a: String, _b: String) {}

    #[route("Ext<Borrowed>")]
    fn borrowed(&self, _name: &str) {}
}

fn main() {}
