//! Reading a generated data set's ground truth back: which of two responses a user
//! prefers, from `users.jsonl` (group or weights) and the responses' `attributes`. The
//! onboarding evaluation uses it to answer the pairs SuggestSurvey proposes as the
//! simulated user would.

use copl_core::data::{Response, UserTruth};

use super::text::AdviceLevels;

/// Whether `user` prefers `a` to `b` under the generator's noiseless rule: a UF-P group
/// follows its attribute, `short`/`long` the summary length in characters, a weighted
/// user Σ wᵢ·attributeᵢ in [`AdviceLevels::NAMES`] order. `None` when the data carries
/// no usable truth for them, or on a tie.
pub fn prefers(user: &UserTruth, a: &Response, b: &Response) -> Option<bool> {
    let utility = |r: &Response| -> Option<f64> {
        let attributes = r.attributes.as_ref()?;
        if let Some(weights) = &user.weights {
            return AdviceLevels::NAMES
                .iter()
                .zip(weights)
                .map(|(name, w)| Some(w * attributes.get(*name)?))
                .sum();
        }
        match user.group.as_deref()? {
            "short" => Some(-*attributes.get("chars")?),
            "long" => attributes.get("chars").copied(),
            group => attributes.get(group).copied(),
        }
    };
    let d = utility(a)? - utility(b)?;
    (d.abs() > 1e-9).then_some(d > 0.0)
}
