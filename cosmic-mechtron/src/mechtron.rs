//! What a mechtron type is to the SDK (SPEC §11.1): a [`Mechtron`] has a name and a
//! constructor (`#[mechtron]` writes both) and [`Handlers`] (`#[handlers]` writes its route
//! table). A [`Registration`] erases the type so one wasm can hold several and
//! `mechtron_init` can pick one by the name in the particle's details.

use cosmic_space::{Details, ReflectedCore};

use crate::ctx::Ctx;
use crate::error::Error;
use crate::route::RouteTable;

/// The property of the Details given to `mechtron_init` that names the mechtron type (the
/// host copies it from the `.mechtron` document's `+name=`).
pub const MECHTRON_PROPERTY: &str = "mechtron";

/// A type whose methods answer waves; written by `#[handlers]` on an `impl` block.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no route table",
    note = "add `#[handlers]` to an `impl {Self}` block whose methods carry `#[route(\"…\")]`"
)]
pub trait Handlers: Sized + 'static {
    /// The routes, in the order written (built once, on first use).
    fn routes() -> &'static RouteTable<Self>;
}

/// A mechtron type: its name inside the wasm and how an instance is made; written by
/// `#[mechtron]` on the struct.
pub trait Mechtron: Handlers {
    /// The type's name, as a `.mechtron` document's `+name=` selects it (skewer case).
    const NAME: &'static str;

    /// Whether this type's `#[mechtron]` generates the wasm exports (false for a type that
    /// rides along in another type's `#[mechtron(with(…))]`).
    const EXPORTS: bool;

    /// A new instance for the particle `details` describes (it lives as long as the particle).
    fn create(details: &Details) -> Result<Self, Error>;

    /// Answers the wave `ctx` holds: by default, through the route table.
    fn handle(&mut self, ctx: &mut Ctx) -> ReflectedCore {
        Self::routes().dispatch(self, ctx)
    }
}

/// A live mechtron of any type, as the ABI glue holds it.
pub trait Instance {
    /// Answers the wave `ctx` holds.
    fn handle(&mut self, ctx: &mut Ctx) -> ReflectedCore;
}

impl<M: Mechtron> Instance for M {
    fn handle(&mut self, ctx: &mut Ctx) -> ReflectedCore {
        Mechtron::handle(self, ctx)
    }
}

/// One mechtron type of a wasm: its name and its type-erased constructor.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    name: &'static str,
    create: fn(&Details) -> Result<Box<dyn Instance>, Error>,
}

impl Registration {
    /// The registration of `M`.
    pub const fn of<M: Mechtron>() -> Registration {
        Registration {
            name: M::NAME,
            create: create_boxed::<M>,
        }
    }

    /// The type's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

fn create_boxed<M: Mechtron>(details: &Details) -> Result<Box<dyn Instance>, Error> {
    Ok(Box::new(M::create(details)?))
}

/// A new instance of the type the `mechtron` property of `details` names, among `registry`.
pub fn create(registry: &[Registration], details: &Details) -> Result<Box<dyn Instance>, Error> {
    let name = details
        .properties
        .value(MECHTRON_PROPERTY)
        .ok_or(Error::MissingMechtronName)?;
    let registration =
        registry
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| Error::UnknownMechtron {
                name: name.to_string(),
                known: registry
                    .iter()
                    .map(|r| r.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
    (registration.create)(details)
}

/// Turns the result of a custom constructor (`#[mechtron(init = path)]`) into the SDK's.
#[doc(hidden)]
pub fn init_result<M, E: std::fmt::Display + 'static>(result: Result<M, E>) -> Result<M, Error> {
    result.map_err(
        |error| match (&error as &dyn std::any::Any).downcast_ref::<Error>() {
            Some(error) => error.clone(),
            None => Error::msg(error.to_string()),
        },
    )
}
