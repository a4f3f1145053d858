//! The tables of one `scripts/mole-benchmarks.sh` run directory (`copl-report variants
//! DIR VARIANT…`): per variant its evaluation (`<variant>.eval.json`, `copl-train eval`)
//! and training summary (`<variant>.json`, `copl-train mole --json`), read as their
//! writers' types. Three tables: seen and unseen users overall / controversial / common
//! with the training run's own test figure and speed; accuracy per group; and, where
//! test pairs fall on new texts (`synth --heldout-prompts`), seen against new texts.
//! A variant without an evaluation (oracle routing writes no model) shows its summary
//! only; one without a summary (the G-Oracle trains one model a group) its evaluation.

use std::{fmt::Write as _, path::Path};

use anyhow::Result;
use copl_trainer::mole::{
    eval::{MoleEval, Population, Slice},
    run::MoleSummary,
};

use super::runs::{pct, read_if_there};

/// A variant's two files, each if there.
struct Run {
    variant: String,
    eval: Option<MoleEval>,
    summary: Option<MoleSummary>,
}

fn cell(slice: Option<&Slice>) -> String {
    pct(slice.map(|s| s.accuracy))
}

/// The markdown tables of `variants` in `dir`.
pub fn tables(dir: &Path, variants: &[String]) -> Result<String> {
    let runs = variants
        .iter()
        .map(|v| {
            Ok(Run {
                variant: v.clone(),
                eval: read_if_there(&dir.join(format!("{v}.eval.json")))?,
                summary: read_if_there(&dir.join(format!("{v}.json")))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut md = String::new();
    writeln!(
        md,
        "| variant | seen all | seen controversial | seen common | unseen all | unseen \
         controversial | unseen common | mole test | pairs/s | cache hit rate |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    )?;
    for run in &runs {
        let seen = run.eval.as_ref().map(|e| &e.seen);
        let unseen = run.eval.as_ref().and_then(|e| e.unseen.as_ref());
        let slices = |p: Option<&Population>| {
            [
                cell(p.map(|p| &p.overall)),
                cell(p.and_then(|p| p.controversial.as_ref())),
                cell(p.and_then(|p| p.common.as_ref())),
            ]
            .join(" | ")
        };
        let training = run.summary.as_ref().map_or_else(
            || "– | – | –".to_string(),
            |t| {
                format!(
                    "{:.2} | {:.2} | {:.2}",
                    100.0 * t.test_accuracy,
                    t.training.pairs_per_second,
                    t.training.frozen_cache_hit_rate
                )
            },
        );
        writeln!(
            md,
            "| {} | {} | {} | {training} |",
            run.variant,
            slices(seen),
            slices(unseen)
        )?;
    }
    writeln!(
        md,
        "\n| variant | group | seen | unseen |\n|---|---|---|---|"
    )?;
    for run in &runs {
        let Some(e) = &run.eval else { continue };
        for (group, seen) in &e.seen.by_group {
            let unseen = e.unseen.as_ref().and_then(|u| u.by_group.get(group));
            writeln!(
                md,
                "| {} | {group} | {} | {} |",
                run.variant,
                cell(Some(seen)),
                cell(unseen)
            )?;
        }
    }
    let evals = || {
        runs.iter()
            .filter_map(|r| Some((&r.variant, r.eval.as_ref()?)))
    };
    if evals().any(|(_, e)| e.seen.new_texts.is_some()) {
        writeln!(
            md,
            "\n| variant | seen users, seen texts | seen users, new texts | unseen users, \
             seen texts | unseen users, new texts |\n|---|---|---|---|---|"
        )?;
        for (variant, e) in evals() {
            let u = e.unseen.as_ref();
            writeln!(
                md,
                "| {variant} | {} | {} | {} | {} |",
                cell(e.seen.seen_texts.as_ref()),
                cell(e.seen.new_texts.as_ref()),
                cell(u.and_then(|u| u.seen_texts.as_ref())),
                cell(u.and_then(|u| u.new_texts.as_ref()))
            )?;
        }
    }
    Ok(md)
}
