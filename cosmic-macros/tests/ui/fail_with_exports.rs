use cosmic_mechtron::prelude::*;

#[mechtron(with(Other))]
#[derive(Default)]
pub struct Hello;

#[handlers]
impl Hello {}

#[mechtron]
#[derive(Default)]
pub struct Other;

#[handlers]
impl Other {}

fn main() {}
