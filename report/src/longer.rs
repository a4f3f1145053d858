//! Longer training (`longer/<set>`): a grid set whose result falls short of the paper,
//! retrained on the same data and user embeddings with more steps, beside the grid's run
//! (`mole/<set>` or `imbalance/<set>`). It tells undertraining (the gap closes with
//! steps) from a real difference (it does not).

use std::{fmt::Write as _, path::Path};

use anyhow::Result;

use super::runs::{
    Users, Written, evals_in, group_accuracy, name_of, overall, pct, subdirs, training_summary,
};
use copl_trainer::mole::eval::MoleEval;

/// One variant's run: its evaluation and the last point of its training history.
struct Run {
    eval: MoleEval,
    /// Steps trained, and the step whose parameters were kept (best validation).
    steps: Option<(usize, usize)>,
    train_loss: Option<f64>,
}

/// Every evaluated variant in `dir`, with its training summary `<variant>.json`.
fn runs_in(dir: &Path) -> Result<Vec<(String, Run)>> {
    let mut runs = Vec::new();
    for (variant, eval) in evals_in(dir)? {
        let summary = training_summary(dir, &variant)?;
        let last = summary.as_ref().and_then(|s| {
            let last = s.training.history.last()?;
            Some((last.step, s.training.best_step, last.train_loss))
        });
        runs.push((
            variant,
            Run {
                eval,
                steps: last.map(|(step, best, _)| (step, best)),
                train_loss: last.map(|(_, _, loss)| loss),
            },
        ));
    }
    Ok(runs)
}

/// `base → longer` for two optional numbers shown by `show`.
fn moved<T>(base: Option<T>, longer: Option<T>, show: impl Fn(T) -> String) -> String {
    let show = |x: Option<T>| x.map_or_else(|| "–".to_string(), &show);
    format!("{} → {}", show(base), show(longer))
}

/// Seen accuracy of `variant` among `runs`, in [0, 1].
fn seen(runs: &[(String, Run)], variant: &str) -> Option<f64> {
    Some(
        runs.iter()
            .find(|(v, _)| v == variant)?
            .1
            .eval
            .seen
            .overall
            .accuracy,
    )
}

pub fn longer(runs: &Path, md: &mut String, written: &mut Written) -> Result<()> {
    writeln!(
        md,
        "## Longer training: undertraining or a real difference?\n"
    )?;
    let Some(dirs) = written.require(
        subdirs(&runs.join("longer")),
        &runs.join("longer"),
        "no longer run (scripts/report.sh, stage longer)",
    ) else {
        return Ok(());
    };
    writeln!(
        md,
        "Grid sets whose result falls short of the paper, retrained on the same data and \
         user embeddings with more steps (same batch, learning rate and seed). Each cell is \
         grid → longer; per-group cells (imbalanced sets) score each group on as many test \
         pairs.\n\n\
         | data set | variant | steps (kept: the best validation step, whose parameters \
         are evaluated) | final training loss | seen all | seen per group | \
         unseen all |\n|---|---|---|---|---|---|---|"
    )?;
    let mut readings = Vec::new();
    for dir in &dirs {
        let name = name_of(dir);
        let base_dir = [
            runs.join("mole").join(&name),
            runs.join("imbalance").join(&name),
        ]
        .into_iter()
        .find(|d| d.is_dir());
        let base = match &base_dir {
            Some(d) => runs_in(d)?,
            None => Vec::new(),
        };
        let longer = runs_in(dir)?;
        for (variant, run) in &longer {
            let before = base.iter().find(|(v, _)| v == variant).map(|(_, r)| r);
            let acc = |r: Option<&Run>, users: Users| Some(overall(&r?.eval, users)?.accuracy);
            let groups: Vec<String> = run
                .eval
                .seen
                .by_group
                .iter()
                .map(|(group, e)| {
                    let b = before.and_then(|r| group_accuracy(&r.eval, group));
                    format!("{group} {} → {}", pct(b), pct(Some(e.accuracy)))
                })
                .collect();
            writeln!(
                md,
                "| {name} | {variant} | {} | {} | {} | {} | {} |",
                moved(
                    before.and_then(|r| r.steps),
                    run.steps,
                    |(s, best)| format!("{s} (kept {best})")
                ),
                moved(before.and_then(|r| r.train_loss), run.train_loss, |l| {
                    format!("{l:.3}")
                }),
                moved(acc(before, Users::Seen), acc(Some(run), Users::Seen), |a| {
                    format!("{:.2}", 100.0 * a)
                }),
                if groups.is_empty() {
                    "–".to_string()
                } else {
                    groups.join(", ")
                },
                moved(
                    acc(before, Users::Unseen),
                    acc(Some(run), Users::Unseen),
                    |a| { format!("{:.2}", 100.0 * a) }
                ),
            )?;
        }
        // The reading: CoPL's margin over Uniform, grid against longer, where both ran.
        let margin = |runs: &[(String, Run)]| Some(seen(runs, "copl")? - seen(runs, "uniform")?);
        if let (Some(b), Some(l)) = (margin(&base), margin(&longer)) {
            readings.push(format!(
                "{name}: CoPL's margin over Uniform (seen) {:+.1} points with the grid's \
                 steps, {:+.1} with more",
                100.0 * b,
                100.0 * l
            ));
        }
        // Whether CoPL's training loss still fell with the extra steps.
        let loss = |runs: &[(String, Run)]| {
            runs.iter()
                .find(|(v, _)| v == "copl")
                .and_then(|(_, r)| r.train_loss)
        };
        if let (Some(b), Some(l)) = (loss(&base), loss(&longer)) {
            readings.push(if b - l < 0.05 {
                format!(
                    "{name}: CoPL's training loss plateaued ({b:.3} → {l:.3}): more steps barely \
                     lower it"
                )
            } else {
                format!("{name}: CoPL's training loss fell {b:.3} → {l:.3}")
            });
        }
        // And CoPL's groups, on an imbalanced set.
        let copl = |runs: &[(String, Run)]| {
            runs.iter()
                .find(|(v, _)| v == "copl")
                .map(|(_, r)| r.eval.seen.by_group.clone())
        };
        if let (Some(b), Some(l)) = (copl(&base), copl(&longer)) {
            let groups: Vec<String> = l
                .iter()
                .filter_map(|(group, e)| {
                    Some(format!(
                        "{group} {:.1} → {:.1}",
                        100.0 * b.get(group)?.accuracy,
                        100.0 * e.accuracy
                    ))
                })
                .collect();
            if !groups.is_empty() {
                readings.push(format!("{name}: CoPL's groups {}", groups.join(", ")));
            }
        }
    }
    writeln!(md)?;
    if !readings.is_empty() {
        writeln!(md, "Reading: {}.\n", readings.join("; "))?;
    }
    Ok(())
}
