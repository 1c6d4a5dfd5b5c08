//! The handler API: one trait, three shapes of input, and their type-erased form for adapters.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Body, Context, Error};

/// A boxed, sendable future, as adapters receive them from a type-erased handler.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that answers an input with an output, given the invocation's [`Context`].
///
/// Every `async fn(In, Context) -> Result<Out, E>` (and closure of that shape) with
/// `E: Into<Error>` is a handler already. Implement the trait on a struct to keep state built once
/// at start-up (a client, a cache):
///
/// ```
/// use fnkit_core::{Context, Error, Handler};
///
/// struct Greeter { greeting: String }
///
/// impl Handler<String, String> for Greeter {
///     async fn call(&self, name: String, _ctx: Context) -> Result<String, Error> {
///         Ok(format!("{}, {name}!", self.greeting))
///     }
/// }
/// ```
///
/// Which shape a handler is — typed JSON, raw HTTP ([`http()`]) or CloudEvent ([`events()`]) — is
/// said when it is passed to `fnkit::run`.
pub trait Handler<In, Out>: Send + Sync + 'static {
    /// Handles one input.
    fn call(&self, input: In, ctx: Context) -> impl Future<Output = Result<Out, Error>> + Send;
}

impl<F, Fut, In, Out, E> Handler<In, Out> for F
where
    F: Fn(In, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Out, E>> + Send,
    E: Into<Error>,
{
    fn call(&self, input: In, ctx: Context) -> impl Future<Output = Result<Out, Error>> + Send {
        let fut = self(input, ctx);
        async move { fut.await.map_err(Into::into) }
    }
}

/// The input of a typed handler before it is deserialised: JSON bytes (an HTTP body, a Lambda
/// payload, binary-mode CloudEvent data) or an already parsed JSON value (structured CloudEvent
/// data).
#[derive(Debug, Clone)]
pub enum Payload {
    /// JSON text. An empty body is read as `null`.
    Bytes(Bytes),
    /// A parsed JSON value.
    Json(serde_json::Value),
}

impl Payload {
    /// Deserialises the payload into `T`.
    ///
    /// ```
    /// use fnkit_core::adapter::Payload;
    /// #[derive(serde::Deserialize, Debug)]
    /// struct Order { id: u64 }
    ///
    /// let err = Payload::Bytes(r#"{"id":"seven"}"#.into()).deserialize::<Order>().unwrap_err();
    /// assert!(err.message().contains("`id`"), "{err}");
    /// ```
    ///
    /// # Errors
    /// An [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error whose message names
    /// the path of the offending field, or says the JSON is malformed.
    pub fn deserialize<T: DeserializeOwned>(self) -> Result<T, Error> {
        // The fast path parses without tracking where it is; only input that fails is parsed
        // again with serde_path_to_error, for a message naming the field (a key allocation per
        // field on every request otherwise: BENCHMARKS.md, issue 12).
        match self {
            Self::Bytes(bytes) => {
                let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
                    b"null"
                } else {
                    &bytes
                };
                serde_json::from_slice(text).or_else(|_| {
                    let mut de = serde_json::Deserializer::from_slice(text);
                    let value = serde_path_to_error::deserialize(&mut de).map_err(input_error)?;
                    de.end().map_err(|e| {
                        Error::invalid_input(format!("malformed JSON: {e}")).with_source(e)
                    })?;
                    Ok(value)
                })
            }
            Self::Json(value) => match T::deserialize(&value) {
                Ok(v) => Ok(v),
                Err(_) => serde_path_to_error::deserialize(value).map_err(input_error),
            },
        }
    }
}

fn input_error(e: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let message = match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("malformed JSON: {inner}")
        }
        _ if path == "." => format!("input does not fit: {inner}"),
        _ => format!("input does not fit at `{path}`: {inner}"),
    };
    Error::invalid_input(message).with_source(inner)
}

/// A typed handler with its input and output types erased: JSON in, JSON out.
pub trait TypedFunction: Send + Sync + 'static {
    /// Deserialises `input`, runs the handler, and serialises its output as JSON.
    fn call(&self, input: Payload, ctx: Context) -> BoxFuture<'_, Result<Vec<u8>, Error>>;
}

/// An HTTP handler: `http::Request<Body>` in, `http::Response<Body>` out.
pub trait HttpFunction: Send + Sync + 'static {
    /// Runs the handler.
    fn call(
        &self,
        req: http::Request<Body>,
        ctx: Context,
    ) -> BoxFuture<'_, Result<http::Response<Body>, Error>>;
}

/// A CloudEvent handler: an event in, maybe an event out.
#[cfg(feature = "cloudevents")]
pub trait EventFunction: Send + Sync + 'static {
    /// Runs the handler.
    fn call(
        &self,
        event: cloudevents::Event,
        ctx: Context,
    ) -> BoxFuture<'_, Result<Option<cloudevents::Event>, Error>>;
}

