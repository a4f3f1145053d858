//! `copl-train mole`: train the reward model on a data set over a checkpoint's GCF
//! embeddings and write `mole.safetensors` and the manifest's `model` section.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

use anyhow::{Context, Result, bail};
use candle_nn::VarMap;
use copl_core::{
    adapt::Adapter,
    checkpoint::{self, Manifest, ModelManifest},
    data::{Dataset, Split},
    graph::GraphIds,
    model::{
        backbone,
        reward::{BackboneFamily, RewardModel, RewardModelConfig, Variant},
    },
};
use serde::{Deserialize, Serialize};

use super::gate_init::{CentroidGates, fit_centroids, set_centroid_gates};
use super::objective::{Reweight, inverse_frequency};
use super::oracle::{ORACLE_LOGIT, OracleGroups, Routing, gate_input, set_oracle_gates};
use super::packed::train_packed;
use super::routing::RoutingProbe;
use super::train::{MoleEngine, MoleTrainConfig, MoleTraining, TextPair, accuracy, train_autograd};
use crate::gcf::pair_rows;

/// The model settings for a backbone directory ([`backbone::reward_config`]).
pub fn model_config(
    backbone_dir: &Path,
    variant: Variant,
    user_dim: usize,
    max_tokens: usize,
    adapt_layers: Option<usize>,
) -> Result<RewardModelConfig> {
    Ok(backbone::reward_config(
        backbone_dir,
        variant,
        user_dim,
        max_tokens,
        adapt_layers,
    )?)
}

/// A split's pairs as texts with their user's gate input (ê_u).
pub fn text_pairs(
    dataset: &Dataset,
    ids: &GraphIds,
    adapter: &Adapter,
    split: Split,
) -> Vec<TextPair> {
    let responses = dataset.responses();
    pair_rows(dataset, ids, split)
        .into_iter()
        .map(|(u, a, b)| TextPair {
            user: adapter.user_embedding(u).to_vec(),
            prompt: responses[a as usize].prompt.clone(),
            chosen: responses[a as usize].response.clone(),
            rejected: responses[b as usize].response.clone(),
            weight: 1.0,
        })
        .collect()
}

/// Each user's ground-truth group (`users.jsonl`'s `group`), where given.
pub fn user_groups(dataset: &Dataset) -> BTreeMap<&str, &str> {
    dataset
        .users()
        .iter()
        .filter_map(|u| Some((u.user.as_str(), u.group.as_deref()?)))
        .collect()
}

/// The groups (`users.jsonl`'s `group`) of a split's pairs' users, in
/// [`text_pairs`]' order; an error names the first user without one and what (`needs`)
/// wanted it.
pub fn pair_groups<'d>(
    dataset: &'d Dataset,
    ids: &GraphIds,
    split: Split,
    needs: &str,
) -> Result<Vec<&'d str>> {
    let groups = user_groups(dataset);
    pair_rows(dataset, ids, split)
        .into_iter()
        .map(|(u, _, _)| {
            let user = ids.users[u as usize].as_str();
            groups
                .get(user)
                .copied()
                .with_context(|| format!("users.jsonl: user {user} has no group; {needs}"))
        })
        .collect()
}

pub use super::train::spread;

/// What `copl-train mole` reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MoleSummary {
    /// The file's format (`copl_core::file_version`; absent in files before it: 1).
    #[serde(default)]
    pub format_version: copl_core::file_version::FileVersion,
    pub variant: Variant,
    pub family: BackboneFamily,
    pub train_pairs: usize,
    pub val_pairs: usize,
    pub test_pairs: usize,
    /// Who routed: the gates, or the ground truth (`--routing oracle`, a diagnostic
    /// whose run writes no reward model).
    pub routing: Routing,
    /// The oracle's groups in code order (`--routing oracle`), else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oracle_groups: Vec<String>,
    /// What `--gate-init kmeans` chose (clusters, their sizes, the logit scale).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub centroid_gates: Option<CentroidGates>,
    /// Every expert's LoRA rank (`--rank`; α = 2r). Absent in files written before
    /// 2026-12-07 (those ran the default, 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora_rank: Option<usize>,
    /// The training settings the run used (steps, pairs a step, learning rate, warm-up,
    /// …): what the report states its budget from.
    pub hyper_parameters: MoleTrainConfig,
    #[serde(flatten)]
    pub training: MoleTraining,
    /// Seen users' test pairs (`test_pairs` of them), with the best parameters.
    pub test_accuracy: f64,
}

