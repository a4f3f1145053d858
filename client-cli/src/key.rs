//! API keys: the interceptor that sends one, and `copl key`'s new keys and digests (the
//! server stores only sha256 digests: docs/security.md).

use anyhow::{Context, Result};

/// Adds `authorization: Bearer <key>` to every call when a key is given.
#[derive(Clone)]
pub struct ApiKey(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl ApiKey {
    pub fn new(key: Option<&str>) -> Result<Self> {
        key.map(|k| {
            format!("Bearer {k}")
                .parse()
                .context("--api-key: not a valid header value")
        })
        .transpose()
        .map(Self)
    }
}

impl tonic::service::Interceptor for ApiKey {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// 32 random bytes (rand's thread generator: a CSPRNG seeded from the OS), as `copl_` + hex.
pub fn new_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("copl_{}", hex::encode(bytes))
}

pub fn hex_digest(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// What `copl keygen` prints: a new key and the digest a server's configuration takes.
#[derive(serde::Serialize)]
pub struct Keys {
    pub key: String,
    pub sha256: String,
}

impl Keys {
    pub fn new() -> Self {
        let key = new_key();
        Self {
            sha256: hex_digest(&key),
            key,
        }
    }
}

impl std::fmt::Display for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key:    {}\nsha256: {}", self.key, self.sha256)
    }
}
