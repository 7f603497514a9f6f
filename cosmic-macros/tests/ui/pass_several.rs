use cosmic_mechtron::prelude::*;

#[mechtron(name = "front-door", with(Counter))]
#[derive(Default)]
pub struct Door;

#[handlers]
impl Door {
    #[route("Ext<Knock>")]
    fn knock(&self, Json(n): Json<u32>) -> Json<u32> {
        Json(n + 1)
    }
}

#[mechtron(export = false, init = Counter::new)]
pub struct Counter(i64);

impl Counter {
    fn new(_details: &Details) -> Result<Counter, Error> {
        Ok(Counter(5))
    }
}

#[handlers]
impl Counter {
    #[route("Ext<Count>")]
    fn count(&mut self, by: Option<i64>) -> i64 {
        self.0 += by.unwrap_or(1);
        self.0
    }
}

fn main() {
    use cosmic_mechtron::Mechtron;
    assert_eq!(Door::NAME, "front-door");
    assert_eq!(Counter::NAME, "counter");
}
