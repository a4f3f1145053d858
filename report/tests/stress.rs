#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
//! The report's sections on issue #13's stress tests: the baselines at the paper's LoRA
//! rank beside the seeds' seed 0, label noise against the data's ceiling, and the seeds'
//! differences read against two standard errors (best single reward included).

mod report_fixtures;

use copl_synth::{Preset, Sampling};
use report_fixtures::{eval, gcf_summary, markdown_of, overall, synth, training, write};

/// A training summary at LoRA rank `rank` (None: a file from before the field).
fn at_rank(rank: Option<usize>) -> copl_trainer::mole::run::MoleSummary {
    let mut t = training(600, 8000, &[(600, 0.2)], 600);
    t.lora_rank = rank;
    t
}

#[test]
fn rank_64_baselines_stand_beside_the_seeds_copl_with_their_differences_read() {
    let runs = tempfile::tempdir().unwrap();
    let r = runs.path();
    let s0 = "mole-seeds/ufp4-all-1k/s0";
    write(
        r,
        &format!("{s0}/copl.eval.json"),
        &eval(overall(512, 0.98), Some(overall(512, 0.97))),
    );
    write(r, &format!("{s0}/copl.json"), &at_rank(None));
    write(
        r,
        &format!("{s0}/uniform.eval.json"),
        &eval(overall(512, 0.70), Some(overall(512, 0.72))),
    );
    write(r, &format!("{s0}/uniform.json"), &at_rank(None));
    write(
        r,
        &format!("{s0}/g-oracle.eval.json"),
        &eval(overall(512, 0.985), Some(overall(512, 0.98))),
    );
    write(r, &format!("{s0}/g-oracle-detail.json"), &at_rank(Some(8)));
    let strong = "strength/ufp4-all-1k";
    write(
        r,
        &format!("{strong}/uniform.eval.json"),
        &eval(overall(512, 0.74), Some(overall(512, 0.75))),
    );
    write(r, &format!("{strong}/uniform.json"), &at_rank(Some(64)));
    write(
        r,
        &format!("{strong}/g-oracle.eval.json"),
        &eval(overall(512, 0.99), Some(overall(512, 0.99))),
    );
    write(
        r,
        &format!("{strong}/g-oracle-detail.json"),
        &at_rank(Some(64)),
    );
    let md = markdown_of(r);
    for row in [
        "| ufp4-all-1k | CoPL | 8 | 98.00 | 97.00 |",
        "| ufp4-all-1k | Uniform | 8 | 70.00 | 72.00 |",
        "| ufp4-all-1k | Uniform | 64 | 74.00 | 75.00 |",
        "| ufp4-all-1k | G-Oracle | 8 | 98.50 | 98.00 |",
        "| ufp4-all-1k | G-Oracle | 64 | 99.00 | 99.00 |",
    ] {
        assert!(md.contains(row), "{row} in {md}");
    }
    // 2 SE of .98 against .74 on 512 pairs each: 2·√(.98·.02/512 + .74·.26/512) = 4.1.
    assert!(
        md.contains("on ufp4-all-1k, CoPL against Uniform at rank 64: +24.0 on seen users (beyond 2 SE = 4.1)"),
        "{md}"
    );
    // .98 against .99: −1.0 inside 2·√(.98·.02/512 + .99·.01/512) = 1.5.
    assert!(
        md.contains("CoPL against the G-Oracle at rank 64: -1.0 on seen users (within 2 SE = 1.5)"),
        "{md}"
    );
    assert!(
        md.contains("; Uniform rank 64 over rank 8: +4.0 on seen users"),
        "{md}"
    );
}

#[test]
fn label_noise_is_read_against_the_datas_ceiling_and_gcfs_kept_epoch() {
    let runs = tempfile::tempdir().unwrap();
    let r = runs.path();
    let mut data = synth(
        Preset::Ufp4,
        Sampling::All,
        1000,
        &[("detail", 250)],
        (0.9, 0.66),
    );
    data.config.label_noise = 0.1;
    for set in ["noise/ufp4-all-1k", "noise/ufp4-all-1k-keep-last"] {
        write(r, &format!("{set}/data/synth.json"), &data);
    }
    write(
        r,
        "noise/ufp4-all-1k/gcf.json",
        &gcf_summary(0.65, 22, &[(22, 0.15)]),
    );
    write(
        r,
        "noise/ufp4-all-1k/copl.eval.json",
        &eval(overall(512, 0.67), Some(overall(512, 0.64))),
    );
    write(
        r,
        "noise/ufp4-all-1k/uniform.eval.json",
        &eval(overall(512, 0.66), Some(overall(512, 0.66))),
    );
    write(
        r,
        "noise/ufp4-all-1k-keep-last/gcf.json",
        &gcf_summary(0.60, 1500, &[(1500, 0.1)]),
    );
    write(
        r,
        "noise/ufp4-all-1k-keep-last/copl.eval.json",
        &eval(overall(512, 0.754), Some(overall(512, 0.75))),
    );
    let md = markdown_of(r);
    assert!(
        md.contains("| ufp4-all-1k | 0.10 | copl | 67.00 | 64.00 | 90.00 | 66.00 |"),
        "{md}"
    );
    assert!(md.contains("| 22 |"), "{md}");
    assert!(
        md.contains("| ufp4-all-1k-keep-last | 0.10 | copl | 75.40 | 75.00 | 90.00 | 66.00 |"),
        "{md}"
    );
    assert!(md.contains("| 1500 |"), "{md}");
    assert!(
        md.contains("ufp4-all-1k: CoPL 67.0 seen (2 SE of a cell ≤ 4.4 at 512 pairs), -23.0 points from the ceiling, +1.0 from the shared-preference bound, +1.0 from Uniform"),
        "{md}"
    );
    assert!(md.contains("ufp4-all-1k-keep-last: CoPL 75.4 seen"), "{md}");
}

