//! The part of a text the tokeniser reads: at most about what the token limit can keep,
//! so an input's cost is bounded by the limit, not by its size (issue #15: a 4 MB
//! response with `truncate` took ≈ 2 s of tokeniser time and ≈ 500 MB, tokenised whole
//! twice before any length check).
//!
//! A text is cut only when it is longer than the first window (`limit` ×
//! [`BYTES_PER_TOKEN`] bytes): the window is tokenised alone and grown ×4 until it
//! yields [`MARGIN`] tokens more than the limit (or is the whole text). The limit's
//! tokens then lie away from the cut, where the window tokenises as the whole text does
//! (a tokeniser's pieces depend only on nearby text), so the truncated input is the one
//! the whole text gives.

/// Bytes a first window reads per token of the limit. English runs ≈ 4–5 bytes a
/// WordPiece or SentencePiece token; text with fewer tokens per byte (long runs of
/// spaces, which tokenise to nothing) grows the window.
pub const BYTES_PER_TOKEN: usize = 8;

/// Tokens beyond the limit a cut window must yield.
pub const MARGIN: usize = 16;

/// Which end of a text the input keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The response: its start is scored, its tail goes first.
    Head,
    /// The prompt: the context nearest the response stays, its start goes first.
    Tail,
}

/// `text`, or the window of it at the `keep` end that holds more than `limit` tokens
/// by `count` (the tokens of a text alone), with the window's count when it was cut
/// (`None`: the whole text, not counted).
pub fn window<E>(
    text: &str,
    limit: usize,
    keep: Keep,
    count: impl Fn(&str) -> Result<usize, E>,
) -> Result<(&str, Option<usize>), E> {
    let mut bytes = limit.saturating_mul(BYTES_PER_TOKEN).max(256);
    while bytes < text.len() {
        let cut = match keep {
            Keep::Head => &text[..floor_char_boundary(text, bytes)],
            Keep::Tail => &text[ceil_char_boundary(text, text.len() - bytes)..],
        };
        let tokens = count(cut)?;
        if tokens >= limit.saturating_add(MARGIN) {
            return Ok((cut, Some(tokens)));
        }
        bytes = bytes.saturating_mul(4);
    }
    Ok((text, None))
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    (0..=at)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

fn ceil_char_boundary(text: &str, at: usize) -> usize {
    (at..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words as tokens.
    fn words(t: &str) -> Result<usize, ()> {
        Ok(t.split_whitespace().count())
    }

    #[test]
    fn a_short_text_is_read_whole_without_counting() {
        let text = "a few words";
        let never = |_: &str| -> Result<usize, ()> { panic!("counted a short text") };
        assert_eq!(window(text, 64, Keep::Head, never), Ok((text, None)));
    }

    #[test]
    fn a_long_text_is_cut_at_the_end_the_input_keeps_with_tokens_to_spare() {
        let text = "wörd ".repeat(100_000); // 600 000 bytes, 2-byte characters inside
        for keep in [Keep::Head, Keep::Tail] {
            let (cut, tokens) = window(&text, 128, keep, words).unwrap_or_default();
            assert_eq!(tokens, words(cut).ok());
            assert!(tokens.unwrap_or(0) >= 128 + MARGIN);
            assert!(
                cut.len() <= 128 * BYTES_PER_TOKEN,
                "{} bytes read",
                cut.len()
            );
            match keep {
                Keep::Head => assert!(text.starts_with(cut)),
                Keep::Tail => assert!(text.ends_with(cut)),
            }
        }
    }

    #[test]
    fn text_with_few_tokens_per_byte_grows_the_window_and_may_be_read_whole() {
        // Spaces tokenise to nothing: the window grows ×4 until it holds enough words.
        let text = format!("{}{}", " ".repeat(50_000), "word ".repeat(200));
        let (cut, tokens) = window(&text, 128, Keep::Tail, words).unwrap_or_default();
        assert!(tokens.unwrap_or(0) >= 128 + MARGIN && text.ends_with(cut));
        let (all, tokens) = window(&text, 1000, Keep::Head, words).unwrap_or_default();
        assert_eq!(tokens, None);
        assert_eq!(all.len(), text.len());
    }
}
