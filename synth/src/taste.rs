//! Users' ground-truth tastes in the generator: a UF-P group (one attribute), a TL;DR
//! length preference, or a PersonalLLM-like mixture of the four attributes; how they are
//! drawn and which response of a pair each prefers (noiseless: annotation noise is
//! added where pairs are annotated).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};

use super::{
    Preset, SynthConfig, SynthError,
    catalogue::{Node, Pair},
    config_error,
};

/// A user's ground-truth preference.
#[derive(Clone, Debug)]
pub(super) enum Taste {
    Group(usize),
    Weights([f64; 4]),
}

/// Every user's taste, seen users first (groups in `group_ratio`, shuffled; mixtures
/// from a Dirichlet(0.1)), then the unseen ones; `true` marks an unseen user.
pub(super) fn assign_tastes(
    rng: &mut ChaCha8Rng,
    config: &SynthConfig,
) -> Result<Vec<(Taste, bool)>, SynthError> {
    let groups = config.preset.groups().len();
    let mut tastes = Vec::with_capacity(config.users + config.unseen_users);
    if groups == 0 {
        let gamma =
            Gamma::<f64>::new(0.1, 1.0).map_err(|e| config_error("dirichlet", e.to_string()))?;
        for i in 0..config.users + config.unseen_users {
            let mut w = [0.0; 4];
            for x in &mut w {
                *x = gamma.sample(rng).max(1e-12);
            }
            let sum: f64 = w.iter().sum();
            tastes.push((Taste::Weights(w.map(|x| x / sum)), i >= config.users));
        }
        return Ok(tastes);
    }
    let ratio = config
        .group_ratio
        .clone()
        .unwrap_or_else(|| vec![1.0; groups]);
    let total: f64 = ratio.iter().sum();
    let mut counts: Vec<usize> = ratio
        .iter()
        .map(|r| (r / total * config.users as f64).floor() as usize)
        .collect();
    let mut g = 0;
    while counts.iter().sum::<usize>() < config.users {
        counts[g % groups] += 1;
        g += 1;
    }
    let mut seen: Vec<usize> = counts
        .iter()
        .enumerate()
        .flat_map(|(g, &c)| std::iter::repeat_n(g, c))
        .collect();
    seen.shuffle(rng);
    tastes.extend(seen.into_iter().map(|g| (Taste::Group(g), false)));
    tastes.extend((0..config.unseen_users).map(|i| (Taste::Group(i % groups), true)));
    Ok(tastes)
}

/// The taste's utility of a response (higher is preferred).
pub(super) fn utility(preset: Preset, taste: &Taste, attributes: &[f64]) -> f64 {
    match (preset, taste) {
        (Preset::Tldr, Taste::Group(0)) => -attributes[0],
        (Preset::Tldr, Taste::Group(_)) => attributes[0],
        (_, Taste::Group(g)) => attributes[*g],
        (_, Taste::Weights(w)) => w.iter().zip(attributes).map(|(w, x)| w * x).sum(),
    }
}

/// Whether the taste prefers `a` over `b`; `None` on a tie.
pub(super) fn prefers(preset: Preset, taste: &Taste, nodes: &[Node], pair: Pair) -> Option<bool> {
    let d = utility(preset, taste, &nodes[pair.a].attributes)
        - utility(preset, taste, &nodes[pair.b].attributes);
    (d.abs() > 1e-9).then_some(d > 0.0)
}

/// Seen users per group.
pub(super) fn group_sizes(preset: Preset, tastes: &[(Taste, bool)]) -> BTreeMap<String, usize> {
    let mut sizes = BTreeMap::new();
    for (taste, unseen) in tastes {
        if let (Taste::Group(g), false) = (taste, unseen) {
            *sizes.entry(preset.groups()[*g].to_string()).or_insert(0) += 1;
        }
    }
    sizes
}
