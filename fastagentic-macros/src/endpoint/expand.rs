//! The generated code.
//!
//! Everything the macro adds lives inside the wrapper fn that takes the user's name, so
//! nothing leaks into the user's module and a `#[cfg]` on the fn covers the registration
//! too:
//!
//! ```text
//! /// user docs
//! pub async fn analyze(ctx: AgentContext, q: Question) -> Result<Answer, AgentError> {
//!     async fn __fastagentic_body(ctx: AgentContext, q: Question) -> Result<Answer, E> { .. }
//!     fn __fastagentic_run(pipeline: &Pipeline, request: RequestInfo, input: Question)
//!         -> impl Future<Output = Result<Answer, AgentError>>
//!     {
//!         pipeline.run(request, move |ctx| __fastagentic_body(ctx, Clone::clone(&input)))
//!     }
//!     #[distributed_slice(ENDPOINTS)]
//!     static __FASTAGENTIC_ENDPOINT: Endpoint = EndpointParts {
//!         handler: |pipeline, request, json| Box::pin(async move {
//!             let input = decode_input::<Question>(json)?;
//!             encode_output::<Answer>(&__fastagentic_run(pipeline, request, input).await?)
//!         }),
//!         ..
//!     }.into_endpoint();
//!     static __FASTAGENTIC_PIPELINE: OnceLock<..> = OnceLock::new();
//!     __fastagentic_run(__FASTAGENTIC_ENDPOINT.pipeline()?, request_from(&ctx), q).await
//! }
//! ```
//!
//! Each trait the types need is required at exactly one place, spanned on the type the
//! user wrote: `Clone` and `E: Into<AgentError>` in `__fastagentic_run`, `Deserialize` and
//! `Serialize` in the handler. A missing trait is then one error, on the type. (Separate
//! `assert_input`-style checks would report each missing trait twice: rustc only merges
//! identical errors within one body.)

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Ident, ItemFn, Lit, LitStr, Meta};

use super::args::Args;
use super::policies::{self, CIRCUIT_BREAKER, RATE_LIMIT, RETRY, TIMEOUT};
use super::signature::Shape;
use crate::paths::Paths;