/// What `fnkit::run` accepts: a handler of any of the three shapes.
///
/// Implemented for every typed handler, for [`http()`] and for [`events()`]; you never implement
/// or name it (`M` only tells the shapes apart). The shape is resolved at compile time, so a
/// binary links only what its handler's shape needs on each platform.
pub trait IntoFunction<M> {
    /// Hands the type-erased handler to the `visitor` method of its shape.
    #[doc(hidden)]
    fn visit<V: ShapeVisitor>(self, visitor: V) -> V::Output;
}

/// Receives a handler by its shape, from [`IntoFunction::visit`]. Runtimes implement it to start
/// the serving loop of that shape.
pub trait ShapeVisitor {
    /// What visiting returns.
    type Output;
    /// A typed handler.
    fn typed(self, function: Arc<dyn TypedFunction>) -> Self::Output;
    /// An HTTP handler.
    fn http(self, function: Arc<dyn HttpFunction>) -> Self::Output;
    /// A CloudEvent handler.
    #[cfg(feature = "cloudevents")]
    fn event(self, function: Arc<dyn EventFunction>) -> Self::Output;
}

struct Typed<H, In, Out>(H, PhantomData<fn(In) -> Out>);

impl<H, In, Out> TypedFunction for Typed<H, In, Out>
where
    H: Handler<In, Out>,
    In: DeserializeOwned + Send + 'static,
    Out: Serialize + Send + 'static,
{
    fn call(&self, input: Payload, ctx: Context) -> BoxFuture<'_, Result<Vec<u8>, Error>> {
        Box::pin(async move {
            let input: In = input.deserialize()?;
            let output = self.0.call(input, ctx).await?;
            serde_json::to_vec(&output).map_err(Error::internal)
        })
    }
}

/// Marks the typed shape in [`IntoFunction`].
#[derive(Debug)]
pub struct TypedShape<In, Out>(PhantomData<fn(In) -> Out>);

impl<H, In, Out> IntoFunction<TypedShape<In, Out>> for H
where
    H: Handler<In, Out>,
    In: DeserializeOwned + Send + 'static,
    Out: Serialize + Send + 'static,
{
    fn visit<V: ShapeVisitor>(self, visitor: V) -> V::Output {
        visitor.typed(Arc::new(Typed(self, PhantomData)))
    }
}

/// An HTTP handler, made with [`http()`].
#[derive(Debug, Clone)]
pub struct Http<H>(H);

/// Says that `handler` takes the raw HTTP request:
/// `async fn(http::Request<Body>, Context) -> Result<http::Response<Body>, E>`.
///
/// On Lambda the request comes from an API Gateway, ALB or Function URL event.
pub fn http<H>(handler: H) -> Http<H>
where
    H: Handler<http::Request<Body>, http::Response<Body>>,
{
    Http(handler)
}

impl<H> HttpFunction for Http<H>
where
    H: Handler<http::Request<Body>, http::Response<Body>>,
{
    fn call(
        &self,
        req: http::Request<Body>,
        ctx: Context,
    ) -> BoxFuture<'_, Result<http::Response<Body>, Error>> {
        Box::pin(self.0.call(req, ctx))
    }
}

/// Marks the HTTP shape in [`IntoFunction`].
#[derive(Debug)]
pub struct HttpShape;

impl<H> IntoFunction<HttpShape> for Http<H>
where
    H: Handler<http::Request<Body>, http::Response<Body>>,
{
    fn visit<V: ShapeVisitor>(self, visitor: V) -> V::Output {
        visitor.http(Arc::new(self))
    }
}

/// A CloudEvent handler, made with [`events()`].
#[cfg(feature = "cloudevents")]
#[derive(Debug, Clone)]
pub struct Events<H>(H);

/// Says that `handler` takes CloudEvents:
/// `async fn(cloudevents::Event, Context) -> Result<Option<cloudevents::Event>, E>`.
///
/// Over HTTP it accepts binary, structured and batched mode; on Lambda a structured event or an
/// EventBridge event. Returning `None` answers `202 Accepted` with no body.
#[cfg(feature = "cloudevents")]
pub fn events<H>(handler: H) -> Events<H>
where
    H: Handler<cloudevents::Event, Option<cloudevents::Event>>,
{
    Events(handler)
}

#[cfg(feature = "cloudevents")]
impl<H> EventFunction for Events<H>
where
    H: Handler<cloudevents::Event, Option<cloudevents::Event>>,
{
    fn call(
        &self,
        event: cloudevents::Event,
        ctx: Context,
    ) -> BoxFuture<'_, Result<Option<cloudevents::Event>, Error>> {
        Box::pin(self.0.call(event, ctx))
    }
}

/// Marks the CloudEvent shape in [`IntoFunction`].
#[cfg(feature = "cloudevents")]
#[derive(Debug)]
pub struct EventShape;

