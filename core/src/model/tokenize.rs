//! Tokenisation of `(prompt, response)` items for the reward model: the template, the
//! token limit, and truncation that keeps the scored response (split from `reward`).

use super::{
    reward::{InputError, RewardModel, Tokens},
    window::{Keep, window},
};

impl RewardModel {
    /// Tokenises `(prompt, response)` items with the template, unpadded. An item longer
    /// than `max_tokens` is refused (`truncate = false`, naming it) or cut: the prompt
    /// loses its start first, the response's tail only when the response alone is over.
    pub fn tokenize(
        &self,
        items: &[(&str, &str)],
        truncate: bool,
    ) -> Result<Vec<Tokens>, InputError> {
        Ok(self
            .tokenize_limited(items, self.config.max_tokens, truncate)?
            .into_iter()
            .map(|(tokens, _)| tokens)
            .collect())
    }

    /// As [`Self::tokenize`] with a limit of its own (at most the model's `max_tokens`),
    /// also returning each item's length before truncation. A text far longer than the
    /// limit is read only in the window the limit can keep ([`super::window`]): its
    /// length is then the window's, a lower bound, and its cost is bounded by the limit.
    pub fn tokenize_limited(
        &self,
        items: &[(&str, &str)],
        limit: usize,
        truncate: bool,
    ) -> Result<Vec<(Tokens, usize)>, InputError> {
        let limit = limit.min(self.config.max_tokens);
        let mut rows = Vec::with_capacity(items.len());
        for (index, &(prompt, response)) in items.iter().enumerate() {
            let tokenizer_error = |e: tokenizers::Error| InputError::Tokenizer {
                index,
                message: e.to_string(),
            };
            let count = |text: &str| {
                self.tokenizer
                    .encode(text, false)
                    .map(|e| e.get_ids().len())
                    .map_err(tokenizer_error)
            };
            let (response, response_cut) = window(response, limit, Keep::Head, count)?;
            let (prompt, prompt_cut) = window(prompt, limit, Keep::Tail, count)?;
            if let (Some(tokens), false) = (response_cut.or(prompt_cut), truncate) {
                // The window alone holds more than the limit: so does the whole text.
                return Err(InputError::TooLong {
                    index,
                    tokens,
                    limit,
                    at_least: true,
                });
            }
            let encode = |prompt: &str| {
                self.tokenizer
                    .encode(self.config.template.input(prompt, response), true)
                    .map_err(tokenizer_error)
            };
            let mut encoding = encode(prompt)?;
            let length = encoding.get_ids().len();
            if length > limit {
                if !truncate {
                    return Err(InputError::TooLong {
                        index,
                        tokens: length,
                        limit,
                        at_least: false,
                    });
                }
                encoding = self.trim_prompt(prompt, encoding, limit, &encode, tokenizer_error)?;
            }
            let mut ids = encoding.get_ids().to_vec();
            let mut type_ids = encoding.get_type_ids().to_vec();
            // The response alone is over the limit: its tail goes.
            ids.truncate(limit);
            type_ids.truncate(limit);
            rows.push((Tokens { ids, type_ids }, length));
        }
        Ok(rows)
    }

    /// Truncation keeps the response, which is what is scored: the prompt loses tokens
    /// from its start (the context nearest the response stays) until the input fits
    /// `limit` or the prompt is gone. Returns the encoding of the shortened input.
    fn trim_prompt<E>(
        &self,
        prompt: &str,
        mut encoding: tokenizers::Encoding,
        limit: usize,
        encode: &impl Fn(&str) -> Result<tokenizers::Encoding, InputError>,
        tokenizer_error: E,
    ) -> Result<tokenizers::Encoding, InputError>
    where
        E: Fn(tokenizers::Error) -> InputError,
    {
        let pieces = self
            .tokenizer
            .encode(prompt, false)
            .map_err(tokenizer_error)?;
        let offsets = pieces.get_offsets();
        let mut dropped = 0;
        while encoding.get_ids().len() > limit && dropped < offsets.len() {
            // Dropping k prompt tokens shortens the input by about k.
            dropped = (dropped + encoding.get_ids().len() - limit).min(offsets.len());
            let start = offsets.get(dropped).map_or(prompt.len(), |o| o.0);
            let start = (start..=prompt.len())
                .find(|&i| prompt.is_char_boundary(i))
                .unwrap_or(prompt.len());
            encoding = encode(&prompt[start..])?;
        }
        Ok(encoding)
    }
}
