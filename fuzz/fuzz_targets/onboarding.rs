//! `Adapter::adapt` (paper eq. 11) on arbitrary answers and options over a small fixed
//! graph: answers with any response rows (also outside the graph), repeated,
//! contradictory; any hops, temperature, neighbour threshold. It must answer or refuse,
//! never panic; an adaptation it returns must be a finite unit vector with a confidence
//! in [0, 1].
#![no_main]

use std::sync::OnceLock;

use copl_core::{
    adapt::{AdaptConfig, Adapter, Answer},
    data::{Annotation, Dataset, Response, Split},
    graph::graph_of,
};
use libfuzzer_sys::fuzz_target;

const DIM: usize = 4;

/// 8 users, 6 prompts × 2 responses; two groups answering oppositely.
fn adapter() -> &'static Adapter {
    static ADAPTER: OnceLock<Adapter> = OnceLock::new();
    ADAPTER.get_or_init(|| {
        let responses: Vec<Response> = (0..12)
            .map(|i| Response {
                id: format!("r{i}"),
                prompt: format!("p{}", i / 2),
                response: format!("answer {i}"),
                attributes: None,
            })
            .collect();
        let mut annotations = Vec::new();
        for u in 0..8 {
            for p in 0..6 {
                let (a, b) = (2 * p, 2 * p + 1);
                let (chosen, rejected) = if (u + p) % 2 == 0 { (a, b) } else { (b, a) };
                annotations.push(Annotation {
                    user: format!("u{u}"),
                    chosen: format!("r{chosen}"),
                    rejected: format!("r{rejected}"),
                    split: Split::Train,
                    controversial: None,
                });
            }
        }
        let dataset = Dataset::new(responses, annotations, Vec::new()).expect("a valid data set");
        let (graph, _) = graph_of(&dataset);
        let embed = |n: usize, seed: usize| -> Vec<f32> {
            (0..n * DIM)
                .map(|i| (((i + seed) * 2_654_435_761) % 1000) as f32 / 500.0 - 1.0)
                .collect()
        };
        let (users, responses) = (graph.users, graph.responses);
        Adapter::new(graph, embed(users, 1), embed(responses, 7), DIM).expect("an adapter")
    })
}

fuzz_target!(|input: (Vec<(u32, u32)>, u8, f32, u8, u8)| {
    let (pairs, hops, temperature, min_neighbours, max_hops) = input;
    let answers: Vec<Answer> = pairs
        .into_iter()
        .take(256)
        .map(|(c, r)| Answer {
            chosen: c % 16,
            rejected: r % 16,
        })
        .collect();
    let config = AdaptConfig {
        hops: hops as usize,
        temperature,
        min_neighbours: min_neighbours as usize,
        max_hops: max_hops as usize,
        ..AdaptConfig::default()
    };
    if let Ok(adapted) = adapter().adapt(&answers, &config) {
        assert!(adapted.embedding.iter().all(|x| x.is_finite()), "{adapted:?}");
        let norm: f32 = adapted.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}: {adapted:?}");
        assert!((0.0..=1.0).contains(&adapted.confidence), "{adapted:?}");
    }
});
