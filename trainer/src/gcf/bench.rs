//! `copl-train bench gcf`: seconds per GCF training step (a full-graph propagation,
//! forward and backward, and the AdamW update) and peak memory, for one step engine, on
//! a data set or on generated pairs of ufp4's shape (`--users N`: 1 000 000 users fit
//! here). One engine per process so the peak memory is that engine's;
//! `scripts/gcf-speed.sh` alternates engines and PyTorch in one run.

use std::{path::Path, time::Instant};

use anyhow::{Result, bail};
use candle_core::Device;
use copl_core::{
    data::{Dataset, Split},
    graph::{PreferenceGraph, graph_of},
};
use serde::{Deserialize, Serialize};

use super::fused::LayerInputs;
use super::{
    GcfArch, pair_rows,
    train::{StepEngine, TrainConfig, train},
};
use crate::memory::peak_rss_mib;

/// Where the graph of a benchmark comes from.
pub enum BenchGraph<'a> {
    Data(&'a Path),
    /// ufp4-shaped pairs: users, answers a user, seed.
    Generated {
        users: usize,
        answers: usize,
        seed: u64,
    },
}

/// One measured configuration (what `bench gcf --json` prints, what the speed table reads).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GcfBench {
    pub engine: StepEngine,
    #[serde(default)]
    pub layer_inputs: LayerInputs,
    pub dim: usize,
    pub layers: usize,
    pub users: usize,
    pub responses: usize,
    pub positive_edges: usize,
    pub negative_edges: usize,
    pub batch_size: usize,
    pub threads: usize,
    pub graph_seconds: f64,
    /// Steps timed (after one untimed warm-up step).
    pub steps: usize,
    pub seconds_per_step: f64,
    /// Floating-point work of eq. 2's transforms in one step (forward and backward):
    /// 3 GEMMs of n·d·k·d multiply-adds per side and layer, 2 flops each.
    pub gemm_gflop_per_step: f64,
    pub peak_rss_mib: Option<f64>,
}

/// Times `steps` training steps at embedding size `dim` (batch 1 024, the paper's).
pub fn bench_gcf(
    graph: BenchGraph<'_>,
    dim: usize,
    steps: usize,
    engine: StepEngine,
    layer_inputs: LayerInputs,
) -> Result<GcfBench> {
    if steps == 0 || dim == 0 {
        bail!("--steps and the dimensions must be positive");
    }
    let started = Instant::now();
    let (graph, train_pairs): (PreferenceGraph, Vec<(u32, u32, u32)>) = match graph {
        BenchGraph::Data(data) => {
            let dataset = Dataset::load(data).map_err(anyhow::Error::new)?;
            let (graph, ids) = graph_of(&dataset);
            let pairs = pair_rows(&dataset, &ids, Split::Train);
            (graph, pairs)
        }
        BenchGraph::Generated {
            users,
            answers,
            seed,
        } => {
            if users == 0 || answers == 0 {
                bail!("--users and --answers must be positive");
            }
            let g = copl_synth::shape::ufp4_shaped_pairs(users, answers, seed);
            (
                PreferenceGraph::from_pairs(users, g.responses, &g.pairs),
                g.pairs,
            )
        }
    };
    let graph_seconds = started.elapsed().as_secs_f64();
    let config = TrainConfig {
        arch: GcfArch {
            dim,
            ..GcfArch::default()
        },
        epochs: 1,
        max_steps_per_epoch: Some(steps + 1),
        engine,
        layer_inputs,
        ..TrainConfig::default()
    };
    // No validation pairs: the epoch's one evaluation forward is not part of a step.
    let trained = train(&graph, &train_pairs, &[], &config, &Device::Cpu, |_, _| {})?;
    let record = &trained.history[0];
    let timed = record.step_seconds.get(1..).unwrap_or_default();
    let seconds_per_step = timed.iter().sum::<f64>() / timed.len().max(1) as f64;
    let k = if config.arch.negative_edges { 5 } else { 3 };
    let nodes = (graph.users + graph.responses) as f64;
    let gemm_gflop_per_step =
        3.0 * 2.0 * nodes * (dim * k * dim) as f64 * config.arch.layers as f64 / 1e9;
    Ok(GcfBench {
        engine,
        layer_inputs,
        dim,
        layers: config.arch.layers,
        users: graph.users,
        responses: graph.responses,
        positive_edges: graph.positive.edges(),
        negative_edges: graph.negative.edges(),
        batch_size: config.batch_size,
        threads: rayon::current_num_threads(),
        graph_seconds,
        steps: timed.len(),
        seconds_per_step,
        gemm_gflop_per_step,
        peak_rss_mib: peak_rss_mib(),
    })
}
