//! Issue #13 item 5: annotators' label noise. `noise/<set>/` (`scripts/report.sh`, stage
//! noise; `synth --label-noise`) holds CoPL and Uniform trained and tested on data with
//! a share of labels flipped — test labels alike, so no model can pass the share left
//! unflipped, the data's `ground_truth_test_accuracy` — and `noise/<set>-keep-last/`
//! CoPL over GCF's last epoch instead of its best by validation (`gcf --keep-last`).

use std::{fmt::Write as _, path::Path};

use anyhow::Result;
use copl_synth::Summary as SynthSummary;
use copl_trainer::gcf::GcfSummary;

use super::runs::{
    Users, Written, eval_of, evals_in, name_of, overall, pct, read_if_there, subdirs,
};

/// The section.
pub fn noise(runs: &Path, md: &mut String, written: &mut Written) -> Result<()> {
    writeln!(md, "## Label noise\n")?;
    let dir = runs.join("noise");
    let Some(sets) = written.require(
        subdirs(&dir),
        &dir,
        "no run on noisy labels (scripts/report.sh, stage noise)",
    ) else {
        return Ok(());
    };
    writeln!(
        md,
        "A share of every user's labels flipped at random (`synth --label-noise`), in \
         training and test alike: the ceiling is the share of test labels left unflipped, \
         the shared-preference bound the best any non-personalised model can do. GCF's \
         user embeddings are its best epoch by validation unless the set says last epoch \
         (`gcf --keep-last`); the GCF columns are its held-out accuracy and the epoch kept.\n\n\
         | data set | noise | model | seen | unseen | ceiling | shared-preference bound | \
         GCF test | GCF epoch kept |\n|---|---|---|---|---|---|---|---|---|"
    )?;
    let mut readings = Vec::new();
    for set in &sets {
        let name = name_of(set);
        let synth: Option<SynthSummary> = read_if_there(&set.join("data").join("synth.json"))?;
        let gcf: Option<GcfSummary> = read_if_there(&set.join("gcf.json"))?;
        let evals = evals_in(set)?;
        let noise = synth
            .as_ref()
            .map_or("?".into(), |s| format!("{:.2}", s.config.label_noise));
        let ceiling = synth.as_ref().map(|s| s.ground_truth_test_accuracy);
        let shared = synth.as_ref().map(|s| s.population_test_accuracy);
        let gcf_test = gcf.as_ref().map(|g| g.test_accuracy);
        let kept = gcf
            .as_ref()
            .map_or("?".into(), |g| g.best_epoch.to_string());
        for (variant, e) in &evals {
            writeln!(
                md,
                "| {name} | {noise} | {variant} | {} | {} | {} | {} | {} | {kept} |",
                pct(overall(e, Users::Seen).map(|s| s.accuracy)),
                pct(overall(e, Users::Unseen).map(|s| s.accuracy)),
                pct(ceiling),
                pct(shared),
                pct(gcf_test),
            )?;
        }
        let Some(copl) = eval_of(&evals, "copl").and_then(|e| overall(e, Users::Seen)) else {
            continue;
        };
        let mut parts = vec![format!(
            "CoPL {:.1} seen (2 SE of a cell ≤ {:.1} at {} pairs)",
            100.0 * copl.accuracy,
            200.0 * (0.25 / copl.pairs.max(1) as f64).sqrt(),
            copl.pairs
        )];
        if let Some(c) = ceiling {
            parts.push(format!(
                "{:+.1} points from the ceiling",
                100.0 * (copl.accuracy - c)
            ));
        }
        if let Some(s) = shared {
            parts.push(format!(
                "{:+.1} from the shared-preference bound",
                100.0 * (copl.accuracy - s)
            ));
        }
        if let Some(u) = eval_of(&evals, "uniform").and_then(|e| overall(e, Users::Seen)) {
            parts.push(format!(
                "{:+.1} from Uniform",
                100.0 * (copl.accuracy - u.accuracy)
            ));
        }
        readings.push(format!("{name}: {}", parts.join(", ")));
    }
    writeln!(md)?;
    if !readings.is_empty() {
        writeln!(
            md,
            "Reading (one seed): {}. Where GCF \
             keeps an early epoch it has fitted the flipped labels' noise, not the groups \
             (docs/benchmarks.md \"Label noise\").\n",
            readings.join("; ")
        )?;
    }
    Ok(())
}
