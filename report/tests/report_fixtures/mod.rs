//! The report's inputs built from the very types their commands write (issue #17): a
//! field renamed or retyped in a writer breaks these fixtures at compile time, and a file
//! of the wrong shape fails the report naming the file, so schema drift cannot pass as a
//! silent `–`. Each builder fills what the report reads and plain values elsewhere.
#![allow(dead_code)] // Each test file uses its own share of the builders.
#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, path::Path};

use copl_core::model::config::{BackboneFamily, Variant};
use copl_synth::{Preset, Sampling, Summary, SynthConfig};
use copl_trainer::{
    gcf::{EpochRecord, GcfEval, GcfSummary, GroupIdentification, Identification},
    mole::allocation::{Allocation, CheckpointAllocation},
    mole::{
        eval::{MoleEval, Population, Slice},
        oracle::Routing,
        run::MoleSummary,
        train::{MoleEngine, MoleTrainConfig, MoleTraining, StepRecord},
    },
    onboard::{AdaptationStats, AnswersPoint, MethodResult, UnseenEval},
    projection::{Projection, UserPoint},
};

/// The report written from `runs` (into `runs/out`), as markdown.
pub fn markdown_of(runs: &Path) -> String {
    let out = runs.join("out");
    let markdown = out.join("results.md");
    copl_report::results::report(runs, &out.join("results"), &markdown).unwrap();
    std::fs::read_to_string(&markdown).unwrap()
}

/// `value` as JSON into `root/path`, creating its directories.
pub fn write<T: serde::Serialize>(root: &Path, path: &str, value: &T) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, serde_json::to_string(value).unwrap()).unwrap();
}

pub fn slice(pairs: usize, accuracy: f64) -> Slice {
    Slice { pairs, accuracy }
}

/// A population over 10 test pairs: 6 controversial, 4 common.
pub fn split(all: f64, controversial: f64, common: f64) -> Population {
    Population {
        overall: slice(10, all),
        by_group: BTreeMap::new(),
        controversial: Some(slice(6, controversial)),
        common: Some(slice(4, common)),
        seen_texts: None,
        new_texts: None,
    }
}

/// A population of two groups (ufp2's), each on 10 pairs, overall their mean.
pub fn by_group(detail: f64, hedging: f64) -> Population {
    Population {
        overall: slice(20, (detail + hedging) / 2.0),
        by_group: [
            ("detail".to_string(), slice(10, detail)),
            ("hedging".to_string(), slice(10, hedging)),
        ]
        .into(),
        controversial: None,
        common: None,
        seen_texts: None,
        new_texts: None,
    }
}

/// A population with only its overall figure.
pub fn overall(pairs: usize, accuracy: f64) -> Population {
    Population {
        overall: slice(pairs, accuracy),
        by_group: BTreeMap::new(),
        controversial: None,
        common: None,
        seen_texts: None,
        new_texts: None,
    }
}

/// `copl-train eval`'s output.
pub fn eval(seen: Population, unseen: Option<Population>) -> MoleEval {
    MoleEval {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        variant: Variant::Copl,
        seen,
        unseen,
    }
}

/// `synth.json` of a generated set.
pub fn synth(
    preset: Preset,
    sampling: Sampling,
    users: usize,
    group_sizes: &[(&str, usize)],
    bounds: (f64, f64),
) -> Summary {
    let mut config = SynthConfig::new(preset);
    config.sampling = sampling;
    config.users = users;
    Summary {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        config,
        prompts: 10,
        responses: 100,
        survey_pairs: 50,
        test_pairs: 20,
        new_text_pairs: 0,
        seen_users: users,
        unseen_users: 0,
        group_sizes: group_sizes
            .iter()
            .map(|(g, n)| (g.to_string(), *n))
            .collect(),
        train_annotations: 0,
        val_annotations: 0,
        test_annotations: 0,
        mean_train_per_seen_user: 0.0,
        controversial_pair_share: 0.7,
        ground_truth_test_accuracy: bounds.0,
        population_test_accuracy: bounds.1,
        response_words: [1.0, 2.0, 3.0],
    }
}

/// `copl-train mole --json`: `steps` of the settings, `history` as (step, training
/// loss), the best step kept.
pub fn training(
    steps: usize,
    train_pairs: usize,
    history: &[(usize, f64)],
    best_step: usize,
) -> MoleSummary {
    MoleSummary {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        variant: Variant::Copl,
        family: BackboneFamily::Bert,
        train_pairs,
        val_pairs: 100,
        test_pairs: 100,
        routing: Routing::Gates,
        oracle_groups: Vec::new(),
        centroid_gates: None,
        lora_rank: Some(8),
        hyper_parameters: MoleTrainConfig {
            steps,
            ..MoleTrainConfig::default()
        },
        training: MoleTraining {
            engine: MoleEngine::Packed,
            best_step,
            best_val_accuracy: 0.9,
            history: history
                .iter()
                .map(|&(step, train_loss)| StepRecord {
                    step,
                    train_loss,
                    val_accuracy: 0.9,
                    seconds: 1.0,
                    routing: None,
                })
                .collect(),
            train_seconds: 1.0,
            pairs_per_second: 10.0,
            frozen_cache_texts: 0,
            frozen_cache_hit_rate: 0.0,
        },
        test_accuracy: 0.9,
    }
}