/// Where `copl-train mole` reads and writes.
#[derive(Clone, Debug)]
pub struct MoleRun<'a> {
    pub data: &'a Path,
    /// Checkpoint with the GCF part.
    pub ckpt: &'a Path,
    /// Where the model goes (the GCF files are copied there when it is not `ckpt`).
    pub out: &'a Path,
    pub backbone: &'a Path,
    pub variant: Variant,
    pub max_tokens: usize,
    /// MoLE in the top this many layers only (None: all).
    pub adapt_layers: Option<usize>,
    /// Seen users' test pairs scored for the summary, spread evenly over the split
    /// (0 = all; `copl-train eval` scores them all).
    pub test_pairs: usize,
    /// Train (and validate, and test) on this ground-truth group's users only: one of
    /// the paper's G-Oracle models (Table 2), with the Uniform variant.
    pub group: Option<&'a str>,
    /// LoRA rank of every expert (α = 2r); None: the default 8.
    pub rank: Option<usize>,
}

/// Trains on `data` over the GCF part of `ckpt` with the backbone in `backbone`; writes
/// the model into `out`, a whole checkpoint.
pub fn run_mole(
    run: &MoleRun<'_>,
    config: &MoleTrainConfig,
    mut on_step: impl FnMut(usize, f64),
) -> Result<MoleSummary> {
    let MoleRun {
        data,
        ckpt,
        out,
        backbone: backbone_dir,
        variant,
        max_tokens,
        adapt_layers,
        test_pairs: test_limit,
        group,
        rank,
    } = *run;
    if rank == Some(0) {
        bail!("--rank must be at least 1");
    }
    if !(config.load_balance.is_finite() && config.load_balance >= 0.0) {
        bail!(
            "--load-balance must be a number >= 0, not {}",
            config.load_balance
        );
    }
    if config.load_balance > 0.0 && !variant.uses_gates() {
        bail!("--load-balance needs --variant copl: the {variant:?} variant has no gates");
    }
    if let Reweight::Focal { gamma } = config.reweight
        && !(gamma.is_finite() && gamma >= 0.0)
    {
        bail!("--focal-gamma must be a number >= 0, not {gamma}");
    }
    let oracle = config.routing.is_oracle();
    let soft = config.routing == Routing::OracleSoft;
    if oracle && variant != Variant::Copl {
        bail!("--routing oracle needs --variant copl: the {variant:?} variant has no gates");
    }
    if oracle && config.load_balance > 0.0 {
        bail!("--routing oracle with --load-balance: the oracle's gates do not train");
    }
    if soft && config.engine == MoleEngine::Packed {
        bail!(
            "--routing oracle-soft weighs every expert; the packed engine routes top-1: use \
             --engine autograd (auto picks it)"
        );
    }
    let kmeans_gates = config
        .gate_init
        .kmeans(variant == Variant::Copl && !oracle)?;
    if config.gate_clusters.is_some() && !kmeans_gates {
        bail!("--gate-clusters is the number of k-means clusters of --gate-init kmeans");
    }
    if group.is_some() && config.reweight == Reweight::InverseFrequency {
        bail!("--reweight inverse-frequency with --group: one group has nothing to re-weight");
    }
    let dataset = Dataset::load(data).map_err(anyhow::Error::new)?;
    let (adapter, ids) =
        Adapter::from_checkpoint(ckpt).with_context(|| format!("loading {}", ckpt.display()))?;
    // A split's pairs, only the `group`'s users' with `--group`.
    let split_pairs = |split: Split| -> Result<Vec<TextPair>> {
        let pairs = text_pairs(&dataset, &ids, &adapter, split);
        let Some(group) = group else {
            return Ok(pairs);
        };
        let groups = pair_groups(
            &dataset,
            &ids,
            split,
            "--group trains on one group's users and needs every seen user's",
        )?;
        Ok(pairs
            .into_iter()
            .zip(groups)
            .filter(|(_, g)| *g == group)
            .map(|(p, _)| p)
            .collect())
    };
    if let Some(group) = group {
        let known: BTreeSet<&str> = user_groups(&dataset).into_values().collect();
        if !known.contains(group) {
            bail!(
                "--group {group}: no user of {} is in that group (groups: {})",
                data.display(),
                known.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let mut train_pairs = split_pairs(Split::Train)?;
    if config.reweight == Reweight::InverseFrequency {
        let groups = pair_groups(
            &dataset,
            &ids,
            Split::Train,
            "inverse-frequency re-weighting needs one for every seen user (--reweight focal \
             needs none)",
        )?;
        for (pair, weight) in train_pairs.iter_mut().zip(inverse_frequency(&groups)) {
            pair.weight = weight;
        }
    }
    let mut val_pairs = split_pairs(Split::Val)?;
    let mut test_pairs = split_pairs(Split::Test)?;
    let mut model_config = model_config(
        backbone_dir,
        variant,
        adapter.dim(),
        max_tokens,
        adapt_layers,
    )?;
    if let Some(r) = rank {
        model_config.mole.rank = r;
        model_config.mole.alpha = 2.0 * r as f64;
    }
    model_config.mole.soft_routing = soft;
    // Oracle routing: every pair's gate input becomes its user's group code (the soft
    // oracle's: their log-weights).
    let oracle_groups = if oracle {
        if group.is_some() {
            bail!("--routing oracle with --group: one group routes to one expert anyway");
        }
        let groups = OracleGroups::new(&dataset, &ids, soft)?;
        let temperature = model_config.mole.temperature;
        for (split, pairs) in [
            (Split::Train, &mut train_pairs),
            (Split::Val, &mut val_pairs),
            (Split::Test, &mut test_pairs),
        ] {
            for (pair, code) in pairs
                .iter_mut()
                .zip(groups.pair_codes(&dataset, &ids, split)?)
            {
                pair.user = gate_input(&code, adapter.dim(), soft, temperature);
            }
        }
        groups.names
    } else {
        Vec::new()
    };
    let test_pairs = spread(test_pairs, test_limit);
    let device = copl_core::device::parse(&config.device)?;
    let dtype = copl_core::device::dtype(&config.dtype, &device)?;
    let trainable = VarMap::new();
    // Seeded: a run's initial LoRA factors, gates and head depend on its seed only.
    let mut model = RewardModel::fresh_as(
        backbone_dir,
        model_config.clone(),
        super::seeded::seeded_builder(&trainable, config.seed, &device),
        &device,
        dtype,
    )?;
    // The routing curve's users: none under oracle routing (pure by construction).
    let probe = (!oracle)
        .then(|| RoutingProbe::seen_users(&dataset, &ids, &adapter))
        .flatten();
    let mut cache = config.frozen_cache();
    // Soft routing runs on the autograd engine only (the packed one routes top-1).
    let packed = !soft && config.engine.resolve(&model) == MoleEngine::Packed;
    if oracle {
        let logit = if soft { 1.0 } else { ORACLE_LOGIT };
        set_oracle_gates(&trainable, oracle_groups.len(), logit)?;
    }
    let centroid_gates = if kmeans_gates {
        // The seen users: those with training pairs, in graph order.
        let seen: BTreeSet<u32> = pair_rows(&dataset, &ids, Split::Train)
            .into_iter()
            .map(|(u, _, _)| u)
            .collect();
        let users: Vec<Vec<f32>> = seen
            .iter()
            .map(|&u| adapter.user_embedding(u).to_vec())
            .collect();
        let (centroids, chosen) = fit_centroids(
            &crate::gcf::identify::normalised(&users),
            model_config.mole.experts,
            config.gate_clusters,
            config.seed,
        )?;
        set_centroid_gates(&trainable, &centroids, chosen.scale)?;
        Some(chosen)
    } else {
        None
    };
    // The engine: packed where it runs (BERT on the CPU) unless told otherwise.
    let engine = if packed { train_packed } else { train_autograd };
    let training = engine(
        &mut model,
        &trainable,
        &train_pairs,
        &val_pairs,
        probe.as_ref(),
        config,
        &mut cache,
        &mut on_step,
    )?;
    let test_accuracy = accuracy(&model, &test_pairs, 32, &mut cache)?;
    let summary = MoleSummary {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        variant,
        family: model_config.family,
        routing: config.routing,
        oracle_groups,
        centroid_gates,
        lora_rank: Some(model_config.mole.rank),
        train_pairs: train_pairs.len(),
        val_pairs: val_pairs.len(),
        test_pairs: test_pairs.len(),
        hyper_parameters: config.clone(),
        training,
        test_accuracy,
    };
    if oracle {
        // Its gates read group codes: nothing a server could route.
        return Ok(summary);
    }

    if out != ckpt {
        fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        for file in [
            checkpoint::MANIFEST_FILE,
            checkpoint::IDS_FILE,
            checkpoint::GRAPH_FILE,
            checkpoint::GCF_FILE,
            checkpoint::SURVEY_FILE,
            checkpoint::CATALOGUE_FILE,
        ] {
            let from = ckpt.join(file);
            if from.exists() {
                fs::copy(&from, out.join(file))
                    .with_context(|| format!("copying {} to {}", from.display(), out.display()))?;
            }
        }
    }
    let tensors = trainable
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("var map poisoned"))?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    checkpoint::save_mole(out, &tensors)?;
    let mut manifest = Manifest::load_or_default(out)?;
    manifest.model = Some(ModelManifest {
        config: model_config,
        backbone: backbone_dir.display().to_string(),
        backbone_sha256: checkpoint::file_sha256(&backbone::weights_file(backbone_dir))?,
        metrics: serde_json::json!({
            "hyper_parameters": config,
            "best_step": summary.training.best_step,
            "val_accuracy": summary.training.best_val_accuracy,
            "test_accuracy": summary.test_accuracy,
            "pairs_per_second": summary.training.pairs_per_second,
        }),
    });
    manifest.save(out)?;
    Ok(summary)
}
