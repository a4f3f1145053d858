//! `copl-train bench onboard`: latency (p50, p99) and memory of one onboarding, on a
//! trained checkpoint (answers: its data set's unseen users') or on a generated graph
//! of any size (random embeddings; the degree structure of the ufp4 benchmark).

use std::{path::Path, time::Instant};

use anyhow::{Context, Result, bail};
use copl_core::{
    adapt::{AdaptConfig, Adapter, Answer},
    data::{Dataset, Split},
    graph::PreferenceGraph,
};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use super::user_opt::{UserOptConfig, optimise_user, optimise_user_autograd};

/// Latency of one operation over many calls, µs.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub calls: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    pub max_us: f64,
}

impl Latency {
    fn of(mut micros: Vec<f64>) -> Self {
        micros.sort_by(f64::total_cmp);
        let at = |q: f64| {
            micros
                .get(((micros.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        Self {
            calls: micros.len(),
            p50_us: at(0.5),
            p99_us: at(0.99),
            mean_us: micros.iter().sum::<f64>() / micros.len().max(1) as f64,
            max_us: micros.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// What `copl-train bench onboard` reports.
#[derive(Clone, Debug, Serialize)]
pub struct OnboardBench {
    pub source: String,
    pub users: usize,
    pub responses: usize,
    pub positive_edges: usize,
    pub dim: usize,
    pub answers_per_onboarding: f64,
    /// Seconds to load or generate the graph and embeddings.
    pub setup_seconds: f64,
    /// Resident memory growth while the adapter was built, MiB (Linux /proc).
    pub adapter_rss_mib: Option<f64>,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mib: Option<f64>,
    pub copl_2hop: Latency,
    pub copl_4hop: Latency,
    pub mean_neighbourhood_2hop: f64,
    pub mean_neighbourhood_4hop: f64,
    /// 50 Adam steps, gradient by hand.
    pub user_opt: Latency,
    /// 50 AdamW steps with candle autograd (as a training framework runs it).
    pub user_opt_autograd: Latency,
}

/// Benchmarks onboarding on a checkpoint with the unseen users of `data`.
pub fn bench_checkpoint(ckpt: &Path, data: &Path, calls: usize) -> Result<OnboardBench> {
    let rss_before = crate::memory::status_mib("VmRSS");
    let started = Instant::now();
    let (adapter, ids) =
        Adapter::from_checkpoint(ckpt).with_context(|| format!("loading {}", ckpt.display()))?;
    let setup_seconds = started.elapsed().as_secs_f64();
    let rss_after = crate::memory::status_mib("VmRSS");
    let dataset = Dataset::load(data).map_err(anyhow::Error::new)?;
    let rows = ids.response_rows();
    let unseen = dataset.unseen_users();
    let mut by_user: std::collections::BTreeMap<&str, Vec<Answer>> = Default::default();
    for a in dataset.annotations() {
        if a.split == Split::Test || !unseen.contains(a.user.as_str()) {
            continue;
        }
        if let (Some(&chosen), Some(&rejected)) =
            (rows.get(a.chosen.as_str()), rows.get(a.rejected.as_str()))
        {
            by_user
                .entry(a.user.as_str())
                .or_default()
                .push(Answer { chosen, rejected });
        }
    }
    let surveys: Vec<Vec<Answer>> = by_user.into_values().collect();
    if surveys.is_empty() {
        bail!(
            "{}: no unseen user with answers on the checkpoint's responses",
            data.display()
        );
    }
    measure(
        format!("checkpoint {}", ckpt.display()),
        &adapter,
        &surveys,
        calls,
        setup_seconds,
        rss_before.zip(rss_after).map(|(b, a)| a - b),
    )
}

/// Benchmarks onboarding on a generated graph of `users` seen users with `answers`
/// pairs each, shaped like ufp4 at 10 000 users: 4.58 responses and 2.6 survey pairs
/// per user; embeddings N(0, 1) of size `dim`.
pub fn bench_generated(
    users: usize,
    answers: usize,
    dim: usize,
    calls: usize,
    seed: u64,
) -> Result<OnboardBench> {
    if users == 0 || answers == 0 || dim == 0 {
        bail!("--users, --answers and --dim must be positive");
    }
    let rss_before = crate::memory::status_mib("VmRSS");
    let started = Instant::now();
    let generated = copl_synth::shape::ufp4_shaped_pairs(users, answers, seed);
    let (responses, pool, pairs, mut rng) = (
        generated.responses,
        generated.pool,
        generated.pairs,
        generated.rng,
    );
    let draw_answer = |rng: &mut ChaCha8Rng| copl_synth::shape::draw(rng, &pool);
    let graph = PreferenceGraph::from_pairs(users, responses, &pairs);
    drop(pairs);
    let mut normal =
        |n: usize| -> Vec<f32> { (0..n).map(|_| StandardNormal.sample(&mut rng)).collect() };
    let user_embeddings = normal(users * dim);
    let response_embeddings = normal(responses * dim);
    let adapter = Adapter::new(graph, user_embeddings, response_embeddings, dim)?;
    let setup_seconds = started.elapsed().as_secs_f64();
    let rss_after = crate::memory::status_mib("VmRSS");
    let surveys: Vec<Vec<Answer>> = (0..calls.clamp(1, 1000))
        .map(|_| {
            (0..answers)
                .map(|_| {
                    let (chosen, rejected) = draw_answer(&mut rng);
                    Answer { chosen, rejected }
                })
                .collect()
        })
        .collect();
    measure(
        format!("generated {users} users x {answers} answers, seed {seed}"),
        &adapter,
        &surveys,
        calls,
        setup_seconds,
        rss_before.zip(rss_after).map(|(b, a)| a - b),
    )
}

fn measure(
    source: String,
    adapter: &Adapter,
    surveys: &[Vec<Answer>],
    calls: usize,
    setup_seconds: f64,
    adapter_rss_mib: Option<f64>,
) -> Result<OnboardBench> {
    let two = AdaptConfig::default();
    let four = AdaptConfig {
        hops: 4,
        ..AdaptConfig::default()
    };
    let calls = calls.max(1);
    let time = |config: &AdaptConfig| -> Result<(Latency, f64)> {
        let mut micros = Vec::with_capacity(calls);
        let mut neighbourhood = 0usize;
        for i in 0..calls {
            let survey = &surveys[i % surveys.len()];
            let started = Instant::now();
            let result = adapter.adapt(survey, config)?;
            micros.push(started.elapsed().as_secs_f64() * 1e6);
            neighbourhood += result.neighbourhood_size;
        }
        Ok((Latency::of(micros), neighbourhood as f64 / calls as f64))
    };
    let (copl_2hop, mean_neighbourhood_2hop) = time(&two)?;
    let (copl_4hop, mean_neighbourhood_4hop) = time(&four)?;
    let opt = UserOptConfig::default();
    let user_opt = Latency::of(
        (0..calls)
            .map(|i| {
                let started = Instant::now();
                std::hint::black_box(optimise_user(adapter, &surveys[i % surveys.len()], &opt));
                started.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    );
    // Autograd is ~1000× slower a call: a tenth of the calls (at least 20) suffice.
    let autograd_calls = (calls / 10).max(20);
    let mut autograd = Vec::with_capacity(autograd_calls);
    for i in 0..autograd_calls {
        let started = Instant::now();
        std::hint::black_box(optimise_user_autograd(
            adapter,
            &surveys[i % surveys.len()],
            &opt,
        )?);
        autograd.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let graph = adapter.graph();
    Ok(OnboardBench {
        source,
        users: graph.users,
        responses: graph.responses,
        positive_edges: graph.positive.edges(),
        dim: adapter.dim(),
        answers_per_onboarding: surveys.iter().map(Vec::len).sum::<usize>() as f64
            / surveys.len() as f64,
        setup_seconds,
        adapter_rss_mib,
        peak_rss_mib: crate::memory::peak_rss_mib(),
        copl_2hop,
        copl_4hop,
        mean_neighbourhood_2hop,
        mean_neighbourhood_4hop,
        user_opt,
        user_opt_autograd: Latency::of(autograd),
    })
}
