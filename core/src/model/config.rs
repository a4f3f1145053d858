//! The reward model's settings as the checkpoint manifest stores them (paper §4.2): the
//! variant (CoPL, Uniform, the w/o-MoLE user token), the backbone family, MoLE's
//! experts and gates, pooling, the text template and the token limit. A leaf: the
//! checkpoint reads and writes it without knowing the model (`model::reward` builds the
//! model from it).

use serde::{Deserialize, Serialize};
use tokenizers::EncodeInput;

use super::{MoleConfig, head::Pooling};

/// The backbone's family: which model the reward model assembles, its MoLE targets,
/// pooling and template. Stored as `bert` / `gemma`; [`super::backbone::family`] is the
/// one rule that tells it from a backbone directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackboneFamily {
    /// BERT encoders (MiniLM): mean pooling, the sentence-pair template.
    Bert,
    /// Gemma decoders (gemma, gemma-2, gemma-3): last-token pooling, a chat template.
    Gemma,
}

impl std::fmt::Display for BackboneFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bert => "bert",
            Self::Gemma => "gemma",
        })
    }
}

/// The reward model's settings; the checkpoint manifest's `model` section holds them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardModelConfig {
    #[serde(default)]
    pub variant: Variant,
    /// Backbone family (the generation is read from the backbone).
    pub family: BackboneFamily,
    pub mole: MoleConfig,
    pub pooling: Pooling,
    pub template: Template,
    /// Longest templated input in tokens.
    pub max_tokens: usize,
}

/// How a (prompt, response) becomes the backbone's input. Stored in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Template {
    /// The tokenizer's own sentence-pair encoding (BERT: `[CLS] prompt [SEP] response
    /// [SEP]`, token types 0 then 1).
    Pair,
    /// One text: `format` with `{prompt}` and `{response}` replaced (chat templates).
    Format { format: String },
}

impl Template {
    pub(crate) fn input<'s>(&self, prompt: &'s str, response: &'s str) -> EncodeInput<'s> {
        match self {
            Self::Pair => (prompt, response).into(),
            Self::Format { format } => fill(format, prompt, response).into(),
        }
    }
}

/// `format` with each `{prompt}` and `{response}` placeholder replaced in one pass over
/// the format: the texts are inserted as they are, so a prompt that itself contains
/// `{response}` stays that literal text (replacing one placeholder after the other would
/// multiply the response into it: issue #15).
pub fn fill(format: &str, prompt: &str, response: &str) -> String {
    const PROMPT: &str = "{prompt}";
    const RESPONSE: &str = "{response}";
    let mut out = String::with_capacity(format.len() + prompt.len() + response.len());
    let mut rest = format;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix(PROMPT) {
            out.push_str(prompt);
            rest = after;
        } else if let Some(after) = tail.strip_prefix(RESPONSE) {
            out.push_str(response);
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Whether the model personalises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// CoPL: every user routed by the gates from their GCF embedding (eq. 8–10).
    #[default]
    Copl,
    /// The paper's Uniform baseline: one LoRA (the shared expert) for everyone, no user
    /// input; gates unused.
    Uniform,
    /// The paper's "w/o MoLE" ablation (Table 4): one LoRA (the shared expert) for
    /// everyone, and the user's GCF embedding projected into the token space and
    /// prepended as one extra token (at the first adapted layer's input: the embedding
    /// output when every layer is adapted); gates unused.
    UserToken,
}

impl Variant {
    /// Whether the gates route users (CoPL only).
    pub fn uses_gates(self) -> bool {
        self == Self::Copl
    }
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn a_template_fills_its_placeholders_once_and_leaves_the_texts_as_they_are() {
        let format = "<user>{prompt}</user><model>{response}</model>";
        assert_eq!(
            fill(format, "Why?", "Because."),
            "<user>Why?</user><model>Because.</model>"
        );
        // Placeholders inside the user's texts are text, not placeholders: the response
        // is not multiplied into the prompt, nor the prompt into the response.
        let prompt = "{response}".repeat(1000);
        let filled = fill(format, &prompt, "R");
        assert_eq!(filled.len(), format.len() - 18 + prompt.len() + 1);
        assert!(filled.starts_with("<user>{response}{response}"));
        assert_eq!(
            fill(format, "P", "{prompt}"),
            "<user>P</user><model>{prompt}</model>"
        );
        // Braces that open no placeholder, and a format without any, pass through.
        assert_eq!(fill("{a} {prompt} {", "x", "y"), "{a} x {");
        assert_eq!(fill("plain", "x", "y"), "plain");
    }
}