#[test]
fn the_seeds_differences_say_whether_they_pass_two_standard_errors() {
    let runs = tempfile::tempdir().unwrap();
    let r = runs.path();
    // CoPL 8–12 points over the best single reward in every seed; 0.5–1.5 over Uniform
    // with a spread that leaves it noise.
    for (seed, copl, uniform) in [(0, 0.88, 0.87), (1, 0.86, 0.87), (2, 0.87, 0.855)] {
        let dir = format!("mole-seeds/personal-all/s{seed}");
        write(
            r,
            &format!("{dir}/copl.eval.json"),
            &eval(overall(512, copl), None),
        );
        write(
            r,
            &format!("{dir}/uniform.eval.json"),
            &eval(overall(512, uniform), None),
        );
        write(
            r,
            &format!("{dir}/data/synth.json"),
            &synth(Preset::Personal, Sampling::All, 1000, &[], (1.0, 0.76)),
        );
    }
    let md = markdown_of(r);
    assert!(
        md.contains("| personal-all | best single reward | 76.00 ± 0.00 (n = 3) |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| personal-all | copl − best single reward | seen | +11.00 | 0.58 | 3 | beyond 2 SE |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| personal-all | copl − uniform | seen | +0.50 |"),
        "{md}"
    );
    assert!(md.contains("| 3 | within 2 SE: noise |"), "{md}");
}

/// A population of 1 024 test pairs, half on seen texts and half on new ones.
fn on_texts(seen_texts: f64, new_texts: f64) -> copl_trainer::mole::eval::Population {
    let mut p = overall(1024, (seen_texts + new_texts) / 2.0);
    p.seen_texts = Some(report_fixtures::slice(512, seen_texts));
    p.new_texts = Some(report_fixtures::slice(512, new_texts));
    p
}

#[test]
fn new_texts_are_read_against_seen_texts_two_standard_errors_and_the_issues_bound() {
    let runs = tempfile::tempdir().unwrap();
    let r = runs.path();
    assert!(markdown_of(r).contains("stage new-texts"));
    let set = "new-texts/ufp4-all-1k";
    // A set being made, its data and no evaluation yet: still not run.
    write(
        r,
        &format!("{set}/data/synth.json"),
        &synth(Preset::Ufp4, Sampling::All, 1000, &[], (1.0, 0.7)),
    );
    assert!(markdown_of(r).contains("stage new-texts"));
    // Seen users: a point lower on new texts (noise); onboarded users: 7.5 lower.
    write(
        r,
        &format!("{set}/copl.eval.json"),
        &eval(on_texts(0.98, 0.97), Some(on_texts(0.975, 0.90))),
    );
    write(
        r,
        &format!("{set}/uniform.eval.json"),
        &eval(on_texts(0.66, 0.74), None),
    );
    let md = markdown_of(r);
    for row in [
        "| ufp4-all-1k | copl | seen | 97.50 | 98.00 | 97.00 | -1.0 (2 SE 2.0) |",
        "| ufp4-all-1k | copl | unseen | 93.75 | 97.50 | 90.00 | -7.5 (2 SE 3.0) |",
        "| ufp4-all-1k | uniform | seen | 70.00 | 66.00 | 74.00 | +8.0 (2 SE 5.7) |",
    ] {
        assert!(md.contains(row), "{row}\n{md}");
    }
    assert!(
        md.contains(
            "ufp4-all-1k, seen users: CoPL -1.0 points on new texts (within 2 SE = 2.0; \
             within the issue's 5); ufp4-all-1k, unseen users: CoPL -7.5 points on new \
             texts (beyond 2 SE = 3.0; beyond the issue's 5)"
        ),
        "{md}"
    );
    assert!(!md.contains("stage new-texts"), "{md}");
}
