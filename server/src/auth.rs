//! API keys with two roles (docs/security.md): a *scoring* key may call Score,
//! ScoreBatch, ScoreStream, CompareResponses, GetUser, SuggestSurvey and Info; an *admin*
//! key may also call OnboardUser and DeleteUser. A key travels as `authorization: Bearer
//! <key>`; the server keeps only the keys' sha256 (from the configuration), so a leaked
//! config file does not leak keys. Health and reflection stay open. With no key
//! configured, authentication is off.
//!
//! [`Guarded`] checks the key from the HTTP/2 headers *before* the body is read or
//! decoded: a request without a valid key costs its headers only (a 4 MiB ScoreBatch
//! sent without a key cost ≈ 285 MB of decoded items before UNAUTHENTICATED when the
//! check ran in the handler; issue #15).

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use futures_util::future::{Either, Ready, ready};
use http::HeaderValue;
use sha2::{Digest, Sha256};
use tonic::{Status, body::Body, server::NamedService};

use crate::in_flight::InFlight;

/// What a call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Scoring,
    Admin,
}

/// The configured keys (sha256 digests).
#[derive(Clone, Debug, Default)]
pub struct Auth {
    scoring: Vec<[u8; 32]>,
    admin: Vec<[u8; 32]>,
}

impl Auth {
    /// From the hex digests of `auth.scoring_keys_sha256` and `auth.admin_keys_sha256`;
    /// a malformed digest is an error naming the setting and its position.
    pub fn from_digests(scoring: &[String], admin: &[String]) -> anyhow::Result<Self> {
        let parse = |setting: &str, digests: &[String]| {
            digests
                .iter()
                .enumerate()
                .map(|(i, hex_digest)| {
                    let bytes = hex::decode(hex_digest.trim()).ok();
                    bytes
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "setting {setting}[{i}]: not a sha256 digest (64 hex digits; \
                                 `copl keygen` prints a key and its digest)"
                            )
                        })
                })
                .collect::<anyhow::Result<Vec<_>>>()
        };
        Ok(Self {
            scoring: parse("auth.scoring_keys_sha256", scoring)?,
            admin: parse("auth.admin_keys_sha256", admin)?,
        })
    }

    pub fn enabled(&self) -> bool {
        !(self.scoring.is_empty() && self.admin.is_empty())
    }

    /// Admits a call with the `authorization` header `header` to an RPC named `rpc` that
    /// needs `needed`: UNAUTHENTICATED without a valid key, PERMISSION_DENIED for a
    /// scoring key on an admin RPC.
    pub fn check(
        &self,
        header: Option<&HeaderValue>,
        rpc: &str,
        needed: Role,
    ) -> Result<(), Status> {
        if !self.enabled() {
            return Ok(());
        }
        let header = header
            .ok_or_else(|| {
                Status::unauthenticated(format!(
                    "{rpc}: this server needs an API key: send `authorization: Bearer <key>`"
                ))
            })?
            .to_str()
            .map_err(|_| Status::unauthenticated(format!("{rpc}: authorization: not text")))?;
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                Status::unauthenticated(format!("{rpc}: authorization: expected `Bearer <key>`"))
            })?
            .trim();
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Every digest is compared in full, so the time taken does not depend on which
        // configured key (if any) matches.
        let matches = |set: &[[u8; 32]]| {
            set.iter()
                .fold(false, |found, d| found | constant_time_eq(d, &digest))
        };
        let (admin, scoring) = (matches(&self.admin), matches(&self.scoring));
        match (needed, admin, scoring) {
            (_, true, _) | (Role::Scoring, false, true) => Ok(()),
            (Role::Admin, false, true) => Err(Status::permission_denied(format!(
                "{rpc} needs an admin key; this key may only score"
            ))),
            _ => Err(Status::unauthenticated(format!(
                "{rpc}: the API key is not valid"
            ))),
        }
    }
}

