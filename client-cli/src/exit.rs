//! The exit codes of `copl`, grpc_health_probe's convention (docs/operations.md):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (`health`: SERVING) |
//! | 1 | bad arguments or input (flags, an answers file) |
//! | 2 | connection failure (nothing answering, TLS handshake refused, connect timeout) |
//! | 3 | the call failed (any gRPC error but a timeout; the message names the code) |
//! | 4 | the call timed out (`--timeout`, DEADLINE_EXCEEDED) |
//! | 20 | `health`: the service answered, and is not SERVING |
//! | 21 | `info --also`: the replicas serve different checkpoints |

use tonic::Code;

pub const USAGE: u8 = 1;
pub const CONNECTION: u8 = 2;
pub const RPC: u8 = 3;
pub const TIMEOUT: u8 = 4;
pub const NOT_SERVING: u8 = 20;
pub const DIVERGED: u8 = 21;

/// Why a command failed, as far as its exit code goes.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("cannot connect to {addr}: {cause}")]
    Connection { addr: String, cause: String },
    /// A refused or failed call: the RPC, the gRPC code and the server's message.
    #[error("{call}: {code:?}: {message}")]
    Rpc {
        call: &'static str,
        code: Code,
        message: String,
    },
    #[error("{service:?} is not serving ({status})")]
    NotServing { service: String, status: String },
    /// Replicas that should serve one checkpoint serve several.
    #[error("the replicas serve different checkpoints: {0}")]
    Diverged(String),
}

/// A call's `Status` as a [`Failure`] naming the call (`.map_err(refused("Score"))`).
pub fn refused(call: &'static str) -> impl FnOnce(tonic::Status) -> anyhow::Error {
    move |s| {
        Failure::Rpc {
            call,
            code: s.code(),
            message: s.message().to_string(),
        }
        .into()
    }
}

/// The exit code of a failed command: its [`Failure`]'s, else 1 (bad input: a flag, a
/// file, a header value).
pub fn code_of(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<Failure>() {
        Some(Failure::Connection { .. }) => CONNECTION,
        Some(Failure::Rpc { code, message, .. }) if is_timeout(*code, message) => TIMEOUT,
        Some(Failure::Rpc { .. }) => RPC,
        Some(Failure::NotServing { .. }) => NOT_SERVING,
        Some(Failure::Diverged(_)) => DIVERGED,
        None => USAGE,
    }
}

/// DEADLINE_EXCEEDED, or the client's own `--timeout` (tonic answers CANCELLED "Timeout
/// expired" when its timer fires first).
fn is_timeout(code: Code, message: &str) -> bool {
    code == Code::DeadlineExceeded || (code == Code::Cancelled && message.contains("Timeout"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_code() {
        let rpc = |code, message: &str| {
            anyhow::Error::new(Failure::Rpc {
                call: "Score",
                code,
                message: message.into(),
            })
        };
        assert_eq!(code_of(&rpc(Code::NotFound, "user")), RPC);
        assert_eq!(code_of(&rpc(Code::DeadlineExceeded, "late")), TIMEOUT);
        assert_eq!(code_of(&rpc(Code::Cancelled, "Timeout expired")), TIMEOUT);
        assert_eq!(code_of(&rpc(Code::Cancelled, "client went away")), RPC);
        let connection = Failure::Connection {
            addr: "http://x:1".into(),
            cause: "refused".into(),
        };
        assert_eq!(code_of(&connection.into()), CONNECTION);
        let down = Failure::NotServing {
            service: String::new(),
            status: "NOT_SERVING".into(),
        };
        assert_eq!(code_of(&down.into()), NOT_SERVING);
        assert_eq!(code_of(&anyhow::anyhow!("--answer x: write A>B")), USAGE);
        // Context around a failure keeps its code.
        let wrapped = anyhow::Error::new(Failure::NotServing {
            service: "s".into(),
            status: "UNKNOWN".into(),
        })
        .context("health");
        assert_eq!(code_of(&wrapped), NOT_SERVING);
    }
}
