use cosmic_mechtron::prelude::*;

#[mechtron]
#[derive(Default)]
pub struct Hello {
    greeted: u64,
}

#[handlers]
impl Hello {
    #[route("Ext<Hello>")]
    fn hello(&mut self, ctx: &mut Ctx, name: String) -> Result<String, Error> {
        self.greeted += 1;
        ctx.info(format!("greeting {name}"));
        Ok(format!("Goodbye, {name}!"))
    }

    #[route("Http<Get>/greet/(?P<who>.*)")]
    fn greet(&mut self, ctx: &mut Ctx, req: HttpRequest) -> HttpResponse {
        HttpResponse::ok(format!("{} {}", ctx.var("who").unwrap_or_default(), req.path))
    }

    #[route("*")]
    fn anything(&self) {}
}

fn main() {
    let mut hello = cosmic_mechtron::testing::TestMechtron::<Hello>::new().unwrap();
    assert_eq!(hello.ping("Ext<Hello>", "ann").body, Substance::from("Goodbye, ann!"));
}
