//! Who is calling: the user and tenant of a request, for per-user and per-tenant limits
//! and for `ctx.user()` / `ctx.tenant()` in the body.
//!
//! - Without API keys, the user comes from the `X-User-Id` header and the tenant from
//!   `X-Tenant-Id` (the names are configurable with
//!   [`App::identity_headers`](super::App::identity_headers)). Nothing authenticates
//!   them: per-user limits then hold for well-behaved callers only.
//! - Once [API keys](super::App::api_key) are configured, the key says who calls and the
//!   headers are ignored: the tenant is the key's, the user is the key's for a
//!   [`user_key`](super::App::user_key) and none otherwise. Rotating a header no longer
//!   makes a new user. Behind a gateway that sets the headers itself,
//!   [`App::trust_identity_headers`](super::App::trust_identity_headers) believes them
//!   again (a key's tenant still wins).
//! - A key that is not in the map is refused with 401 `auth_error`; a request without a
//!   key is refused the same way only when [`App::require_api_key`](super::App::require_api_key)
//!   is on.
//!
//! Values longer than 256 bytes, or not visible ASCII/UTF-8, are refused with 400.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::Response;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::status::{Refused, plain_error};
use crate::error::ErrorClass;

/// The longest user or tenant id accepted.
const MAX_ID_LEN: usize = 256;

/// The configured API keys, held as SHA-256 digests. A lookup hashes the presented key
/// first, so how long the map takes depends on a digest, which tells a guesser nothing
/// about how close a guess came; and the process holds no tenant key in clear.
#[derive(Clone, Default)]
pub(crate) struct ApiKeys(HashMap<[u8; 32], KeyOwner>);

impl ApiKeys {
    pub(crate) fn insert(&mut self, key: &str, owner: KeyOwner) {
        self.0.insert(digest(key), owner);
    }

    pub(crate) fn get(&self, key: &str) -> Option<&KeyOwner> {
        self.0.get(&digest(key))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// How requests are identified (see the [module](self) docs).
#[derive(Clone)]
pub(crate) struct IdentityConfig {
    pub(crate) user_header: HeaderName,
    pub(crate) tenant_header: HeaderName,
    pub(crate) api_keys: ApiKeys,
    pub(crate) require_api_key: bool,
    /// Whether `X-User-Id` / `X-Tenant-Id` are believed; `None`: only while no API key is
    /// configured.
    pub(crate) trust_headers: Option<bool>,
    /// The key that opens `GET /endpoints` and `GET /metrics`, if any.
    pub(crate) operator_key: Option<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            user_header: HeaderName::from_static("x-user-id"),
            tenant_header: HeaderName::from_static("x-tenant-id"),
            api_keys: ApiKeys::default(),
            require_api_key: false,
            trust_headers: None,
            operator_key: None,
        }
    }
}

impl fmt::Debug for IdentityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are secrets: only their count is shown.
        f.debug_struct("IdentityConfig")
            .field("user_header", &self.user_header)
            .field("tenant_header", &self.tenant_header)
            .field("api_keys", &self.api_keys.len())
            .field("require_api_key", &self.require_api_key)
            .field("trust_headers", &self.trusts_headers())
            .field("operator_key", &self.operator_key.is_some())
            .finish()
    }
}

/// Who an API key belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyOwner {
    pub(crate) tenant: Arc<str>,
    pub(crate) user: Option<Arc<str>>,
}

/// The caller of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Caller {
    pub(crate) user: Option<Arc<str>>,
    pub(crate) tenant: Option<Arc<str>>,
}

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

impl IdentityConfig {
    /// Whether any API key is configured.
    pub(crate) fn has_api_keys(&self) -> bool {
        !self.api_keys.is_empty()
    }

    /// The caller of a request with `headers`, or the response refusing it.
    pub(crate) fn resolve(&self, headers: &HeaderMap) -> Result<Caller, Refused> {
        // Untrusted headers are not even read: a caller cannot pick who it is.
        let (mut user, mut tenant) = if self.trusts_headers() {
            (
                read_id(headers, &self.user_header)?,
                read_id(headers, &self.tenant_header)?,
            )
        } else {
            (None, None)
        };
        if !self.api_keys.is_empty() {
            match presented_key(headers) {
                Some(key) => match self.api_keys.get(key) {
                    Some(owner) => {
                        tenant = Some(owner.tenant.clone());
                        if owner.user.is_some() || !self.trusts_headers() {
                            user.clone_from(&owner.user);
                        }
                    }
                    None => {
                        return Err(Refused::new(
                            StatusCode::UNAUTHORIZED,
                            ErrorClass::AuthError,
                            "the API key is not valid",
                        ));
                    }
                },
                None if self.require_api_key => {
                    return Err(Refused::new(
                        StatusCode::UNAUTHORIZED,
                        ErrorClass::AuthError,
                        "an API key is required: send `Authorization: Bearer <key>` or `X-Api-Key: <key>`",
                    ));
                }
                None => {}
            }
        }
        Ok(Caller { user, tenant })
    }
}