/// The role each RPC of `copl.v1.RewardService` needs (docs/security.md), with the
/// method's name for the metrics; a method the service does not have needs a scoring key
/// (the router then answers UNIMPLEMENTED to a caller holding one).
pub fn role_of(method: &str) -> (&'static str, Role) {
    match method {
        "OnboardUser" => ("OnboardUser", Role::Admin),
        "DeleteUser" => ("DeleteUser", Role::Admin),
        "ReloadCheckpoint" => ("ReloadCheckpoint", Role::Admin),
        "Score" => ("Score", Role::Scoring),
        "ScoreBatch" => ("ScoreBatch", Role::Scoring),
        "ScoreStream" => ("ScoreStream", Role::Scoring),
        "CompareResponses" => ("CompareResponses", Role::Scoring),
        "GetUser" => ("GetUser", Role::Scoring),
        "SuggestSurvey" => ("SuggestSurvey", Role::Scoring),
        "Info" => ("Info", Role::Scoring),
        _ => ("unknown", Role::Scoring),
    }
}

/// A gRPC service behind [`Auth`]: every call's key is checked from its headers (path
/// `/<service>/<method>`, role by [`role_of`]) before the inner service reads the body;
/// a refusal is answered at once as a gRPC status and counted under the method's name.
/// Then the call takes a permit of the server-wide bound on calls in flight
/// ([`InFlight`]), held until its response body ends; without one it is answered
/// RESOURCE_EXHAUSTED, also before its body is read.
#[derive(Clone, Debug)]
pub struct Guarded<S> {
    inner: S,
    auth: Arc<Auth>,
    in_flight: InFlight,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, auth: Arc<Auth>, in_flight: InFlight) -> Self {
        Self {
            inner,
            auth,
            in_flight,
        }
    }
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower_service::Service<http::Request<B>> for Guarded<S>
where
    S: tower_service::Service<
            http::Request<B>,
            Response = http::Response<Body>,
            Error = Infallible,
        >,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Either<
        Ready<Result<http::Response<Body>, Infallible>>,
        Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = request.uri().path().rsplit('/').next().unwrap_or_default();
        let (rpc, role) = role_of(method);
        let admitted = self
            .auth
            .check(request.headers().get("authorization"), rpc, role)
            .and_then(|()| self.in_flight.admit());
        match admitted {
            Ok(permit) => {
                let call = self.inner.call(request);
                Either::Right(Box::pin(async move {
                    let response = call.await?;
                    Ok(crate::in_flight::holding(response, permit))
                }))
            }
            Err(refused) => {
                crate::telemetry::observe(rpc, started, &Err::<(), _>(refused.clone()));
                Either::Left(ready(Ok(refused.into_http())))
            }
        }
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The sha256 hex digest of `key` (what the configuration holds).
#[cfg(test)]
pub fn digest_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderValue {
        value.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn roles_and_failures() {
        let auth = Auth::from_digests(&[digest_hex("score-key")], &[digest_hex("admin-key")])
            .unwrap_or_else(|e| panic!("{e}"));
        let code = |h: Option<&str>, role| {
            auth.check(h.map(header).as_ref(), "X", role)
                .err()
                .map(|s| s.code())
        };
        use tonic::Code::{PermissionDenied, Unauthenticated};
        assert_eq!(code(Some("Bearer score-key"), Role::Scoring), None);
        assert_eq!(code(Some("Bearer admin-key"), Role::Scoring), None);
        assert_eq!(code(Some("Bearer admin-key"), Role::Admin), None);
        assert_eq!(
            code(Some("Bearer score-key"), Role::Admin),
            Some(PermissionDenied)
        );
        assert_eq!(
            code(Some("Bearer wrong"), Role::Scoring),
            Some(Unauthenticated)
        );
        assert_eq!(
            code(Some("score-key"), Role::Scoring),
            Some(Unauthenticated)
        );
        assert_eq!(code(None, Role::Scoring), Some(Unauthenticated));
        let open = Auth::default();
        assert!(open.check(None, "X", Role::Admin).is_ok());
    }

    #[test]
    fn a_bad_digest_is_refused_naming_the_setting() {
        let e = Auth::from_digests(&[], &["abc".into()])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("setting auth.admin_keys_sha256[0]"), "{e}");
    }
}
