//! # cosmic-macros — handler and ABI glue for Starlane guests
//!
//! The attribute macros a mechtron author writes (SPEC §11.1), re-exported by
//! `cosmic-mechtron`'s prelude:
//!
//! - [`macro@mechtron`] on a struct: implements `cosmic_mechtron::Mechtron` (its name and
//!   constructor) and generates the wasm exports of the ABI (SPEC §11.3) once per wasm.
//! - [`macro@handlers`] on an `impl` block: turns its `#[route("…")]` methods into the
//!   type's route table. Route strings are parsed here, at compile time, with
//!   `cosmic-space`'s parsers: one that does not parse is a compile error on the string.
//!   Handler signatures are checked too: an unsupported one is an error on the signature.
//!
//! The expansion names only `::cosmic_mechtron` paths, so a guest depends on the SDK alone.
//! The design is in `docs/decisions/guest-sdk.md`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, ImplItem, ImplItemFn, ItemImpl, ItemStruct, LitBool, LitStr, Path,
    ReturnType, Token, Type,
};

mod route;

/// Makes a struct a mechtron type: `#[mechtron]`, `#[mechtron(name = "greeter")]`,
/// `#[mechtron(init = Hello::new)]` (a `fn(&Details) -> Result<Self, E: Display>` instead of
/// `Default`), `#[mechtron(with(Counter, Timer))]` (more types in the same wasm, each marked
/// `#[mechtron(export = false)]`).
#[proc_macro_attribute]
pub fn mechtron(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = syn::parse_macro_input!(args as MechtronArgs);
    let item = syn::parse_macro_input!(item as ItemStruct);
    expand_mechtron(args, item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Turns the `#[route("…")]` methods of an `impl` block into the type's route table
/// (`cosmic_mechtron::Handlers`).
#[proc_macro_attribute]
pub fn handlers(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = TokenStream2::from(args);
    if !args.is_empty() {
        return syn::Error::new_spanned(args, "#[handlers] takes no arguments")
            .into_compile_error()
            .into();
    }
    let item = syn::parse_macro_input!(item as ItemImpl);
    expand_handlers(item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Marks a method of a `#[handlers]` impl as the handler of the waves a route string selects:
/// `#[route("Ext<Hello>")]`, `#[route("Http<Get>/greet/(?P<who>.*)")]`. Outside such an impl
/// it is an error.
#[proc_macro_attribute]
pub fn route(_args: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    let error = syn::Error::new(
        Span::call_site(),
        "#[route] belongs on a method of an `impl` block marked #[handlers]",
    )
    .into_compile_error();
    quote!(#error #item).into()
}

/// The arguments of `#[mechtron(…)]`.
#[derive(Default)]
struct MechtronArgs {
    name: Option<LitStr>,
    init: Option<Path>,
    with: Vec<Path>,
    export: Option<LitBool>,
}

impl Parse for MechtronArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = MechtronArgs::default();
        while !input.is_empty() {
            let key: syn::Ident = input.parse()?;
            match key.to_string().as_str() {
                "name" => {
                    input.parse::<Token![=]>()?;
                    args.name = Some(input.parse()?);
                }
                "init" => {
                    input.parse::<Token![=]>()?;
                    args.init = Some(input.parse()?);
                }
                "export" => {
                    input.parse::<Token![=]>()?;
                    args.export = Some(input.parse()?);
                }
                "with" => {
                    let content;
                    syn::parenthesized!(content in input);
                    let types = Punctuated::<Path, Token![,]>::parse_terminated(&content)?;
                    args.with.extend(types);
                }
                _ => {
                    return Err(syn::Error::new(
                        key.span(),
                        "expected `name = \"…\"`, `init = path`, `with(Type, …)` or \
                         `export = false`",
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

fn expand_mechtron(args: MechtronArgs, item: ItemStruct) -> syn::Result<TokenStream2> {
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "a mechtron type cannot be generic: the host creates it by name",
        ));
    }
    let ident = &item.ident;
    let name = match &args.name {
        Some(lit) => {
            let name = lit.value();
            if !is_skewer(&name) {
                return Err(syn::Error::new(
                    lit.span(),
                    "a mechtron name is skewer case: lower-case letters, digits and '-', \
                     beginning with a letter",
                ));
            }
            name
        }
        None => cosmic_space::mechtron_type_name(&ident.to_string()),
    };
    let exports = args.export.as_ref().is_none_or(LitBool::value);
    if !exports && !args.with.is_empty() {
        return Err(syn::Error::new(
            args.with[0].span(),
            "`with(…)` lists the types a wasm's exports serve besides this one; it needs the \
             exports this type's `export = false` turns off",
        ));
    }
    let create = match &args.init {
        Some(init) => quote_spanned! {init.span()=>
            ::cosmic_mechtron::init_result(#init(details))
        },
        None => quote_spanned! {ident.span()=>
            {
                let _ = details;
                ::core::result::Result::Ok(<Self as ::core::default::Default>::default())
            }
        },
    };
    let export = if exports {
        let with = &args.with;
        let checks = with.iter().map(|other| {
            let message = format!(
                "`{}` is listed in `with(…)`, so mark it #[mechtron(export = false)]: a wasm \
                 has one set of exports",
                quote!(#other).to_string().replace(' ', "")
            );
            quote_spanned! {other.span()=>
                const _: () = ::core::assert!(
                    !<#other as ::cosmic_mechtron::Mechtron>::EXPORTS,
                    #message
                );
            }
        });
        quote! {
            ::cosmic_mechtron::__export_mechtrons!(#ident #(, #with)*);
            #(#checks)*
        }
    } else {
        TokenStream2::new()
    };
    Ok(quote! {
        #item

        impl ::cosmic_mechtron::Mechtron for #ident {
            const NAME: &'static str = #name;
            const EXPORTS: bool = #exports;

            fn create(
                details: &::cosmic_mechtron::space::Details,
            ) -> ::core::result::Result<Self, ::cosmic_mechtron::Error> {
                #create
            }
        }

        #export
    })
}

fn expand_handlers(mut item: ItemImpl) -> syn::Result<TokenStream2> {
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "#[handlers] goes on an inherent `impl Type { … }` block, not a trait impl",
        ));
    }
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "a mechtron type cannot be generic",
        ));
    }
    let self_ty = item.self_ty.clone();
    let mut routes = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let sources = match take_routes(&mut method.attrs) {
            Ok(sources) => sources,
            Err(error) => {
                combine(&mut errors, error);
                continue;
            }
        };
        if sources.is_empty() {
            for arg in method.sig.inputs.iter_mut() {
                let FnArg::Typed(arg) = arg else { continue };
                match take_var(arg) {
                    Ok(None) => {}
                    Ok(Some(var)) => combine(
                        &mut errors,
                        syn::Error::new(
                            var.span,
                            "#[var] belongs on an argument of a #[route(\"…\")] handler",
                        ),
                    ),
                    Err(error) => combine(&mut errors, error),
                }
            }
            continue;
        }
        // Each valid route string with the variables its path regex captures.
        let mut checked = Vec::new();
        for source in sources {
            match route::check(&source.value()) {
                Ok(captures) => checked.push((source, captures)),
                Err(message) => combine(&mut errors, syn::Error::new(source.span(), message)),
            }
        }
        let handler = match handler_closure(&self_ty, method, &checked) {
            Ok(handler) => handler,
            Err(error) => {
                combine(&mut errors, error);
                continue;
            }
        };
        for (source, _) in checked {
            routes.push(quote! {
                ::cosmic_mechtron::Route::new(#source, #handler)
            });
        }
    }
    // The table is written even when some routes are wrong, so the errors stand alone
    // rather than cascading into "no route table".
    let errors = errors.map(syn::Error::into_compile_error);
    Ok(quote! {
        #item
        #errors

        impl ::cosmic_mechtron::Handlers for #self_ty {
            fn routes() -> &'static ::cosmic_mechtron::RouteTable<Self> {
                static ROUTES: ::std::sync::OnceLock<::cosmic_mechtron::RouteTable<#self_ty>> =
                    ::std::sync::OnceLock::new();
                ROUTES.get_or_init(|| {
                    ::cosmic_mechtron::RouteTable::new(::std::vec![#(#routes),*])
                })
            }
        }
    })
}

fn combine(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(errors) => errors.combine(error),
        None => *errors = Some(error),
    }
}

/// Removes the `#[route("…")]` attributes of a method and returns their strings.
fn take_routes(attrs: &mut Vec<Attribute>) -> syn::Result<Vec<LitStr>> {
    let mut sources = Vec::new();
    let mut result = Ok(());
    attrs.retain(|attr| {
        if !attr.path().is_ident("route") {
            return true;
        }
        match attr.parse_args::<LitStr>() {
            Ok(source) => sources.push(source),
            Err(_) => {
                result = Err(syn::Error::new(
                    attr.span(),
                    "expected #[route(\"Method<Name>\")] or #[route(\"Method<Name>/path-regex\")]",
                ))
            }
        }
        false
    });
    result.map(|()| sources)
}

/// The non-capturing closure (a `HandlerFn`) that extracts the handler's route variables
/// and input, calls it and converts its output; or an error on the part of the signature the
/// SDK cannot serve. `routes` are the method's route strings with the variables each
/// captures: a `#[var]` argument must name one that every route captures. The `#[var]`
/// attributes are removed from the method.
fn handler_closure(
    self_ty: &Type,
    method: &mut ImplItemFn,
    routes: &[(LitStr, Vec<String>)],
) -> syn::Result<TokenStream2> {
    let mut vars = Vec::new();
    let mut var_errors = None;
    for arg in method.sig.inputs.iter_mut() {
        let var = match arg {
            FnArg::Typed(arg) => take_var(arg).unwrap_or_else(|error| {
                combine(&mut var_errors, error);
                None
            }),
            FnArg::Receiver(_) => None,
        };
        vars.push(var);
    }
    if let Some(error) = var_errors {
        return Err(error);
    }
    let sig = &method.sig;
    let usage = "a handler is `fn name(&mut self, ctx: &mut Ctx, input: T) -> R`: `&self` or \
                 `&mut self`, then optionally `&mut Ctx`, route variables (`#[var] id: u64`) \
                 and at most one input";
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            "handlers are synchronous: a guest has no async runtime",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a handler cannot be generic",
        ));
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) if receiver.reference.is_some() => {}
        Some(FnArg::Receiver(receiver)) => {
            return Err(syn::Error::new(
                receiver.span(),
                "a handler takes `&self` or `&mut self`: the mechtron outlives the wave",
            ));
        }
        _ => return Err(syn::Error::new(sig.span(), usage)),
    }
    let name = &sig.ident;
    let mut args = Vec::new();
    let mut extract_vars = TokenStream2::new();
    let mut extract = TokenStream2::new();
    let (mut ctx_seen, mut input_seen) = (false, false);
    for (index, (arg, var)) in sig.inputs.iter().zip(vars).enumerate().skip(1) {
        let FnArg::Typed(arg) = arg else {
            return Err(syn::Error::new(arg.span(), usage));
        };
        if let Some(var) = var {
            check_var(&var, routes)?;
            let ty = &arg.ty;
            if let Type::Reference(reference) = &**ty {
                return Err(syn::Error::new(
                    reference.span(),
                    "a route variable is taken by value (`String` for its text)",
                ));
            }
            let value = format_ident!("var_{}", index);
            let var_name = &var.name;
            extract_vars.extend(quote_spanned! {ty.span()=>
                let #value = match ::cosmic_mechtron::Ctx::var_as::<#ty>(ctx, #var_name) {
                    ::core::result::Result::Ok(value) => value,
                    ::core::result::Result::Err(error) => {
                        return ::cosmic_mechtron::space::ReflectedCore::from(error);
                    }
                };
            });
            args.push(quote!(#value));
            continue;
        }
        if let Type::Reference(reference) = &*arg.ty {
            if is_ctx(&reference.elem) && !ctx_seen {
                ctx_seen = true;
                args.push(quote!(ctx));
                continue;
            }
            return Err(syn::Error::new(
                arg.ty.span(),
                "handler inputs are taken by value; the one reference a handler takes is \
                 `&mut Ctx`",
            ));
        }
        if input_seen {
            return Err(syn::Error::new(
                arg.span(),
                "a handler takes at most one input (make a `Json<T>` of a struct for more)",
            ));
        }
        input_seen = true;
        let ty = &arg.ty;
        extract = quote_spanned! {ty.span()=>
            let input = match <#ty as ::cosmic_mechtron::FromWave>::from_wave(ctx) {
                ::core::result::Result::Ok(input) => input,
                ::core::result::Result::Err(error) => {
                    return ::cosmic_mechtron::space::ReflectedCore::from(error);
                }
            };
        };
        args.push(quote!(input));
    }
    let call = quote!(<#self_ty>::#name(this, #(#args),*));
    let convert = match &sig.output {
        ReturnType::Default => quote! {
            #call;
            ::cosmic_mechtron::space::ReflectedCore::ok(())
        },
        ReturnType::Type(_, ty) => quote_spanned! {ty.span()=>
            let output = #call;
            ::cosmic_mechtron::IntoReflected::into_reflected(output)
        },
    };
    let this = format_ident!("this");
    Ok(quote! {
        |#this: &mut #self_ty, ctx: &mut ::cosmic_mechtron::Ctx| -> ::cosmic_mechtron::space::ReflectedCore {
            #extract_vars
            #extract
            #convert
        }
    })
}