/// The whole expansion of a valid endpoint.
pub(super) fn endpoint(func: &ItemFn, args: &Args, shape: &Shape) -> TokenStream {
    let paths = args.paths();
    let agent_error = paths.agent_error();
    let attrs = &func.attrs;
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let params = shape.ctx.iter().chain(&shape.input).map(|p| {
        let (name, ty) = (&p.name, &p.ty);
        quote!(#name: #ty)
    });
    let output = &shape.output;
    let body = body_fn(func);
    let run = run_fn(shape, &paths);
    let descriptor = descriptor(func, args, shape, &paths);
    let call = direct_call(shape, &paths);
    quote! {
        #(#attrs)*
        #vis async fn #ident(#(#params),*)
            -> ::core::result::Result<#output, #agent_error>
        {
            #body
            #run
            #descriptor
            #call
        }
    }
}

fn body_ident() -> Ident {
    Ident::new("__fastagentic_body", Span::call_site())
}

fn run_ident() -> Ident {
    Ident::new("__fastagentic_run", Span::call_site())
}

fn endpoint_ident() -> Ident {
    Ident::new("__FASTAGENTIC_ENDPOINT", Span::call_site())
}

/// A local of the generated code: mixed-site, so it cannot clash with the user's names.
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// A span located on `tokens` (so errors point there) with mixed-site hygiene (so the
/// generated locals stay private).
fn located_on(tokens: &impl Spanned) -> Span {
    tokens.span().resolved_at(Span::mixed_site())
}

/// The user's fn, renamed, without attributes (the wrapper carries them, and lint
/// levels reach nested items from there).
fn body_fn(func: &ItemFn) -> TokenStream {
    let mut sig = func.sig.clone();
    sig.ident = body_ident();
    let block = &func.block;
    quote! {
        // The macro requires `async` even for a body that never awaits.
        #[allow(clippy::unused_async)]
        #sig #block
    }
}

/// `__fastagentic_run(pipeline, request, input)`: the body in a pipeline, shared by
/// direct calls and the JSON handler.
fn run_fn(shape: &Shape, paths: &Paths) -> TokenStream {
    let run = run_ident();
    // `Pipeline::run` requires `E: Into<AgentError>`, and rustc checks it at the call,
    // at the operation passed in and at the returned future's type: locate all of them on
    // the error type so a wrong one is reported there, once.
    let on_error = located_on(&shape.error);
    let [pipeline, request, ctx, body] =
        ["pipeline", "request", "ctx", "__fastagentic_body"].map(|name| Ident::new(name, on_error));
    let output = &shape.output;
    let (param, attempt) = match &shape.input {
        Some(input) => {
            let ty = &input.ty;
            let span = located_on(ty);
            let value = Ident::new("input", span);
            // Each attempt gets its own copy; a missing `Clone` is reported on the type.
            let copy = quote_spanned!(span=> ::core::clone::Clone::clone(&#value));
            let attempt = match shape.ctx {
                Some(_) => quote_spanned!(on_error=> move |#ctx| #body(#ctx, #copy)),
                None => quote_spanned!(on_error=> move |_| #body(#copy)),
            };
            (Some(quote!(#value: #ty)), attempt)
        }
        None => match shape.ctx {
            Some(_) => (None, quote!(#body)),
            None => (None, quote_spanned!(on_error=> |_| #body())),
        },
    };
    let call = quote_spanned!(on_error=> #pipeline.run(#request, #attempt));
    let agent_error = paths.agent_error();
    let returns = quote_spanned! {on_error=>
        impl ::core::future::Future<
            Output = ::core::result::Result<#output, #agent_error>,
        >
    };
    let (pipeline_ty, request_ty) = (paths.pipeline(), paths.request_info());
    // A plain fn returning the pipeline's future, not an `async fn` around it: that would
    // add a layer to a future of several kilobytes, moved on every call.
    quote! {
        fn #run(
            #pipeline: &#pipeline_ty,
            #request: #request_ty,
            #param
        ) -> #returns {
            #call
        }
    }
}

/// A direct call: the endpoint's shared pipeline, with the caller's identity.
fn direct_call(shape: &Shape, paths: &Paths) -> TokenStream {
    let run = run_ident();
    let endpoint = endpoint_ident();
    let request = match &shape.ctx {
        Some(ctx) => {
            let ctx = &ctx.name;
            let request_from = paths.helper("request_from");
            quote!(#request_from(&#ctx))
        }
        None => {
            let request_info = paths.request_info();
            quote!(#request_info::new())
        }
    };
    let input = shape.input.as_ref().map(|p| &p.name);
    quote!(#run(#endpoint.pipeline()?, #request, #input).await)
}

/// The registered `Endpoint` and the cell its pipeline is built in.
fn descriptor(func: &ItemFn, args: &Args, shape: &Shape, paths: &Paths) -> TokenStream {
    let endpoint = endpoint_ident();
    let cell = Ident::new("__FASTAGENTIC_PIPELINE", Span::call_site());
    let Metadata {
        fn_name,
        name,
        path,
        description,
        model,
    } = Metadata::new(func, args);
    let stream = args.stream;
    let durable = args.is_durable();
    let policies = policies_fn(func, args, paths);
    let handler = handler(func, shape, paths);
    let output_schema = schema_fn(&shape.output, paths);
    let input_schema = match &shape.input {
        Some(param) => {
            let schema = schema_fn(&param.ty, paths);
            quote!(::core::option::Option::Some(#schema))
        }
        None => quote!(::core::option::Option::None),
    };
    let (linkme, slice) = (paths.linkme(), paths.endpoints());
    let (ty, parts, pipeline, policy_error) = (
        paths.helper("Endpoint"),
        paths.helper("EndpointParts"),
        paths.pipeline(),
        paths.policy_error(),
    );
    quote! {
        #[#linkme::distributed_slice(#slice)]
        #[linkme(crate = #linkme)]
        static #endpoint: #ty = #parts {
            path: #path,
            name: #name,
            rust_path: ::core::concat!(::core::module_path!(), "::", #fn_name),
            description: #description,
            model: #model,
            stream: #stream,
            durable: #durable,
            policies: #policies,
            handler: #handler,
            pipeline: &#cell,
            input_schema: #input_schema,
            output_schema: #output_schema,
        }
        .into_endpoint();
        static #cell: ::std::sync::OnceLock<
            ::core::result::Result<#pipeline, #policy_error>,
        > = ::std::sync::OnceLock::new();
    }
}

/// A `SchemaFn` for `ty`: its JSON Schema when it implements `JsonSchema`, "any JSON"
/// otherwise (autoref specialization, resolved here where the type is concrete).
fn schema_fn(ty: &syn::Type, paths: &Paths) -> TokenStream {
    let (of, typed, unknown) = (
        paths.helper("SchemaOf"),
        paths.helper("SchemaFromJsonSchema"),
        paths.helper("SchemaUnknown"),
    );
    quote! {
        |generator| {
            #[allow(unused_imports)]
            use #typed as _;
            #[allow(unused_imports)]
            use #unknown as _;
            (&&#of::<#ty>(::core::marker::PhantomData)).schema_fn()(generator)
        }
    }
}

/// What the registry shows of an endpoint, with the defaults filled in.
struct Metadata {
    /// The fn's name, unescaped (`r#match` is `match`).
    fn_name: String,
    name: LitStr,
    path: LitStr,
    description: LitStr,
    /// `Option<&str>` tokens.
    model: TokenStream,
}

impl Metadata {
    fn new(func: &ItemFn, args: &Args) -> Self {
        let ident = &func.sig.ident;
        let fn_name = ident.unraw().to_string();
        let or_default = |given: &Option<LitStr>, default: String| match given {
            Some(given) => given.clone(),
            None => LitStr::new(&default, ident.span()),
        };
        let model = match &args.model {
            Some(model) => quote!(::core::option::Option::Some(#model)),
            None => quote!(::core::option::Option::None),
        };
        Metadata {
            name: or_default(&args.name, fn_name.clone()),
            path: or_default(&args.path, format!("/{fn_name}")),
            description: or_default(&args.description, doc_text(&func.attrs)),
            model,
            fn_name,
        }
    }
}

/// The fn's doc comment: its lines trimmed and joined, or `""`.
fn doc_text(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter_map(|attr| match &attr.meta {
            Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    lines.join("\n").trim().to_owned()
}

/// `|| -> Result<EndpointPolicies, PolicyError>`: each declared policy, built.
fn policies_fn(func: &ItemFn, args: &Args, paths: &Paths) -> TokenStream {
    let ident = &func.sig.ident;
    let policies = local("policies");
    let fields = policy_fields(args, &policies, paths);
    let endpoint_policies = paths.endpoint_policies();
    let build = if fields.is_empty() {
        quote!(::core::result::Result::Ok(
            ::core::default::Default::default()
        ))
    } else {
        quote! {
            // The fields of a `#[non_exhaustive]` struct, which another crate cannot
            // build with a literal.
            #[allow(clippy::field_reassign_with_default)]
            let mut #policies = <#endpoint_policies as ::core::default::Default>::default();
            #(#fields)*
            ::core::result::Result::Ok(#policies)
        }
    };
    quote! {
        || {
            // The registry reaches the annotated fn's body through this static, not
            // through its name; naming it keeps `dead_code` from flagging an endpoint
            // that is only served, never called directly.
            let _ = #ident;
            #build
        }
    }
}

/// `policies.<field> = ...;` for each declared policy.
fn policy_fields(args: &Args, policies: &Ident, paths: &Paths) -> Vec<TokenStream> {
    let declared = [
        ("retry", args.retry.as_ref().map(|s| RETRY.build(s, paths))),
        (
            "circuit_breaker",
            args.circuit_breaker
                .as_ref()
                .map(|s| CIRCUIT_BREAKER.build(s, paths)),
        ),
        (
            "timeout",
            args.timeout.as_ref().map(|s| TIMEOUT.build(s, paths)),
        ),
        (
            "fallback",
            args.fallback
                .as_ref()
                .map(|s| policies::build_fallback(s, args.model.as_ref(), paths)),
        ),
        (
            "rate_limit",
            args.rate_limit.as_ref().map(|s| RATE_LIMIT.build(s, paths)),
        ),
    ];
    let mut fields: Vec<TokenStream> = declared
        .into_iter()
        .filter_map(|(field, value)| {
            let field = Ident::new(field, Span::call_site());
            let value = value?;
            Some(quote!(#policies.#field = ::core::option::Option::Some(#value);))
        })
        .collect();
    if !args.breakers_for.is_empty() {
        let breakers = args.breakers_for.iter().map(|(model, settings)| {
            let policy = CIRCUIT_BREAKER.build_declared(settings, paths);
            quote!((::std::string::String::from(#model), #policy))
        });
        fields.push(quote!(#policies.circuit_breakers = ::std::vec![#(#breakers),*];));
    }
    fields
}

/// The JSON handler: decode, run in the given pipeline, encode.
fn handler(func: &ItemFn, shape: &Shape, paths: &Paths) -> TokenStream {
    let (decode_input, encode_output) =
        (paths.helper("decode_input"), paths.helper("encode_output"));
    let run = run_ident();
    let (pipeline, request, json) = (local("pipeline"), local("request"), local("json"));
    let (input, output) = (local("input"), local("output"));
    let (param, decode) = match &shape.input {
        Some(param) => {
            let ty = &param.ty;
            let decode = quote_spanned! {located_on(ty)=>
                let #input = #decode_input::<#ty>(#json)?;
            };
            (quote!(#json), decode)
        }
        // An endpoint without input ignores the request's JSON.
        None => (quote!(_), TokenStream::new()),
    };
    let input = shape.input.as_ref().map(|_| &input);
    let ty = &shape.output;
    let encode = quote_spanned! {located_on(ty)=>
        #encode_output::<#ty>(&#output)
    };
    // The handler's future must be `Send`; if the body's is not, say so at the fn's name.
    let future = quote_spanned! {func.sig.ident.span()=>
        ::std::boxed::Box::pin(async move {
            #decode
            let #output = #run(#pipeline, #request, #input).await?;
            #encode
        })
    };
    quote!(|#pipeline, #request, #param| #future)
}
