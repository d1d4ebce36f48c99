//! `x-request-id`: echoed when the client sends one, generated otherwise, on every
//! response (errors, 404s and streams included).

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// `x-request-id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-sent id echoed as is; longer ones are replaced.
const MAX_LEN: usize = 128;

/// A new id: 32 random hex digits.
fn generate() -> HeaderValue {
    let id = format!("{:032x}", fastrand::u128(..));
    HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("0"))
}

/// Sets the request's id (so handlers and logs see it) and echoes it on the response.
pub(crate) async fn middleware(mut request: Request, next: Next) -> Response {
    let id = match request.headers().get(&X_REQUEST_ID) {
        Some(id) if !id.is_empty() && id.len() <= MAX_LEN && id.to_str().is_ok() => id.clone(),
        _ => generate(),
    };
    request.headers_mut().insert(X_REQUEST_ID, id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(X_REQUEST_ID, id);
    response
}