impl IdentityConfig {
    /// Whether the identity headers are believed: as configured, else only while no API
    /// key is configured (once keys identify callers, a header must not override them).
    pub(crate) fn trusts_headers(&self) -> bool {
        self.trust_headers.unwrap_or(self.api_keys.is_empty())
    }

    /// Whether a request with `headers` may read the operator routes (`/endpoints`,
    /// `/metrics`), or the response refusing it. With an operator key, only that key opens
    /// them; without one they are open, unless API keys are required: then the app's
    /// policies, models and traffic are not shown to whoever holds a tenant key.
    #[allow(clippy::result_large_err)]
    pub(crate) fn operator_access(&self, headers: &HeaderMap) -> Result<(), Response> {
        match &self.operator_key {
            Some(expected) => match presented_key(headers) {
                Some(key) if same_secret(key, expected) => Ok(()),
                _ => Err(plain_error(
                    StatusCode::UNAUTHORIZED,
                    ErrorClass::AuthError,
                    "this operator route needs the operator key: send `Authorization: Bearer <operator key>` or `X-Api-Key: <operator key>`",
                )),
            },
            None if self.require_api_key => Err(plain_error(
                StatusCode::NOT_FOUND,
                ErrorClass::NotFound,
                "the operator routes are off because API keys are required; set `App::operator_key` to reach them",
            )),
            None => Ok(()),
        }
    }
}

/// Compares two secrets in constant time (`subtle`, which keeps the optimiser from
/// adding an early exit), so the time taken does not tell an attacker how much of a guess
/// was right; only the length may show.
fn same_secret(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// The API key of the request, if it presents one.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION)
        && let Ok(text) = value.to_str()
        && let Some((scheme, key)) = text.trim().split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(key.trim());
    }
    headers
        .get(X_API_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn read_id(headers: &HeaderMap, name: &HeaderName) -> Result<Option<Arc<str>>, Refused> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let refuse = |why: &str| {
        Refused::new(
            StatusCode::BAD_REQUEST,
            ErrorClass::InvalidInput,
            format!("the `{name}` header {why}"),
        )
    };
    let text = value
        .to_str()
        .map_err(|_| refuse("is not visible ASCII"))?
        .trim();
    if text.len() > MAX_ID_LEN {
        return Err(refuse("is longer than 256 bytes"));
    }
    Ok((!text.is_empty()).then(|| Arc::from(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn headers_and_keys() {
        let mut config = IdentityConfig::default();
        let caller = config
            .resolve(&headers(&[("x-user-id", "ann"), ("x-tenant-id", "acme")]))
            .ok();
        assert_eq!(
            caller,
            Some(Caller {
                user: Some("ann".into()),
                tenant: Some("acme".into())
            })
        );
        let owner = |tenant: &str, user: Option<&str>| KeyOwner {
            tenant: tenant.into(),
            user: user.map(Into::into),
        };
        config.api_keys.insert("k1", owner("globex", None));
        let caller = config
            .resolve(&headers(&[
                ("authorization", "Bearer k1"),
                ("x-tenant-id", "acme"),
            ]))
            .ok();
        assert_eq!(caller.and_then(|c| c.tenant), Some("globex".into()));
        let caller = config.resolve(&headers(&[("x-api-key", "k1")])).ok();
        assert_eq!(caller.and_then(|c| c.tenant), Some("globex".into()));
        let refused = config.resolve(&headers(&[("x-api-key", "nope")]));
        assert_eq!(
            refused.err().map(|r| r.status),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert!(config.resolve(&HeaderMap::new()).is_ok());
        config.require_api_key = true;
        assert!(config.resolve(&HeaderMap::new()).is_err());
    }

    #[test]
    fn with_keys_the_key_not_the_headers_says_who_calls() {
        let mut config = IdentityConfig::default();
        config.api_keys.insert(
            "k-ann",
            KeyOwner {
                tenant: "acme".into(),
                user: Some("ann".into()),
            },
        );
        config.api_keys.insert(
            "k-acme",
            KeyOwner {
                tenant: "acme".into(),
                user: None,
            },
        );
        let forged = [("x-user-id", "mallory"), ("x-tenant-id", "globex")];
        let as_ann = [&forged[..], &[("x-api-key", "k-ann")]].concat();
        assert_eq!(
            config.resolve(&headers(&as_ann)).ok(),
            Some(Caller {
                user: Some("ann".into()),
                tenant: Some("acme".into())
            })
        );
        let tenant_only = [&forged[..], &[("x-api-key", "k-acme")]].concat();
        assert_eq!(
            config.resolve(&headers(&tenant_only)).ok(),
            Some(Caller {
                user: None,
                tenant: Some("acme".into())
            })
        );
        // Behind a gateway that sets the headers itself, they can be trusted again.
        config.trust_headers = Some(true);
        let caller = config.resolve(&headers(&tenant_only)).ok();
        assert_eq!(caller.and_then(|c| c.user), Some("mallory".into()));
    }
}
