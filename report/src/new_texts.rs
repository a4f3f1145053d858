//! Issue #13 item 4: texts nobody annotated. `new-texts/<set>/` (`scripts/report.sh`,
//! stage new-texts; `synth --heldout-prompts`) keeps a share of the prompts out of every
//! training pair and puts half of each user's test pairs on their responses; `eval`
//! scores those pairs (`new_texts`) apart from the rest (`seen_texts`). Real users
//! score texts nobody annotated: the issue asks CoPL to stay within 5 points of its
//! seen-text accuracy there.

use std::{fmt::Write as _, path::Path};

use anyhow::Result;
use copl_trainer::mole::eval::Slice;

use super::runs::{Users, Written, evals_in, name_of, pct, population, subdirs, two_se};

/// The bound on CoPL's new-text cost, in points.
const NEW_TEXT_BOUND: f64 = 5.0;

/// The section.
pub fn new_texts(runs: &Path, md: &mut String, written: &mut Written) -> Result<()> {
    writeln!(md, "## New texts: responses no training pair has\n")?;
    let dir = runs.join("new-texts");
    // Each set's evaluations, read once; a set still being made (its data, no
    // evaluation yet) is not a run.
    let mut made = Vec::new();
    for set in subdirs(&dir) {
        let evals = evals_in(&set)?;
        if !evals.is_empty() {
            made.push((name_of(&set), evals));
        }
    }
    let Some(sets) = written.require(
        made,
        &dir,
        "no run with held-out prompts (scripts/report.sh, stage new-texts)",
    ) else {
        return Ok(());
    };
    writeln!(
        md,
        "A share of the prompts is in no training or validation pair (`synth \
         --heldout-prompts`), and half of every user's test pairs are on their responses: \
         texts nobody annotated, as a policy's answers are. Accuracy (%) on all test pairs, \
         on the pairs whose responses some training pair has (seen texts) and on the \
         others (new texts); unseen users after onboarding.\n\n\
         | data set | model | users | all | seen texts | new texts | new − seen texts |\n\
         |---|---|---|---|---|---|---|"
    )?;
    let mut readings = Vec::new();
    for (name, evals) in &sets {
        for (variant, e) in evals {
            for users in Users::BOTH {
                let Some(p) = population(e, users) else {
                    continue;
                };
                let gap = texts_gap(p.seen_texts.as_ref(), p.new_texts.as_ref());
                writeln!(
                    md,
                    "| {name} | {variant} | {} | {} | {} | {} | {} |",
                    users.name(),
                    pct(Some(p.overall.accuracy)),
                    pct(p.seen_texts.as_ref().map(|s| s.accuracy)),
                    pct(p.new_texts.as_ref().map(|s| s.accuracy)),
                    gap.map_or("–".into(), |(d, se)| format!("{d:+.1} (2 SE {se:.1})")),
                )?;
                if variant == "copl"
                    && let Some((d, se)) = gap
                {
                    readings.push(format!(
                        "{name}, {} users: CoPL {d:+.1} points on new texts ({} 2 SE = \
                         {se:.1}; {} the issue's {NEW_TEXT_BOUND:.0})",
                        users.name(),
                        if d.abs() <= se { "within" } else { "beyond" },
                        if d >= -NEW_TEXT_BOUND {
                            "within"
                        } else {
                            "beyond"
                        },
                    ));
                }
            }
        }
    }
    writeln!(md)?;
    if !readings.is_empty() {
        writeln!(
            md,
            "Reading (one seed): {}. Compare models within a column: the two pools mix \
             controversial and common pairs in other shares (the seen-text pool keeps only \
             pairs whose responses are both in survey pairs), so a shared reward's \
             (Uniform's) accuracy moves between them for that alone, up or down by data \
             set (docs/benchmarks.md \"Four groups at 10 000 users, and new texts\").\n",
            readings.join("; ")
        )?;
    }
    Ok(())
}

/// New-text accuracy minus seen-text accuracy in points, with 2 SE of the difference;
/// none when either slice is absent or empty.
fn texts_gap(seen: Option<&Slice>, new: Option<&Slice>) -> Option<(f64, f64)> {
    let (seen, new) = (seen?, new?);
    if seen.pairs == 0 || new.pairs == 0 {
        return None;
    }
    Some((
        100.0 * (new.accuracy - seen.accuracy),
        100.0 * two_se((new.accuracy, new.pairs), (seen.accuracy, seen.pairs)),
    ))
}
