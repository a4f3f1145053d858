//! The codec every generated `copl.v1` service and client uses: prost's, with one bound
//! checked *before* a message is decoded — no field of a message's top level may occur
//! more than [`max_field_occurrences`] times.
//!
//! Why (issue #15): a repeated field's empty entry is 2 bytes on the wire but a whole
//! struct once decoded (a `ScoreItem` of three `String`s, ≈ 72 bytes), so a 4 MiB
//! ScoreBatch of empty items decoded to ≈ 285 MB before `max_batch_items` could be looked
//! at. The scan here reads tags and lengths only (no allocation) and refuses such a
//! message with INVALID_ARGUMENT. The server sets the bound to its largest list limit
//! ([`set_max_field_occurrences`]); the exact per-field limits are still checked after
//! decoding, with messages naming the field. Clients (the bound's default: none) are
//! unaffected.

use std::{
    marker::PhantomData,
    sync::atomic::{AtomicUsize, Ordering},
};

use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

static MAX_FIELD_OCCURRENCES: AtomicUsize = AtomicUsize::new(usize::MAX);

/// How often one field may occur at a decoded message's top level (every message of
/// this process; `usize::MAX` until set).
pub fn max_field_occurrences() -> usize {
    MAX_FIELD_OCCURRENCES.load(Ordering::Relaxed)
}

/// Sets [`max_field_occurrences`] for every message this process decodes from now on.
pub fn set_max_field_occurrences(max: usize) {
    MAX_FIELD_OCCURRENCES.store(max.max(1), Ordering::Relaxed);
}

/// prost's codec with the occurrence bound on decoding.
#[derive(Debug, Clone)]
pub struct BoundedCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for BoundedCodec<T, U> {
    fn default() -> Self {
        Self { _pd: PhantomData }
    }
}

impl<T, U> Codec for BoundedCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = BoundedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        BoundedDecoder {
            inner: ProstDecoder::default(),
        }
    }
}

/// prost's decoder behind [`over_bound`].
#[derive(Debug)]
pub struct BoundedDecoder<U> {
    inner: ProstDecoder<U>,
}

impl<U: prost::Message + Default> Decoder for BoundedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        use bytes::Buf;
        let max = max_field_occurrences();
        // A gRPC message arrives whole in one contiguous buffer, so the chunk is all of it.
        if max != usize::MAX
            && buf.chunk().len() == buf.remaining()
            && let Some(field) = over_bound(buf.chunk(), max)
        {
            let message = std::any::type_name::<U>()
                .rsplit("::")
                .next()
                .unwrap_or("message");
            let name = field_name(message, field).unwrap_or_else(|| format!("field {field}"));
            return Err(Status::invalid_argument(format!(
                "{name}: more than {max} entries, more than any list this server accepts \
                 (nothing was decoded)"
            )));
        }
        self.inner.decode(buf)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

/// The first field number that occurs more than `max` times at the top level of the
/// encoded message `bytes`; None when none does, or where the bytes stop parsing (prost's
/// decode then reports the malformation).
pub fn over_bound(mut bytes: &[u8], max: usize) -> Option<u64> {
    let mut counts: Vec<(u64, usize)> = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let skip = match key & 7 {
            0 => {
                varint(&mut bytes)?;
                0
            }
            1 => 8,
            2 => usize::try_from(varint(&mut bytes)?).ok()?,
            5 => 4,
            _ => return None, // groups (deprecated) or invalid: prost decides
        };
        bytes = bytes.get(skip..)?;
        let field = key >> 3;
        let count = match counts.iter_mut().find(|(f, _)| *f == field) {
            Some((_, n)) => n,
            None => {
                counts.push((field, 0));
                &mut counts.last_mut()?.1
            }
        };
        *count += 1;
        if *count > max {
            return Some(field);
        }
    }
    None
}

/// The name of field `number` of the `copl.v1` message `message`, from the file
/// descriptor set (read on this error path only).
fn field_name(message: &str, number: u64) -> Option<String> {
    use prost::Message;
    let set = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).ok()?;
    set.file
        .iter()
        .flat_map(|f| &f.message_type)
        .find(|m| m.name() == message)?
        .field
        .iter()
        .find(|f| u64::try_from(f.number()).ok() == Some(number))
        .map(|f| f.name().to_string())
}

/// Reads one base-128 varint off the front of `bytes`.
fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{ScoreBatchRequest, ScoreItem};
    use prost::Message;

    #[test]
    fn counts_top_level_occurrences_only_and_stops_at_the_first_field_over() {
        let items = |n: usize, text: &str| ScoreBatchRequest {
            items: (0..n)
                .map(|_| ScoreItem {
                    response: text.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        // Empty items: two bytes each on the wire.
        let empty = items(1000, "").encode_to_vec();
        assert_eq!(over_bound(&empty, 999), Some(1));
        assert_eq!(over_bound(&empty, 1000), None);
        // Nested fields are not counted: one item with a long text is one occurrence.
        let long = items(1, &"word ".repeat(10_000)).encode_to_vec();
        assert_eq!(over_bound(&long, 1), None);
        // Truncated bytes: left to prost, which refuses them.
        assert_eq!(over_bound(&empty[..empty.len() - 1], usize::MAX), None);
        assert!(ScoreBatchRequest::decode(&long[..long.len() - 1]).is_err());
    }

    #[test]
    fn the_refusal_names_the_field() {
        assert_eq!(field_name("ScoreBatchRequest", 1).as_deref(), Some("items"));
        assert_eq!(
            field_name("OnboardUserRequest", 2).as_deref(),
            Some("answers")
        );
        assert_eq!(field_name("ScoreBatchRequest", 99), None);
        assert_eq!(field_name("NoSuchMessage", 1), None);
    }

    #[test]
    fn varints_of_every_length_parse() {
        for value in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut bytes = Vec::new();
            prost::encoding::encode_varint(value, &mut bytes);
            let mut slice = &bytes[..];
            assert_eq!(varint(&mut slice), Some(value));
            assert!(slice.is_empty());
        }
        assert_eq!(varint(&mut &[0x80u8, 0x80][..]), None);
    }
}
