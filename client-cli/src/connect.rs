//! Where `copl` connects and how: the address (`host:port` or a URL), the timeout, TLS
//! (the CA to trust, and a client certificate for mutual TLS) and the API key.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use copl_proto::v1::reward_service_client::RewardServiceClient;
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::{exit::Failure, key::ApiKey};

/// The connection flags every verb shares.
#[derive(clap::Args, Clone)]
pub struct Target {
    /// Server address: `host:port` (https when --ca-cert or --cert is given, else http)
    /// or a URL (`http://…`, `https://…`).
    #[arg(
        long,
        global = true,
        env = "COPL_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub addr: String,
    /// Seconds to wait for the connection, and for each call.
    #[arg(long, global = true, default_value_t = 5.0)]
    pub timeout: f64,
    /// API key, sent as `authorization: Bearer <key>` (servers with auth configured).
    #[arg(long, global = true, env = "COPL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// PEM CA certificate to trust for a TLS server.
    #[arg(long, global = true, env = "COPL_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (the server's `tls.client_ca` signed it);
    /// with --key.
    #[arg(long, global = true, env = "COPL_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, global = true, env = "COPL_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Name the server's certificate must carry [default: the address's host].
    #[arg(long, global = true)]
    pub tls_domain: Option<String>,
}

pub type Api = RewardServiceClient<InterceptedService<Channel, ApiKey>>;

/// An open channel and the key its calls carry.
pub struct Connection {
    pub channel: Channel,
    pub key: ApiKey,
}

impl Connection {
    pub fn api(&self) -> Api {
        RewardServiceClient::with_interceptor(self.channel.clone(), self.key.clone())
    }
}

impl Target {
    /// The URL to dial: `addr` as given when it has a scheme; else `https://addr` when a
    /// certificate flag asks for TLS, `http://addr` otherwise.
    pub fn url(&self) -> String {
        if self.addr.contains("://") {
            self.addr.clone()
        } else if self.ca_cert.is_some() || self.cert.is_some() {
            format!("https://{}", self.addr)
        } else {
            format!("http://{}", self.addr)
        }
    }

    pub async fn connect(&self) -> Result<Connection> {
        let key = ApiKey::new(self.api_key.as_deref())?;
        let url = self.url();
        let timeout = Duration::from_secs_f64(self.timeout.max(0.001));
        let mut endpoint = Endpoint::from_shared(url.clone())
            .with_context(|| format!("--addr {:?} is not an address", self.addr))?
            .connect_timeout(timeout)
            .timeout(timeout);
        if url.starts_with("https://") {
            endpoint = endpoint.tls_config(self.tls()?).context("TLS settings")?;
        } else if self.cert.is_some() {
            bail!("--cert is for TLS: {url} is plaintext (use https:// or host:port)");
        }
        let channel = endpoint.connect().await.map_err(|e| Failure::Connection {
            addr: url.clone(),
            cause: error_chain(&e),
        })?;
        Ok(Connection { channel, key })
    }

    fn tls(&self) -> Result<ClientTlsConfig> {
        let Some(ca) = &self.ca_cert else {
            bail!(
                "{} is TLS: give --ca-cert FILE (the CA that signed its certificate)",
                self.url()
            );
        };
        let read = |flag: &str, path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("{flag} {}", path.display()))
        };
        let mut tls =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--ca-cert", ca)?));
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            tls = tls.identity(Identity::from_pem(
                read("--cert", cert)?,
                read("--key", key)?,
            ));
        }
        if let Some(domain) = &self.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        Ok(tls)
    }
}

/// `e` and its causes on one line (tonic's transport error says little on its own).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(addr: &str, ca: bool, cert: bool) -> Target {
        Target {
            addr: addr.into(),
            timeout: 1.0,
            api_key: None,
            ca_cert: ca.then(|| "ca.pem".into()),
            cert: cert.then(|| "c.pem".into()),
            key: cert.then(|| "k.pem".into()),
            tls_domain: None,
        }
    }

    #[test]
    fn a_bare_host_and_port_gets_the_scheme_its_flags_ask_for() {
        assert_eq!(
            target("localhost:50051", false, false).url(),
            "http://localhost:50051"
        );
        assert_eq!(
            target("localhost:50051", true, false).url(),
            "https://localhost:50051"
        );
        assert_eq!(
            target("10.0.0.7:443", true, true).url(),
            "https://10.0.0.7:443"
        );
        assert_eq!(target("http://h:1", true, false).url(), "http://h:1");
        assert_eq!(target("https://h:1", false, false).url(), "https://h:1");
    }
}
