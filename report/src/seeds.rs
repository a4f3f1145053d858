//! The cheap stages over several seeds (`seeds/`, `scripts/seed-benchmarks.sh`): GCF
//! against its baselines (Tables 6 / A4) and the adaptation methods (Table 5) as mean ±
//! standard deviation, and the paper's orderings counted seed by seed.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use anyhow::Result;

use super::runs::{Ordering, Written, files, mean_std, read_typed};
use copl_synth as synth;
use copl_trainer::{gcf::GcfEval, onboard::UnseenEval};

/// `mean ± std` in percent.
fn shown(values: &[f64]) -> String {
    let (m, s) = mean_std(values);
    format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * s)
}

/// `<set>-<rest>-s<seed>` → (`<set>` (two dash-separated parts), `<rest>`, seed).
fn parse(stem: &str) -> Option<(String, String, u64)> {
    let (prefix, seed) = stem.rsplit_once("-s")?;
    let seed = seed.parse().ok()?;
    let mut parts = prefix.splitn(3, '-');
    let set = format!("{}-{}", parts.next()?, parts.next()?);
    Some((set, parts.next().unwrap_or("").to_string(), seed))
}

/// Values keyed by (set, model), each with its seed.
type BySeed = BTreeMap<(String, String), BTreeMap<u64, f64>>;

/// Counts the seeds where `a` beats `b` (seeds both have).
fn ordering(
    claim: String,
    a: (&str, &BTreeMap<u64, f64>),
    b: (&str, &BTreeMap<u64, f64>),
) -> Ordering {
    let common: Vec<(f64, f64)> =
        a.1.iter()
            .filter_map(|(seed, x)| Some((*x, *b.1.get(seed)?)))
            .collect();
    let wins = common.iter().filter(|(x, y)| x > y).count();
    let (xs, ys): (Vec<f64>, Vec<f64>) = common.iter().copied().unzip();
    Ordering {
        claim,
        holds: !common.is_empty() && wins == common.len(),
        evidence: format!(
            "{} {}, {} {}; in {wins} of {} seeds",
            a.0,
            shown(&xs),
            b.0,
            shown(&ys),
            common.len()
        ),
    }
}

/// The section: GCF and adaptation over seeds, with the orderings seed by seed.
pub fn seeds(runs: &Path, md: &mut String, written: &mut Written) -> Result<()> {
    writeln!(md, "## Over seeds (mean ± std)\n")?;
    let dir = runs.join("seeds");
    let Some(evals) = written.require(
        files(&dir, ".eval.json"),
        &dir,
        "no seed run (scripts/seed-benchmarks.sh with OUT=<runs>/seeds)",
    ) else {
        return Ok(());
    };
    let mut gcf: BySeed = BTreeMap::new();
    for (stem, path) in evals {
        let Some((set, model, seed)) = parse(&stem) else {
            continue;
        };
        let e: GcfEval = read_typed(&path)?;
        gcf.entry((set, model))
            .or_default()
            .insert(seed, e.overall.accuracy);
    }
    let mut adaptation: BySeed = BTreeMap::new();
    for (stem, path) in files(&dir, ".unseen.json") {
        // `<set>-s<seed>`.
        let Some((set, seed)) = stem
            .rsplit_once("-s")
            .and_then(|(set, seed)| Some((set.to_string(), seed.parse::<u64>().ok()?)))
        else {
            continue;
        };
        let e: UnseenEval = read_typed(&path)?;
        for method in ["copl_2hop", "naive_avg_2hop", "user_opt"] {
            if let Some(a) = e.methods.get(method).map(|m| m.accuracy) {
                adaptation
                    .entry((set.clone(), method.to_string()))
                    .or_default()
                    .insert(seed, a);
            }
        }
    }
    let seed_count = gcf.values().map(BTreeMap::len).max().unwrap_or(0);
    // The generator's settings, from any seed's data.
    let users = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("synth.json"))
        .find(|p| p.exists())
        .and_then(|p| Some(read_typed::<synth::Summary>(&p).ok()?.config.users))
        .map_or_else(|| "?".to_string(), |u| u.to_string());
    writeln!(
        md,
        "Each seed generates its own data set ({users} seen users) and trains again \
         (`scripts/seed-benchmarks.sh`); accuracy (%) as mean ± sample standard \
         deviation over {seed_count} seeds.\n\n| data set | model or method | held-out \
         accuracy | seeds |\n|---|---|---|---|"
    )?;
    for ((set, model), values) in gcf.iter().chain(adaptation.iter()) {
        let values: Vec<f64> = values.values().copied().collect();
        writeln!(
            md,
            "| {set} | {model} | {} | {} |",
            shown(&values),
            values.len()
        )?;
    }
    writeln!(md)?;
    let get = |map: &BySeed, set: &str, model: &str| {
        map.get(&(set.to_string(), model.to_string())).cloned()
    };
    if let (Some(full), Some(no_neg)) = (
        get(&gcf, "ufp2-all", "gcf"),
        get(&gcf, "ufp2-all", "no-neg"),
    ) {
        written.orderings.push(ordering(
            "ufp2 all, over seeds: negative edges help GCF (Table A4)".into(),
            ("with", &full),
            ("without", &no_neg),
        ));
    }
    for set in ["ufp4-all", "ufp4-avg"] {
        if let (Some(g), Some(mf)) = (get(&gcf, set, "gcf"), get(&gcf, set, "mf")) {
            written.orderings.push(ordering(
                format!("{set}, over seeds: GCF over matrix factorisation (Table 6)"),
                ("GCF", &g),
                ("MF", &mf),
            ));
        }
        let copl = get(&adaptation, set, "copl_2hop");
        for (method, label) in [
            ("naive_avg_2hop", "naive average"),
            ("user_opt", "per-user optimisation"),
        ] {
            if let (Some(c), Some(other)) = (&copl, get(&adaptation, set, method)) {
                written.orderings.push(ordering(
                    format!("{set}, over seeds: CoPL adaptation over {label} (Table 5)"),
                    ("CoPL 2-hop", c),
                    (label, &other),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
        assert_eq!(mean_std(&[0.5]), (0.5, 0.0));
        assert!(mean_std(&[]).0.is_nan());
    }

    #[test]
    fn names_parse_into_set_model_and_seed() {
        assert_eq!(
            parse("ufp2-all-no-neg-s2"),
            Some(("ufp2-all".into(), "no-neg".into(), 2))
        );
        assert_eq!(
            parse("ufp4-avg-gcf-s10"),
            Some(("ufp4-avg".into(), "gcf".into(), 10))
        );
        assert_eq!(parse("ufp4-avg-gcf"), None);
    }
}
