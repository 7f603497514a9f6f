use cosmic_mechtron::prelude::*;

#[mechtron]
#[derive(Default)]
pub struct Shop;

pub struct Opaque;

#[handlers]
impl Shop {
    // A misspelled variable: the route captures `id`.
    #[route("Http<Get>/items/(?P<id>[0-9]+)")]
    fn item(&self, #[var] idd: u64) -> String {
        idd.to_string()
    }

    // A route without a path regex captures nothing.
    #[route("Ext<Item>")]
    fn ext_item(&self, #[var] id: u64) -> String {
        id.to_string()
    }

    // Every route of the handler must capture it.
    #[route("Http<Get>/items/(?P<id>[0-9]+)")]
    #[route("Http<Get>/things/(?P<thing>[0-9]+)")]
    fn either(&self, #[var] id: u64) -> String {
        id.to_string()
    }

    // Borrowed, and a type that is not made from text.
    #[route("Http<Get>/a/(?P<a>.*)")]
    fn borrowed(&self, #[var] a: &str) -> String {
        a.to_string()
    }

    #[route("Http<Get>/b/(?P<b>.*)")]
    fn opaque(&self, #[var] b: Opaque) {
        let _ = b;
    }

    // A pattern needs the variable named.
    #[route("Http<Get>/c/(?P<c>.*)")]
    fn pattern(&self, #[var] (c, _): (u8, u8)) {
        let _ = c;
    }

    // Not a route handler.
    fn helper(&self, #[var] x: u64) -> u64 {
        x
    }
}

fn main() {}
