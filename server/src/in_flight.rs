//! The server-wide bound on calls in flight (`limits.max_calls_in_flight`), beside
//! HTTP/2's per-connection `max_concurrent_streams`: many connections could otherwise
//! hold `connections × max_concurrent_streams` calls at once, each with a decoded body
//! of up to `max_message_bytes`. A call takes a permit before its body is read
//! ([`crate::auth::Guarded`] asks for it after the key check) and keeps it until its
//! response body has ended, so an open ScoreStream counts for as long as it is open
//! (a response that has ended already, such as a trailers-only error, frees it at once).
//! Without a permit the call is answered RESOURCE_EXHAUSTED at once.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Status, body::Body};

/// Permits for calls in flight, shared by every connection.
#[derive(Clone, Debug)]
pub struct InFlight {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl InFlight {
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// A permit, or the status that refuses the call.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "the server has {} calls in flight (limits.max_calls_in_flight); retry \
                 with back-off",
                self.limit
            ))
        })
    }
}

/// `response`'s body holding `permit` until it has ended or is dropped.
pub fn holding(
    response: http::Response<Body>,
    permit: OwnedSemaphorePermit,
) -> http::Response<Body> {
    response.map(|body| {
        Body::new(Holding {
            body,
            _permit: permit,
        })
    })
}

/// A response body and the permit it holds.
struct Holding {
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that has not ended (a stream still open).
    struct Open;

    impl http_body::Body for Open {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            Poll::Pending
        }
    }

    #[test]
    fn permits_run_out_at_the_limit_and_come_back_with_the_body() {
        let in_flight = InFlight::new(2);
        let a = in_flight.admit().unwrap_or_else(|e| panic!("{e}"));
        let _b = in_flight.admit().unwrap_or_else(|e| panic!("{e}"));
        let refused = in_flight
            .admit()
            .err()
            .unwrap_or_else(|| panic!("admitted"));
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("limits.max_calls_in_flight"));
        // A response holding a permit gives it back when its body goes (a body still
        // open: tonic's `Body::new` drops a body that has already ended, and the call
        // with it).
        let response = holding(http::Response::new(Body::new(Open)), a);
        assert!(in_flight.admit().is_err());
        drop(response);
        assert!(in_flight.admit().is_ok());
    }
}
