//! Request ids: every call carries one through the log and back to its caller. A
//! client's `x-request-id` (printable ASCII, at most [`MAX_LEN`] bytes) is kept;
//! otherwise the server makes one. The id is the `request_id` field of the call's
//! tracing span (every log line a handler writes carries it), the `x-request-id`
//! response header of every answer, and the tail of an INTERNAL message, so an operator
//! can find the log lines of a failure a client reports.

use std::sync::atomic::{AtomicU64, Ordering};

use tonic::{
    Status,
    metadata::{AsciiMetadataValue, MetadataMap},
};

/// The header both ways.
pub const HEADER: &str = "x-request-id";

/// The longest client id kept (a longer one is replaced, not refused).
pub const MAX_LEN: usize = 128;

/// One call's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(String);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl RequestId {
    /// The client's id from `metadata` when it is usable, else a new one.
    pub fn of(metadata: &MetadataMap) -> Self {
        Self::from_header(metadata.get(HEADER).and_then(|v| v.to_str().ok()))
    }

    /// The id a request's `x-request-id` value gives (`None`: no header), by the same
    /// rule: the client's when usable, else a new one.
    pub fn from_header(value: Option<&str>) -> Self {
        value
            .filter(|v| !v.is_empty() && v.len() <= MAX_LEN)
            .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(Self::new, |v| Self(v.to_string()))
    }

    /// A new id: 16 hex digits, unique in this process (a counter from a clock-seeded
    /// start, so ids of a restarted server do not repeat its earlier ones).
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let start = *START.get_or_init(|| super::rand_seed().rotate_left(17));
        Self(format!(
            "{:016x}",
            start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
        ))
    }

    /// Sets the response header.
    pub fn set_on(&self, metadata: &mut MetadataMap) {
        if let Ok(value) = AsciiMetadataValue::try_from(self.0.as_str()) {
            metadata.insert(HEADER, value);
        }
    }

    /// `status` with the id: in the header, and for INTERNAL at the end of the message
    /// (what a client quotes when it reports a failure).
    pub fn tag(&self, status: Status) -> Status {
        let mut metadata = status.metadata().clone();
        self.set_on(&mut metadata);
        let message = if status.code() == tonic::Code::Internal {
            format!("{} (request id {self})", status.message())
        } else {
            status.message().to_string()
        };
        Status::with_details_and_metadata(
            status.code(),
            message,
            status.details().to_vec().into(),
            metadata,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_usable_client_id_is_kept_and_any_other_replaced() {
        let mut m = MetadataMap::new();
        assert_eq!(RequestId::of(&m).0.len(), 16);
        m.insert(HEADER, "job-7/step-12".parse().unwrap());
        assert_eq!(RequestId::of(&m).to_string(), "job-7/step-12");
        m.insert(HEADER, "a b".parse().unwrap());
        assert_ne!(RequestId::of(&m).to_string(), "a b");
        m.insert(HEADER, "x".repeat(MAX_LEN + 1).parse().unwrap());
        assert_eq!(RequestId::of(&m).0.len(), 16);
        let (a, b) = (RequestId::new(), RequestId::new());
        assert_ne!(a, b);
    }

    #[test]
    fn an_internal_status_names_its_id_and_every_status_carries_it() {
        let id = RequestId("r-1".into());
        let internal = id.tag(Status::internal("storing user \"u\" failed"));
        assert_eq!(
            internal.message(),
            "storing user \"u\" failed (request id r-1)"
        );
        assert_eq!(internal.metadata().get(HEADER).unwrap(), "r-1");
        let invalid = id.tag(Status::invalid_argument("prompt: empty"));
        assert_eq!(invalid.message(), "prompt: empty");
        assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
        assert_eq!(invalid.metadata().get(HEADER).unwrap(), "r-1");
    }
}