#[cfg(feature = "cloudevents")]
impl<H> IntoFunction<EventShape> for Events<H>
where
    H: Handler<cloudevents::Event, Option<cloudevents::Event>>,
{
    fn visit<V: ShapeVisitor>(self, visitor: V) -> V::Output {
        visitor.event(Arc::new(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FunctionInfo, Platform};

    fn ctx() -> Context {
        Context::new(
            Arc::new(FunctionInfo::from_lookup(Platform::Local, |_| None)),
            "r",
        )
    }

    #[derive(serde::Deserialize)]
    struct Order {
        id: u64,
        #[allow(dead_code)]
        lines: Vec<Line>,
    }
    #[derive(serde::Deserialize)]
    struct Line {
        #[allow(dead_code)]
        qty: u32,
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        // A one-shot executor for futures that never wait on I/O.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    async fn double(n: i64, _ctx: Context) -> Result<i64, Error> {
        Ok(n * 2)
    }

    /// The type-erased form of a typed handler, as `fnkit::run` hands it to a runtime.
    fn typed<M>(f: impl IntoFunction<M>) -> Arc<dyn TypedFunction> {
        struct Typed;
        impl ShapeVisitor for Typed {
            type Output = Arc<dyn TypedFunction>;
            fn typed(self, f: Arc<dyn TypedFunction>) -> Self::Output {
                f
            }
            fn http(self, _: Arc<dyn HttpFunction>) -> Self::Output {
                panic!("expected a typed function, got an HTTP one")
            }
            #[cfg(feature = "cloudevents")]
            fn event(self, _: Arc<dyn EventFunction>) -> Self::Output {
                panic!("expected a typed function, got a CloudEvent one")
            }
        }
        f.visit(Typed)
    }

    #[test]
    fn an_async_fn_is_a_typed_function() {
        let f = typed(double);
        let out = block_on(f.call(Payload::Bytes("21".into()), ctx())).unwrap();
        assert_eq!(out, b"42");
        let out = block_on(f.call(Payload::Json(serde_json::json!(4)), ctx())).unwrap();
        assert_eq!(out, b"8");
    }

    #[test]
    fn a_closure_with_its_own_error_type_is_a_typed_function() {
        let f = typed(|s: String, _ctx: Context| async move {
            if s.is_empty() {
                Err("empty")
            } else {
                Ok(s.len())
            }
        });
        assert_eq!(
            block_on(f.call(Payload::Bytes(r#""abc""#.into()), ctx())).unwrap(),
            b"3"
        );
        let err = block_on(f.call(Payload::Bytes(r#""""#.into()), ctx())).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Handler);
    }

    #[test]
    fn a_struct_with_state_is_a_handler() {
        struct Add(i64);
        impl Handler<i64, i64> for Add {
            async fn call(&self, n: i64, _ctx: Context) -> Result<i64, Error> {
                Ok(n + self.0)
            }
        }
        let f = typed(Add(10));
        assert_eq!(
            block_on(f.call(Payload::Bytes("1".into()), ctx())).unwrap(),
            b"11"
        );
    }

    #[test]
    fn bad_input_names_the_field_path() {
        let err = Payload::Bytes(r#"{"id":1,"lines":[{"qty":"x"}]}"#.into())
            .deserialize::<Order>()
            .err()
            .unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.message().contains("`lines[0].qty`"), "{err}");

        let err = Payload::Bytes(r#"{"lines":[]}"#.into())
            .deserialize::<Order>()
            .err()
            .unwrap();
        assert!(err.message().contains("missing field `id`"), "{err}");
    }

    #[test]
    fn malformed_json_says_so() {
        let err = Payload::Bytes(r#"{"id":"#.into())
            .deserialize::<Order>()
            .err()
            .unwrap();
        assert!(err.message().starts_with("malformed JSON"), "{err}");
        let err = Payload::Bytes(r#"{"id":1,"lines":[]} trailing"#.into())
            .deserialize::<Order>()
            .err()
            .unwrap();
        assert!(err.message().starts_with("malformed JSON"), "{err}");
    }

    #[test]
    fn an_empty_body_reads_as_null() {
        let v: Option<u8> = Payload::Bytes(Bytes::new()).deserialize().unwrap();
        assert_eq!(v, None);
        let v: () = Payload::Bytes(" \n".into()).deserialize().unwrap();
        assert_eq!(v, ());
    }

    /// Names the shape it is handed.
    struct Which;
    impl ShapeVisitor for Which {
        type Output = &'static str;
        fn typed(self, _: Arc<dyn TypedFunction>) -> &'static str {
            "typed"
        }
        fn http(self, _: Arc<dyn HttpFunction>) -> &'static str {
            "http"
        }
        #[cfg(feature = "cloudevents")]
        fn event(self, _: Arc<dyn EventFunction>) -> &'static str {
            "event"
        }
    }

    #[test]
    fn visit_hands_each_shape_to_its_own_method() {
        assert_eq!(double.visit(Which), "typed");
        let echo = |req: http::Request<Body>, _ctx: Context| async move {
            Ok::<_, Error>(http::Response::new(req.into_body()))
        };
        assert_eq!(http(echo).visit(Which), "http");
        #[cfg(feature = "cloudevents")]
        {
            let relay =
                |e: cloudevents::Event, _ctx: Context| async move { Ok::<_, Error>(Some(e)) };
            assert_eq!(events(relay).visit(Which), "event");
        }
    }

    #[test]
    fn order_is_used() {
        let o: Order = Payload::Bytes(r#"{"id":3,"lines":[]}"#.into())
            .deserialize()
            .unwrap();
        assert_eq!(o.id, 3);
    }
}