/// `copl-train gcf --json`: its best validation accuracy and epoch, `history` as
/// (epoch, validation accuracy).
pub fn gcf_summary(val_accuracy: f64, best_epoch: usize, history: &[(usize, f64)]) -> GcfSummary {
    GcfSummary {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        model: "gcf".into(),
        users: 10,
        responses: 10,
        positive_edges: 10,
        negative_edges: 10,
        train_pairs: 10,
        graph_seconds: 0.1,
        train_seconds: 1.0,
        seconds_per_epoch: 0.1,
        best_epoch,
        val_accuracy,
        test_accuracy: val_accuracy,
        history: history
            .iter()
            .map(|&(epoch, val_accuracy)| EpochRecord {
                epoch,
                train_loss: 0.5,
                val_accuracy,
                seconds: 0.1,
                steps: 1,
                seconds_per_step: 0.1,
                step_seconds: Vec::new(),
            })
            .collect(),
    }
}

/// `copl-train eval-unseen --json`: the methods' accuracies and the answers curve as
/// (answers, random 2-hop, random 4-hop, suggested adaptive, suggested batch).
pub fn unseen_eval(
    seen_accuracy: f64,
    methods: &[(&str, f64)],
    by_answers: &[(usize, f64, f64, f64, f64)],
) -> UnseenEval {
    UnseenEval {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        unseen_users: 10,
        mean_answers: 8.0,
        test_pairs: 100,
        seen_accuracy,
        methods: methods
            .iter()
            .map(|(m, accuracy)| {
                (
                    m.to_string(),
                    MethodResult {
                        accuracy: *accuracy,
                        pairs: 100,
                        mean_us: 40.0,
                    },
                )
            })
            .collect(),
        copl_2hop: AdaptationStats::default(),
        by_answers: by_answers
            .iter()
            .map(|&(answers, r2, r4, adaptive, batch)| AnswersPoint {
                answers,
                random_2hop: r2,
                random_4hop: r4,
                suggested_adaptive: Some(adaptive),
                suggested_batch: Some(batch),
            })
            .collect(),
        survey_note: None,
        survey_pool: 100,
        survey_build_seconds: 0.1,
        suggest_mean_us: 5.0,
    }
}

/// `copl-train eval-experts --json`: per group, per projection, each expert's share.
pub fn allocation(
    projections: &[&str],
    experts: usize,
    shares: &[(&str, Vec<Vec<f64>>)],
    experts_used: Vec<usize>,
) -> CheckpointAllocation {
    let allocation = Allocation {
        shares: shares
            .iter()
            .map(|(g, table)| (g.to_string(), table.clone()))
            .collect(),
        experts,
    };
    CheckpointAllocation {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        projections: projections.iter().map(|p| p.to_string()).collect(),
        purity: allocation.purity(),
        allocation,
        experts_used,
        users: 8,
    }
}

/// `copl-train eval-projection --json`: points as (user, group, unseen, x, y).
pub fn projection(explained: [f64; 2], points: &[(&str, &str, bool, f64, f64)]) -> Projection {
    Projection {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        explained: explained.to_vec(),
        points: points
            .iter()
            .map(|&(user, group, unseen, x, y)| UserPoint {
                user: user.into(),
                group: group.into(),
                unseen,
                x,
                y,
            })
            .collect(),
    }
}

/// An `eval-gcf` output, with an identification section when `identified`.
pub fn gcf_eval(accuracy: f64, identified: bool) -> GcfEval {
    use copl_trainer::gcf::Slice;
    GcfEval {
        format_version: copl_core::file_version::FileVersion::CURRENT,
        model: "gcf".into(),
        overall: Slice {
            pairs: 100,
            accuracy,
        },
        by_group: Default::default(),
        controversial: None,
        common: None,
        ground_truth_bound: Some(1.0),
        shared_preference_bound: Some(0.6),
        identification: identified.then_some(GroupIdentification {
            groups: 2,
            seen: Identification {
                users: 20,
                probe_accuracy: Some(0.91),
                kmeans_nmi: Some(0.8),
                weights_r2: None,
            },
            unseen: Some(Identification {
                users: 4,
                probe_accuracy: Some(0.95),
                kmeans_nmi: Some(0.85),
                weights_r2: None,
            }),
            bayes_bound: Some(1.0),
        }),
    }
}
