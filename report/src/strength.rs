//! Issue #13 item 3: the baselines at the paper's capacity. Our Uniform and G-Oracle
//! train the rank-8 LoRA of CoPL's shared expert; the paper's baselines use rank 64.
//! `strength/<set>/` holds them at rank 64 (`scripts/report.sh`, stage strength) on the
//! data of `mole-seeds/<set>/s0` (remade from the same seed), and this section reads
//! them beside that seed's CoPL and rank-8 baselines: a CoPL win that held only against
//! a weak baseline would shrink here.

use std::{fmt::Write as _, fs, path::Path};

use anyhow::Result;
use copl_trainer::mole::{eval::MoleEval, run::MoleSummary};

use super::runs::{
    Users, Written, eval_of, evals_in, name_of, overall, read_typed, subdirs, training_summary,
    two_se,
};

/// The LoRA rank `variant` trained in `dir` at: its training summary's, or for the
/// G-Oracle (one model a group, `g-oracle-<group>.json`) its groups' models'.
fn rank_of(dir: &Path, variant: &str) -> Result<Option<usize>> {
    // Files written before `MoleSummary::lora_rank` existed ran the model's default rank.
    let rank = |s: MoleSummary| {
        s.lora_rank
            .unwrap_or_else(|| copl_core::model::mole::MoleConfig::default().rank)
    };
    if variant != "g-oracle" {
        return Ok(training_summary(dir, variant)?.map(rank));
    }
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("g-oracle-") && n.ends_with(".json") && !n.ends_with(".eval.json")
        })
        .collect();
    names.sort();
    match names.first() {
        Some(n) => Ok(Some(rank(read_typed(&dir.join(n))?))),
        None => Ok(None),
    }
}

/// One table row: a model, its rank and its evaluation.
struct Row<'a> {
    model: &'static str,
    rank: Option<usize>,
    eval: &'a MoleEval,
}

/// `a − b` for `users` in points, with whether it is beyond two standard errors.
fn difference(a: &MoleEval, b: &MoleEval, users: Users) -> Option<String> {
    let (a, b) = (overall(a, users)?, overall(b, users)?);
    let d = a.accuracy - b.accuracy;
    let noise = two_se((a.accuracy, a.pairs), (b.accuracy, b.pairs));
    let verdict = if d.abs() > noise { "beyond" } else { "within" };
    Some(format!(
        "{:+.1} on {} users ({verdict} 2 SE = {:.1})",
        100.0 * d,
        users.name(),
        100.0 * noise
    ))
}

/// `a − b` for seen and unseen users, each read against 2 SE.
fn differences(a: &MoleEval, b: &MoleEval) -> String {
    Users::BOTH
        .into_iter()
        .filter_map(|u| difference(a, b, u))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The section.
pub fn strength(runs: &Path, md: &mut String, written: &mut Written) -> Result<()> {
    writeln!(md, "## Baselines at the paper's capacity (LoRA rank 64)\n")?;
    let dir = runs.join("strength");
    let Some(sets) = written.require(
        subdirs(&dir),
        &dir,
        "no rank-64 baseline run (scripts/report.sh, stage strength)",
    ) else {
        return Ok(());
    };
    writeln!(
        md,
        "The paper's Uniform and G-Oracle use rank-64 LoRA; ours train the rank-8 shared \
         expert. Here both baselines at rank 64 (α = 128, the same recipe, data and seed) \
         beside seed 0 of the seeds' section (CoPL and the rank-8 baselines); accuracy (%) \
         on the same seen and unseen test pairs.\n\n\
         | data set | model | LoRA rank | seen | unseen |\n|---|---|---|---|---|"
    )?;
    let mut readings = Vec::new();
    for set in &sets {
        let name = name_of(set);
        let seed0 = runs.join("mole-seeds").join(&name).join("s0");
        let weak = evals_in(&seed0)?;
        let strong = evals_in(set)?;
        let mut rows = Vec::new();
        for (model, variant, evals, from) in [
            ("CoPL", "copl", &weak, &seed0),
            ("Uniform", "uniform", &weak, &seed0),
            ("Uniform", "uniform", &strong, set),
            ("G-Oracle", "g-oracle", &weak, &seed0),
            ("G-Oracle", "g-oracle", &strong, set),
        ] {
            if let Some(eval) = eval_of(evals, variant) {
                rows.push(Row {
                    model,
                    rank: rank_of(from, variant)?,
                    eval,
                });
            }
        }
        for r in &rows {
            let cell = |users| {
                overall(r.eval, users)
                    .map_or("–".into(), |s| format!("{:.2}", 100.0 * s.accuracy))
            };
            writeln!(
                md,
                "| {name} | {} | {} | {} | {} |",
                r.model,
                r.rank.map_or("?".into(), |r| r.to_string()),
                cell(Users::Seen),
                cell(Users::Unseen)
            )?;
        }
        let Some(copl) = eval_of(&weak, "copl") else {
            continue;
        };
        // Each rank-64 baseline read where it ran: CoPL against it, and it against its
        // rank-8 self.
        for (model, variant) in [("Uniform", "uniform"), ("the G-Oracle", "g-oracle")] {
            let Some(strong64) = eval_of(&strong, variant) else {
                continue;
            };
            let mut reading = format!(
                "on {name}, CoPL against {model} at rank 64: {}",
                differences(copl, strong64)
            );
            if let Some(weak8) = eval_of(&weak, variant) {
                reading.push_str(&format!(
                    "; {model} rank 64 over rank 8: {}",
                    differences(strong64, weak8)
                ));
            }
            readings.push(reading);
        }
    }
    writeln!(md)?;
    if !readings.is_empty() {
        writeln!(
            md,
            "Reading (one seed; 2 SE of a difference of two binomial accuracies on these \
             pairs): {}.\n",
            readings.join("; ")
        )?;
    }
    Ok(())
}
