//! The CoPL-serve wire contract.
//!
//! `proto/copl/v1/reward.proto` is the single definition of the wire; this crate holds
//! the tonic/prost code generated from it and the encoded file descriptor set that the
//! server hands to gRPC reflection.

pub mod codec;

/// Package `copl.v1`: the `RewardService` and its messages.
pub mod v1 {
    #![allow(clippy::all, missing_docs, rust_2018_idioms)]
    tonic::include_proto!("copl.v1");
}

/// Encoded `FileDescriptorSet` of every `copl.v1` file, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("copl_v1_descriptor");
