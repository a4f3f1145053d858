//! Request checks that name the field and the value, the mapping of our errors to gRPC
//! status codes, and the `grpc-timeout` deadline.

use std::time::{Duration, Instant};

use copl_core::adapt::Answer;
use copl_proto::v1::{ResponseRef, SurveyAnswer, response_ref::Ref};
use tonic::{Request, Status, metadata::MetadataMap};

use crate::{
    scheduler::ScoreError,
    state::{Catalogue, State},
    users::UserError,
};

/// Longest user id, bytes.
pub const MAX_USER_ID_BYTES: usize = 128;

/// INVALID_ARGUMENT `field: message`.
pub fn invalid(field: impl std::fmt::Display, message: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {message}"))
}

/// A repeated field of at most `max` elements: `field: N <what>, more than <limit>`
/// (`limit` names the setting or bound, e.g. `max_batch_items = 64`).
pub fn at_most(
    field: &str,
    count: usize,
    max: usize,
    what: &str,
    limit: impl std::fmt::Display,
) -> Result<(), Status> {
    if count > max {
        Err(invalid(field, format!("{count} {what}, more than {limit}")))
    } else {
        Ok(())
    }
}

/// A text field with something in it: not empty, not only white space.
pub fn non_empty(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        Err(invalid(field, "empty"))
    } else if value.trim().is_empty() {
        Err(invalid(field, "blank (only white space)"))
    } else {
        Ok(())
    }
}

/// A user id: empty (population) or 1..=128 bytes without control characters (ids
/// end up in logs, files and Redis keys).
pub fn user_id(field: &str, value: &str) -> Result<(), Status> {
    if value.len() > MAX_USER_ID_BYTES {
        return Err(invalid(
            field,
            format!("{} bytes, more than {MAX_USER_ID_BYTES}", value.len()),
        ));
    }
    if let Some((at, c)) = value.char_indices().find(|(_, c)| c.is_control()) {
        return Err(invalid(
            field,
            format!("control character U+{:04X} at byte {at}", c as u32),
        ));
    }
    Ok(())
}

/// The status of a user error about `field`: `field: message`. A store's failure goes
/// to the log whole and to the client without its cause, which names server paths and
/// store addresses (issue #15: a data directory path reached the client).
pub fn user_status(field: &str, error: UserError) -> Status {
    match &error {
        UserError::Store(id, _) => {
            tracing::error!(field, error = %error, "user store failed");
            Status::internal(format!(
                "{field}: storing user {id:?} failed on the server (its log has the cause)"
            ))
        }
        UserError::Unavailable(id, _) => {
            tracing::warn!(field, error = %error, "user store unavailable");
            Status::unavailable(format!(
                "{field}: user {id:?}: the user store is unavailable; retry later"
            ))
        }
        UserError::NotFound(_) | UserError::Stale(_) => {
            Status::not_found(format!("{field}: {error}"))
        }
        UserError::Seen(..) => Status::failed_precondition(format!("{field}: {error}")),
        UserError::AlreadyExists(_) => Status::already_exists(format!("{field}: {error}")),
    }
}

pub fn score_status(error: ScoreError) -> Status {
    match error {
        ScoreError::Overloaded(_) => Status::resource_exhausted(error.to_string()),
        ScoreError::DeadlineExceeded => Status::deadline_exceeded(error.to_string()),
        ScoreError::ShuttingDown => Status::unavailable(error.to_string()),
        ScoreError::Model(_) => Status::internal(error.to_string()),
    }
}

/// The deadline a `grpc-timeout` header sets (e.g. `100m`, `5S`), if any. A timeout
/// too far ahead for the clock (`18446744073709551615S`; the gRPC spec allows 8 digits)
/// sets none: adding it to `Instant::now()` would overflow (issue #15: it panicked).
pub fn deadline<T>(request: &Request<T>) -> Option<Instant> {
    timeout(request.metadata()).and_then(|t| Instant::now().checked_add(t))
}