/// A handler argument marked `#[var]`: the route variable it takes.
struct Var {
    /// The variable's name: the argument's, or the one `#[var("name")]` gives.
    name: String,
    /// Where errors about it point.
    span: Span,
}

/// Removes the `#[var]` / `#[var("name")]` attribute of a handler argument and returns the
/// variable it names; `None` for an argument without one.
fn take_var(arg: &mut syn::PatType) -> syn::Result<Option<Var>> {
    let (found, others): (Vec<Attribute>, Vec<Attribute>) = std::mem::take(&mut arg.attrs)
        .into_iter()
        .partition(|attr| attr.path().is_ident("var"));
    arg.attrs = others;
    let mut found = found.into_iter();
    let Some(attr) = found.next() else {
        return Ok(None);
    };
    if let Some(second) = found.next() {
        return Err(syn::Error::new(
            second.span(),
            "an argument takes one route variable: one #[var]",
        ));
    }
    let given = match &attr.meta {
        syn::Meta::Path(_) => None,
        syn::Meta::List(_) => Some(attr.parse_args::<LitStr>().map_err(|_| {
            syn::Error::new(
                attr.span(),
                "expected #[var] (the argument's name) or #[var(\"name\")]",
            )
        })?),
        syn::Meta::NameValue(_) => {
            return Err(syn::Error::new(
                attr.span(),
                "expected #[var] (the argument's name) or #[var(\"name\")]",
            ));
        }
    };
    match (given, &*arg.pat) {
        (Some(name), _) => Ok(Some(Var {
            name: name.value(),
            span: name.span(),
        })),
        (None, syn::Pat::Ident(pat)) => Ok(Some(Var {
            name: syn::ext::IdentExt::unraw(&pat.ident).to_string(),
            span: pat.ident.span(),
        })),
        (None, pat) => Err(syn::Error::new(
            pat.span(),
            "name the route variable of a pattern: #[var(\"name\")]",
        )),
    }
}

/// Checks that every route of the handler captures the variable `var`.
fn check_var(var: &Var, routes: &[(LitStr, Vec<String>)]) -> syn::Result<()> {
    let name = &var.name;
    for (source, captures) in routes {
        if captures.iter().any(|capture| capture == name) {
            continue;
        }
        let route = source.value();
        let message = if captures.is_empty() {
            format!(
                "the route \"{route}\" captures no variables, so there is no `{name}`: give its \
                 path a named group, e.g. (?P<{name}>[^/]+)"
            )
        } else {
            format!(
                "the route \"{route}\" captures no variable `{name}` (it captures: {})",
                captures.join(", ")
            )
        };
        return Err(syn::Error::new(var.span, message));
    }
    Ok(())
}

/// Whether `ty` names the SDK's `Ctx` (`Ctx` or a path ending in `::Ctx`).
fn is_ctx(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Ctx" && segment.arguments.is_empty()),
        _ => false,
    }
}

fn is_skewer(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_skewer_case() {
        assert!(is_skewer("hello-world"));
        assert!(!is_skewer("Hello"));
        assert!(!is_skewer("2x"));
        assert!(!is_skewer(""));
    }
}
