//! Table 2's MoLE cells over seeds (issue #13, item 6): `mole-seeds/<set>/s<seed>/
//! <variant>.eval.json` (`scripts/mole-seeds.sh`, each seed its own data, GCF and reward
//! model), as mean ± sample standard deviation, with the differences the issue's
//! criteria name (CoPL − Uniform, CoPL − G-Oracle) paired by seed and their standard
//! errors.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use anyhow::Result;

use super::runs::{Users, Written, evals_in, mean_std, name_of, overall, read_if_there, subdirs};

/// The row of the data's best single reward (`synth.json`'s `population_test_accuracy`).
const BEST_SINGLE: &str = "best single reward";

/// Accuracy (in [0, 1]) by variant, users and seed, of one data set.
type BySeed = BTreeMap<(String, &'static str), BTreeMap<u64, f64>>;

/// `mean ± std (n)` in percent (`mean (n = 1)` for one seed), `–` for none.
fn shown(values: &[f64]) -> String {
    if values.is_empty() {
        return "–".to_string();
    }
    let (m, s) = mean_std(values);
    if values.len() == 1 {
        // One seed has no spread to show.
        return format!("{:.2} (n = 1)", 100.0 * m);
    }
    format!("{:.2} ± {:.2} (n = {})", 100.0 * m, 100.0 * s, values.len())
}

/// Every seed's evaluations of one set: `s<seed>` directories.
fn load(set: &Path) -> Result<BySeed> {
    let mut found = BySeed::new();
    for dir in subdirs(set) {
        let Some(seed) = name_of(&dir)
            .strip_prefix('s')
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        // The data's best single reward (one preference for everybody, its test
        // accuracy), a row beside the models: personal's criterion is against it.
        if let Some(synth) =
            read_if_there::<copl_synth::Summary>(&dir.join("data").join("synth.json"))?
        {
            for users in Users::BOTH {
                found
                    .entry((BEST_SINGLE.to_string(), users.name()))
                    .or_default()
                    .insert(seed, synth.population_test_accuracy);
            }
        }
        for (variant, e) in evals_in(&dir)? {
            for users in Users::BOTH {
                if let Some(slice) = overall(&e, users) {
                    found
                        .entry((variant.clone(), users.name()))
                        .or_default()
                        .insert(seed, slice.accuracy);
                }
            }
        }
    }
    Ok(found)
}

/// `a − b` seed by seed, over the seeds both have.
fn paired(a: &BTreeMap<u64, f64>, b: &BTreeMap<u64, f64>) -> Vec<f64> {
    a.iter()
        .filter_map(|(seed, x)| Some(x - b.get(seed)?))
        .collect()
}

/// The section.
pub fn mole_seeds(runs: &Path, md: &mut String, written: &mut Written) -> Result<()> {
    writeln!(
        md,
        "## Reward models over seeds (Table 2's cells, mean ± std)\n"
    )?;
    let dir = runs.join("mole-seeds");
    let Some(sets) = written.require(
        subdirs(&dir),
        &dir,
        "no seeded reward-model run (scripts/mole-seeds.sh with OUT=<runs>/mole-seeds/<set>)",
    ) else {
        return Ok(());
    };
    md.push_str(&tables(&sets)?);
    Ok(())
}

/// The tables of the seeded sets `sets` (each a directory of `s<seed>/` runs): mean ±
/// std per variant, then CoPL's paired differences. The report's section and
/// `copl-report seeds` (what `scripts/mole-seeds.sh` prints) are this one text.
pub fn tables(sets: &[std::path::PathBuf]) -> Result<String> {
    let mut md = String::new();
    writeln!(
        md,
        "Each seed generates its own data set and trains GCF and every model again \
         (`scripts/mole-seeds.sh`, the recipe of scripts/lib/mole.sh); accuracy (%) on \
         held-out test pairs as mean ± sample standard deviation over the seeds; the \
         differences are paired by seed (same data), with the standard error of their \
         mean.\n\n| data set | variant | seen | unseen |\n|---|---|---|---|"
    )?;
    let mut differences = Vec::new();
    for set in sets {
        let name = name_of(set);
        let found = load(set)?;
        let variants: Vec<&String> = {
            let mut v: Vec<&String> = found.keys().map(|(v, _)| v).collect();
            v.dedup();
            v
        };
        for variant in &variants {
            let cell = |users: Users| {
                found
                    .get(&((*variant).clone(), users.name()))
                    .map(|by_seed| shown(&by_seed.values().copied().collect::<Vec<_>>()))
                    .unwrap_or_else(|| "–".into())
            };
            writeln!(
                md,
                "| {name} | {variant} | {} | {} |",
                cell(Users::Seen),
                cell(Users::Unseen)
            )?;
        }
        for other in ["uniform", "g-oracle", BEST_SINGLE] {
            for users in Users::BOTH {
                let key = |v: &str| (v.to_string(), users.name());
                let (Some(copl), Some(b)) = (found.get(&key("copl")), found.get(&key(other)))
                else {
                    continue;
                };
                let d = paired(copl, b);
                if d.is_empty() {
                    continue;
                }
                let (m, s) = mean_std(&d);
                let se = s / (d.len() as f64).sqrt();
                let (se, reading) = if d.len() > 1 {
                    let beyond = m.abs() > 2.0 * se;
                    (
                        format!("{:.2}", 100.0 * se),
                        if beyond {
                            "beyond 2 SE"
                        } else {
                            "within 2 SE: noise"
                        },
                    )
                } else {
                    ("–".into(), "one seed")
                };
                differences.push(format!(
                    "| {name} | copl − {other} | {} | {:+.2} | {se} | {} | {reading} |",
                    users.name(),
                    100.0 * m,
                    d.len()
                ));
            }
        }
    }
    writeln!(md)?;
    if !differences.is_empty() {
        writeln!(
            md,
            "| data set | difference | users | points (mean) | standard error | seeds | \
             reading |\n|---|---|---|---|---|---|---|\n{}\n",
            differences.join("\n")
        )?;
    }
    Ok(md)
}