fn timeout(metadata: &MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The catalogue row a [`ResponseRef`] names; errors name `field`.
pub fn response_row(
    catalogue: &Catalogue,
    field: &str,
    reference: Option<&ResponseRef>,
) -> Result<u32, Status> {
    match reference.and_then(|r| r.r#ref.as_ref()) {
        None => Err(invalid(field, "missing (give id or text)")),
        Some(Ref::Id(id)) => catalogue
            .by_id
            .get(id)
            .copied()
            .ok_or_else(|| invalid(format!("{field}.id"), format!("unknown response {id:?}"))),
        Some(Ref::Text(text)) => {
            let rows = catalogue
                .by_text
                .get(&text.response)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let matching: Vec<u32> = rows
                .iter()
                .copied()
                .filter(|&r| {
                    text.prompt.is_empty() || catalogue.entries[r as usize].prompt == text.prompt
                })
                .collect();
            match matching.as_slice() {
                [row] => Ok(*row),
                [] => Err(invalid(
                    format!("{field}.text"),
                    "no catalogue response has this text (and prompt)",
                )),
                many => Err(invalid(
                    format!("{field}.text"),
                    format!(
                        "{} catalogue responses have this text: set prompt to choose",
                        many.len()
                    ),
                )),
            }
        }
    }
}

/// Resolves survey answers to catalogue rows (`field[i].chosen` …); both sides must
/// answer the same prompt.
pub fn answers(state: &State, field: &str, given: &[SurveyAnswer]) -> Result<Vec<Answer>, Status> {
    given
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let chosen = response_row(
                &state.catalogue,
                &format!("{field}[{i}].chosen"),
                a.chosen.as_ref(),
            )?;
            let rejected = response_row(
                &state.catalogue,
                &format!("{field}[{i}].rejected"),
                a.rejected.as_ref(),
            )?;
            if chosen == rejected {
                return Err(invalid(
                    format!("{field}[{i}]"),
                    format!(
                        "chosen and rejected are the same response {:?}",
                        state.catalogue.entries[chosen as usize].id
                    ),
                ));
            }
            let (c, r) = (
                &state.catalogue.entries[chosen as usize],
                &state.catalogue.entries[rejected as usize],
            );
            if c.prompt != r.prompt {
                return Err(invalid(
                    format!("{field}[{i}]"),
                    format!(
                        "responses {:?} and {:?} answer different prompts",
                        c.id, r.id
                    ),
                ));
            }
            Ok(Answer { chosen, rejected })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        let mut m = MetadataMap::new();
        for (value, expected) in [
            ("2H", Duration::from_secs(7200)),
            ("3M", Duration::from_secs(180)),
            ("5S", Duration::from_secs(5)),
            ("100m", Duration::from_millis(100)),
            ("7u", Duration::from_micros(7)),
            ("9n", Duration::from_nanos(9)),
        ] {
            m.insert(
                "grpc-timeout",
                value.parse().unwrap_or_else(|_| panic!("{value}")),
            );
            assert_eq!(timeout(&m), Some(expected), "{value}");
        }
        m.insert(
            "grpc-timeout",
            "5x".parse().unwrap_or_else(|_| panic!("5x")),
        );
        assert_eq!(timeout(&m), None);
    }

    /// The duration `digits` of `unit` stand for, exactly (u128 nanoseconds), if it fits
    /// a `Duration`.
    fn exact(digits: &str, unit: char) -> Option<Duration> {
        let n: u128 = digits.parse().ok()?;
        let nanos_per = match unit {
            'H' => 3_600_000_000_000u128,
            'M' => 60_000_000_000,
            'S' => 1_000_000_000,
            'm' => 1_000_000,
            'u' => 1_000,
            'n' => 1,
            _ => return None,
        };
        let nanos = n.checked_mul(nanos_per)?;
        let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
        Some(Duration::new(secs, (nanos % 1_000_000_000) as u32))
    }

    proptest::proptest! {
        /// Issue #15's property over `grpc-timeout`'s grammar (TimeoutValue: 1–8 digits,
        /// TimeoutUnit: H M S m u n): a well-formed value is honoured exactly; any other
        /// header a client can send (longer digit runs up to u64's and past it, other
        /// units, junk) is honoured, clamped or ignored, and the deadline never panics.
        #[test]
        fn any_grpc_timeout_is_honoured_clamped_or_ignored(
            digits in "[0-9]{0,24}",
            unit in "[HMSmun]|[ -~]",
            junk in "[ -~]{0,12}",
        ) {
            for value in [format!("{digits}{unit}"), format!("{digits}{unit}{junk}"), junk.clone()] {
                let mut request = Request::new(());
                let Ok(header) = value.parse() else { continue };
                request.metadata_mut().insert("grpc-timeout", header);
                let parsed = timeout(request.metadata());
                let _ = deadline(&request); // Never panics, whatever `parsed` is.
                let unit_char = unit.chars().next().unwrap_or(' ');
                let well_formed = value == format!("{digits}{unit}")
                    && (1..=8).contains(&digits.len())
                    && "HMSmun".contains(unit_char);
                if well_formed {
                    proptest::prop_assert_eq!(parsed, exact(&digits, unit_char), "{}", value);
                    proptest::prop_assert!(parsed.is_some());
                }
                // Longer digit runs: read exactly while a Duration holds them, clamped
                // (saturated to the longest Duration) past that, never wrapped round to
                // something shorter.
                if value == format!("{digits}{unit}") && digits.parse::<u64>().is_ok() {
                    match exact(&digits, unit_char) {
                        Some(e) => proptest::prop_assert_eq!(parsed, Some(e), "{}", value),
                        None if "HM".contains(unit_char) => proptest::prop_assert_eq!(
                            parsed,
                            Some(Duration::from_secs(u64::MAX)),
                            "{}",
                            value
                        ),
                        None => {}
                    }
                }
            }
        }

        /// The same over digit runs long enough to overflow an hour or a minute count
        /// (16–20 digits: what `[0-9]{0,24}` draws only now and then).
        #[test]
        fn long_hour_and_minute_counts_saturate(digits in "[1-9][0-9]{15,19}", unit in "[HM]") {
            let mut request = Request::new(());
            request.metadata_mut().insert("grpc-timeout", format!("{digits}{unit}").parse().unwrap());
            let parsed = timeout(request.metadata());
            let _ = deadline(&request);
            let unit_char = unit.chars().next().unwrap_or('H');
            match (digits.parse::<u64>(), exact(&digits, unit_char)) {
                (Ok(_), Some(e)) => proptest::prop_assert_eq!(parsed, Some(e)),
                (Ok(_), None) => proptest::prop_assert_eq!(parsed, Some(Duration::from_secs(u64::MAX))),
                (Err(_), _) => proptest::prop_assert_eq!(parsed, None),
            }
        }
    }

    #[test]
    fn a_store_failure_reaches_the_client_without_its_cause() {
        let cause = anyhow::anyhow!("creating /srv/copl/data/users/61.json.tmp: disk full");
        let status = user_status("user_id", UserError::Store("alice".into(), cause));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(
            status.message().contains("\"alice\""),
            "{}",
            status.message()
        );
        assert!(!status.message().contains("/srv"), "{}", status.message());
        let down = crate::users::store::StoreError::Unavailable(
            "connecting to redis://:secret@10.0.0.5/: refused".into(),
        );
        let status = user_status("user_id", UserError::Unavailable("bob".into(), down));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(
            status.message().contains("user store"),
            "{}",
            status.message()
        );
        assert!(!status.message().contains("secret"), "{}", status.message());
    }

    #[test]
    fn a_timeout_beyond_the_clock_sets_no_deadline_instead_of_panicking() {
        let mut request = Request::new(());
        let far = format!("{}S", u64::MAX);
        request.metadata_mut().insert(
            "grpc-timeout",
            far.parse().unwrap_or_else(|_| panic!("{far}")),
        );
        assert_eq!(deadline(&request), None);
        request.metadata_mut().insert(
            "grpc-timeout",
            "5S".parse().unwrap_or_else(|_| panic!("5S")),
        );
        assert!(deadline(&request).is_some_and(|d| d > Instant::now()));
    }
}
