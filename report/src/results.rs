//! `copl-report`: reads the JSON the evaluation commands write under one runs
//! directory and writes `results.md` (tables) and PNG figures. Every number comes from
//! those files; a table whose inputs are missing says which file and which script makes
//! it. Layout of `runs` (what `scripts/report.sh` produces):
//!
//! - `gcf/<preset>-<sampling>-<gcf|mf>.eval.json` (`copl-train eval-gcf --json`): GCF
//!   against MF held-out accuracy (Table 6); `gcf/ufp2-all-<full|no-neg|no-transform|
//!   no-all>.eval.json`: the message-passing ablation (Table A4);
//! - `onboard/<preset>-<sampling>.eval.json` (`copl-train eval-unseen --json`):
//!   adaptation methods (Table 5) and accuracy against answers (Fig. 5);
//! - `mole/<data set>/<variant>.eval.json` (`copl-train eval --json`): reward models,
//!   seen and unseen, controversial and common (Tables 2 and 3), beside the data set's
//!   `data/synth.json` (its preset, sampling and ground-truth bound) and the training
//!   summaries `<variant>.json` (its scale);
//! - `imbalance/<preset>-<a>-<b>/copl.eval.json`: CoPL under group sizes a:b (Fig. 4);
//!   other `copl-*` variants there are the §7 options (re-weighting, load balancing),
//!   with `<variant>.experts.json` (`copl-train eval-experts`) for the experts used;
//! - `longer/<set>/<variant>.eval.json` and `<variant>.json`: a `mole/` or `imbalance/`
//!   set retrained with more steps (the same data and embeddings);
//! - `mole-seeds/<set>/s<seed>/<variant>.eval.json` (`scripts/mole-seeds.sh`): Table 2's
//!   reward models over seeds;
//! - `seeds/<set>-<model>-s<seed>.eval.json` and `seeds/<set>-s<seed>.unseen.json`
//!   (`scripts/seed-benchmarks.sh`): GCF and adaptation over seeds.

use std::{fmt::Write as _, fs, path::Path};

use anyhow::{Context, Result};

use super::figures::{self, Series};
use super::paper::{paper_number as paper, paper_pct};
pub use super::runs::{Ordering, Written};
use super::runs::{
    experts_used, files, mole_sets, name_of, own_experts, pct, read_typed, relative,
};
use copl_trainer::mole::allocation::CheckpointAllocation;
use copl_trainer::projection::{Projection, UserPoint};

use copl_trainer::{gcf::GcfEval, onboard::UnseenEval};

/// Writes `markdown` and the figures into `figures_dir` from `runs`.
pub fn report(runs: &Path, figures_dir: &Path, markdown: &Path) -> Result<Written> {
    fs::create_dir_all(figures_dir)
        .with_context(|| format!("creating {}", figures_dir.display()))?;
    let mut md = String::new();
    let mut written = Written {
        markdown: markdown.to_path_buf(),
        figures: Vec::new(),
        missing: Vec::new(),
        orderings: Vec::new(),
    };
    writeln!(
        md,
        "# Results\n\nMade by one command, `scripts/report.sh`: it runs each evaluation \
         stage (its header states their scales on this 2-core machine) and ends with \
         `copl-report --runs {}`, which wrote this file from the evaluation JSON \
         under that directory; nothing here is typed by hand. Table 2 and the \
         sections after it are one seed (seed 0); Table 2's ALL cells are repeated over \
         three seeds in the section after it (mean ± std, CoPL's differences with their \
         standard errors), the cheap stages in the last section. A difference inside two \
         standard errors is noise, a win as much as a loss. Our data sets are \
         synthetic analogs of the paper's (docs/data.md) and our backbone is MiniLM, not \
         gemma-2b-it: where a paper number stands beside ours, compare orderings, not \
         levels.\n",
        runs.display()
    )?;
    super::reward_models::reward_models(runs, &mut md, &mut written)?;
    super::mole_seeds::mole_seeds(runs, &mut md, &mut written)?;
    super::routing::routing(runs, figures_dir, markdown, &mut md, &mut written)?;
    super::strength::strength(runs, &mut md, &mut written)?;
    super::noise::noise(runs, &mut md, &mut written)?;
    super::new_texts::new_texts(runs, &mut md, &mut written)?;
    super::imbalance::imbalance(runs, figures_dir, markdown, &mut md, &mut written)?;
    super::imbalance::options(runs, &mut md, &mut written)?;
    expert_allocation(runs, figures_dir, markdown, &mut md, &mut written)?;
    projections(runs, figures_dir, markdown, &mut md, &mut written)?;
    adaptation(runs, figures_dir, markdown, &mut md, &mut written)?;
    gcf(runs, &mut md, &mut written)?;
    super::longer::longer(runs, &mut md, &mut written)?;
    super::seeds::seeds(runs, &mut md, &mut written)?;
    if !written.orderings.is_empty() {
        writeln!(
            md,
            "## Orderings the paper claims, checked on these numbers\n\n| claim | holds here | \
             numbers |\n|---|---|---|"
        )?;
        for o in &written.orderings {
            let holds = if o.holds { "yes" } else { "**no**" };
            writeln!(md, "| {} | {holds} | {} |", o.claim, o.evidence)?;
        }
        writeln!(md)?;
    }
    if !written.missing.is_empty() {
        writeln!(md, "## Not run yet\n")?;
        for m in &written.missing {
            writeln!(md, "- {m}")?;
        }
        writeln!(md)?;
    }
    fs::write(markdown, &md).with_context(|| format!("writing {}", markdown.display()))?;
    Ok(written)
}

/// Fig. 6: which experts each group's users are routed to, per projection
/// (`mole/<set>/<variant>.experts.json`, `copl-train eval-experts`).
fn expert_allocation(
    runs: &Path,
    figures_dir: &Path,
    markdown: &Path,
    md: &mut String,
    written: &mut Written,
) -> Result<()> {
    let mut found = Vec::new();
    for set in &mole_sets(runs) {
        let name = name_of(set);
        for (variant, path) in files(set, ".experts.json") {
            found.push((
                name.clone(),
                variant,
                read_typed::<CheckpointAllocation>(&path)?,
            ));
        }
    }
    writeln!(md, "## Expert allocation by group (Fig. 6)\n")?;
    let Some(found) = written.require(
        found,
        &runs.join("mole"),
        "no expert allocation (copl-train eval-experts > <set>/<variant>.experts.json)",
    ) else {
        return Ok(());
    };
    writeln!(
        md,
        "Each seen user routed by the gates (top-1, eq. 9); per projection, the experts \
         that receive anyone and each group's most chosen expert with its share.\n\n\
         | data set | variant | projection | experts used | group: top expert (share) |\n\
         |---|---|---|---|---|"
    )?;
    let mut drawn = Vec::new();
    for (set, variant, e) in &found {
        let experts = e.allocation.experts;
        for (p, projection) in e.projections.iter().enumerate() {
            let mut tops = Vec::new();
            let mut series = Vec::new();
            for (group, table) in &e.allocation.shares {
                let row: Vec<f64> = table.get(p).cloned().unwrap_or_default();
                if let Some((top, share)) = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))
                {
                    tops.push(format!("{group}: e{top} ({:.0} %)", 100.0 * share));
                }
                series.push((group.clone(), row));
            }
            writeln!(
                md,
                "| {set} | {variant} | {projection} | {} of {experts} | {} |",
                e.experts_used.get(p).copied().unwrap_or(0),
                tops.join("; ")
            )?;
            let file = figures_dir.join(format!("fig6-{set}-{variant}-{p}.png"));
            let categories: Vec<String> = (0..experts).map(|x| format!("e{x}")).collect();
            figures::bars(
                &file,
                &format!("{set}, {variant}: {projection}"),
                "share of the group's users",
                &categories,
                &series,
            )?;
            drawn.push(file);
        }
    }
    writeln!(md)?;
    for (set, variant, e) in &found {
        let (own, total) = own_experts(e);
        let Some(used) = experts_used(e).filter(|_| total > 0) else {
            continue;
        };
        writeln!(
            md,
            "Reading, {set} {variant}: in {own} of {total} projections every group goes to \
             an expert of its own (its top expert takes ≥ 90 % of its users, no two groups \
             share it); {:.1} of {} experts receive anyone on average. The paper's Fig. 6 \
             (UF-P-4 ALL) routes a group's users to the same expert and leaves experts \
             inactive (its §7; the load-balancing option above measures spreading them).\n",
            used, e.allocation.experts,
        )?;
    }
    for file in &drawn {
        writeln!(md, "![Fig. 6 analog]({})\n", relative(markdown, file))?;
    }
    written.figures.extend(drawn);
    Ok(())
}

/// Share of unseen points nearest (2-D) to the centroid of their own group's seen
/// points; `None` without unseen points.
fn nearest_own_centroid(points: &[UserPoint]) -> Option<f64> {
    let mut sums: std::collections::BTreeMap<&str, (f64, f64, f64)> =
        std::collections::BTreeMap::new();
    for p in points.iter().filter(|p| !p.unseen) {
        let s = sums.entry(p.group.as_str()).or_default();
        *s = (s.0 + p.x, s.1 + p.y, s.2 + 1.0);
    }
    let centroids: Vec<(&str, f64, f64)> = sums
        .iter()
        .map(|(g, (x, y, n))| (*g, x / n, y / n))
        .collect();
    let (mut right, mut all) = (0usize, 0usize);
    for p in points.iter().filter(|p| p.unseen) {
        let (g, x, y) = (p.group.as_str(), p.x, p.y);
        let nearest = centroids
            .iter()
            .min_by(|a, b| {
                let d = |c: &&(&str, f64, f64)| (c.1 - x).powi(2) + (c.2 - y).powi(2);
                d(a).total_cmp(&d(b))
            })
            .map(|c| c.0);
        all += 1;
        right += usize::from(nearest == Some(g));
    }
    (all > 0).then(|| right as f64 / all as f64)
}

/// Fig. 1 / A2: seen and onboarded unseen users on the seen users' two principal
/// components, coloured by ground-truth group (`onboard/<set>.projection.json`).
fn projections(
    runs: &Path,
    figures_dir: &Path,
    markdown: &Path,
    md: &mut String,
    written: &mut Written,
) -> Result<()> {
    writeln!(
        md,
        "## User embeddings in two dimensions (Fig. 1, Fig. A2)\n"
    )?;
    let dir = runs.join("onboard");
    let Some(found) = written.require(
        files(&dir, ".projection.json"),
        &dir,
        "no projection (copl-train eval-projection > <set>.projection.json)",
    ) else {
        return Ok(());
    };
    for (set, path) in found {
        let p: Projection = read_typed(&path)?;
        let mut series: std::collections::BTreeMap<String, Vec<(f64, f64)>> =
            std::collections::BTreeMap::new();
        for point in &p.points {
            let kind = if point.unseen {
                "unseen (onboarded)"
            } else {
                "seen"
            };
            series
                .entry(format!("{}, {kind}", point.group))
                .or_default()
                .push((point.x, point.y));
        }
        let explained: Vec<String> = p
            .explained
            .iter()
            .map(|v| format!("{:.0} %", 100.0 * v))
            .collect();
        let file = figures_dir.join(format!("fig1-{set}.png"));
        let series: Vec<Series> = series
            .into_iter()
            .map(|(name, points)| Series { name, points })
            .collect();
        figures::scatter(
            &file,
            &format!("{set}: user embeddings, first two principal components"),
            ("component 1", "component 2"),
            &series,
        )?;
        writeln!(
            md,
            "{set}: {} users ({}); the components explain {} of the seen embeddings' \
             variance.\n\n![Fig. 1 analog, {set}]({})\n",
            series.iter().map(|s| s.points.len()).sum::<usize>(),
            series
                .iter()
                .map(|s| format!("{} {}", s.points.len(), s.name))
                .collect::<Vec<_>>()
                .join(", "),
            explained.join(" and "),
            relative(markdown, &file)
        )?;
        if let Some(share) = nearest_own_centroid(&p.points) {
            writeln!(
                md,
                "Reading, {set}: {:.0} % of the onboarded unseen users lie nearest (in these \
                 two dimensions) to their own group's seen users, as in the paper's Fig. 1, \
                 where onboarded users fall inside their group's cluster.\n",
                100.0 * share
            )?;
        }
        written.figures.push(file);
    }
    Ok(())
}

/// Table 5 and Fig. 5: adaptation methods and accuracy against answers.
fn adaptation(
    runs: &Path,
    figures_dir: &Path,
    markdown: &Path,
    md: &mut String,
    written: &mut Written,
) -> Result<()> {
    writeln!(
        md,
        "## Adapting to unseen users (Table 5, Fig. 5)\n\nOurs: accuracy of the adapted \
         GCF embeddings' scores on the unseen users' test pairs (`copl-train eval-unseen`). \
         The paper's rows are its reward model's accuracy with the adapted embeddings.\n"
    )?;
    let dir = runs.join("onboard");
    let Some(evals) = written.require(
        files(&dir, ".eval.json"),
        &dir,
        "no eval-unseen output (scripts/onboard-benchmarks.sh with OUT=<runs>/onboard)",
    ) else {
        return Ok(());
    };
    writeln!(
        md,
        "| data set | seen (GCF) | CoPL 2-hop | CoPL 4-hop | naive average | per-user \
         optimisation | population |\n|---|---|---|---|---|---|---|"
    )?;
    let mut loaded = Vec::new();
    for (set, path) in evals {
        let e: UnseenEval = read_typed(&path)?;
        let acc = |k: &str| e.methods.get(k).map(|m| m.accuracy);
        writeln!(
            md,
            "| {set} | {} | {} | {} | {} | {} | {} |",
            pct(Some(e.seen_accuracy)),
            pct(acc("copl_2hop")),
            pct(acc("copl_4hop")),
            pct(acc("naive_avg_2hop")),
            pct(acc("user_opt")),
            pct(acc("population")),
        )?;
        if paper(&set, "copl_2hop").is_some() {
            writeln!(
                md,
                "| {set}, paper (gemma-2b-it) | – | {} | – | {} | {} | – |",
                paper_pct(&set, "copl_2hop"),
                paper_pct(&set, "naive_avg_2hop"),
                paper_pct(&set, "user_opt"),
            )?;
        }
        if let (Some(copl), Some(naive), Some(opt)) =
            (acc("copl_2hop"), acc("naive_avg_2hop"), acc("user_opt"))
        {
            written.orderings.push(Ordering {
                claim: format!(
                    "{set}: CoPL adaptation over the naive average and per-user optimisation"
                ),
                holds: copl > naive && copl > opt,
                evidence: format!(
                    "CoPL 2-hop {:.2}, naive average {:.2}, per-user optimisation {:.2}",
                    100.0 * copl,
                    100.0 * naive,
                    100.0 * opt
                ),
            });
        }
        loaded.push((set, e));
    }
    writeln!(md)?;
    for (set, e) in &loaded {
        let points = &e.by_answers;
        if points.is_empty() {
            continue;
        }
        type Curve = fn(&copl_trainer::onboard::AnswersPoint) -> Option<f64>;
        let curves: [(&str, Curve); 4] = [
            ("random pairs, 2-hop", |p| Some(p.random_2hop)),
            ("random pairs, 4-hop", |p| Some(p.random_4hop)),
            ("suggested pairs (adaptive)", |p| p.suggested_adaptive),
            ("suggested pairs (batch)", |p| p.suggested_batch),
        ];
        let series: Vec<Series> = curves
            .iter()
            .map(|(label, curve)| Series {
                name: label.to_string(),
                points: points
                    .iter()
                    .filter_map(|p| Some((p.answers as f64, 100.0 * curve(p)?)))
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        let file = figures_dir.join(format!("fig5-{set}.png"));
        figures::line_chart(
            &file,
            &format!("Unseen users, {set}: accuracy against answers"),
            ("answers per user", "accuracy (%)"),
            &series,
        )?;
        let shown = relative(markdown, &file);
        writeln!(md, "![Fig. 5 analog, {set}]({shown})\n")?;
        let at = |curve: Curve, i: usize| points.get(i).and_then(curve);
        let last = points.len().saturating_sub(1);
        if let (Some(a0), Some(a1), Some(r0), Some(r1), Some(s1), Some(h1)) = (
            points.first().map(|p| p.answers),
            points.last().map(|p| p.answers),
            at(curves[0].1, 0),
            at(curves[0].1, last),
            at(curves[2].1, last),
            at(curves[1].1, last),
        ) {
            writeln!(
                md,
                "Reading, {set}: from {a0} to {a1} answers, random pairs with 2 hops go from \
                 {:.1} to {:.1}; at {a1} answers suggested pairs give {:.1} ({:+.1}) and 4 \
                 hops {:.1} ({:+.1}). The paper's Fig. 5 also rises with answers, finds eight \
                 enough and no significant difference between 2 and 4 hops; suggested \
                 pairs (SuggestSurvey) are ours, not the paper's.\n",
                100.0 * r0,
                100.0 * r1,
                100.0 * s1,
                100.0 * (s1 - r1),
                100.0 * h1,
                100.0 * (h1 - r1),
            )?;
        }
        written.figures.push(file);
    }
    Ok(())
}

/// Table 6 and Table A4: GCF's accuracy and the message-passing ablation, and how well
/// each run's embeddings identify the users' groups (what the gates need).
fn gcf(runs: &Path, md: &mut String, written: &mut Written) -> Result<()> {
    writeln!(md, "## User embeddings (Table 6, Table A4)\n")?;
    let dir = runs.join("gcf");
    let Some(evals) = written.require(
        files(&dir, ".eval.json"),
        &dir,
        "no eval-gcf output (scripts/gcf-benchmarks.sh with OUT=<runs>/gcf)",
    ) else {
        return Ok(());
    };
    let evals: Vec<(String, GcfEval)> = evals
        .into_iter()
        .map(|(run, path)| Ok((run, read_typed::<GcfEval>(&path)?)))
        .collect::<Result<_>>()?;
    writeln!(
        md,
        "Test pairs are pairs nobody trained on; the paper reports GCF on held-out survey \
         pairs (its column), which `copl-train gcf` reports as validation accuracy.\n\n\
         | run | model | test accuracy | paper held-out (gemma-2b-it) | shared-preference \
         bound | ground-truth bound |\n|---|---|---|---|---|---|"
    )?;
    let mut accuracy = std::collections::BTreeMap::new();
    for (run, e) in &evals {
        let f = |x: Option<f64>| x.map_or_else(|| "–".to_string(), |v| format!("{:.2}", 100.0 * v));
        writeln!(
            md,
            "| {run} | {} | {} | {} | {} | {} |",
            e.model,
            f(Some(e.overall.accuracy)),
            paper_pct(run, &e.model),
            f(e.shared_preference_bound),
            f(e.ground_truth_bound),
        )?;
        accuracy.insert(run.clone(), e.overall.accuracy);
    }
    writeln!(md)?;
    identification(md, &evals)?;
    if let (Some(full), Some(no_neg)) = (
        accuracy.get("ufp2-all-full"),
        accuracy.get("ufp2-all-no-neg"),
    ) {
        written.orderings.push(Ordering {
            claim: "ufp2 all: negative edges help GCF (Table A4)".into(),
            holds: full > no_neg,
            evidence: format!(
                "with {:.2}, without negative edges {:.2}",
                100.0 * full,
                100.0 * no_neg
            ),
        });
    }
    for set in ["ufp4-all", "ufp4-avg"] {
        if let (Some(g), Some(mf)) = (
            accuracy.get(&format!("{set}-gcf")),
            accuracy.get(&format!("{set}-mf")),
        ) {
            written.orderings.push(Ordering {
                claim: format!("{set}: GCF over matrix factorisation (Table 6)"),
                holds: g > mf,
                evidence: format!("GCF {:.2}, MF {:.2}", 100.0 * g, 100.0 * mf),
            });
        }
    }
    Ok(())
}

/// How well each run's user embeddings identify the users' groups or weights.
fn identification(md: &mut String, evals: &[(String, GcfEval)]) -> Result<()> {
    let rows: Vec<(&String, &copl_trainer::gcf::GroupIdentification)> = evals
        .iter()
        .filter_map(|(run, e)| Some((run, e.identification.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(
        md,
        "How well the embeddings identify each user's preference (`copl-train eval-gcf`): a \
         linear probe's accuracy on held-out seen users and on unseen users onboarded from \
         their answers (2 hops), the NMI of k-means with the groups, for mixtures the R² \
         of a ridge regression onto the weights; the Bayes bound is the share of users whose \
         group their own training answers identify.\n\n\
         | run | probe, seen | probe, unseen | NMI, seen | NMI, unseen | weights R², seen \
         | weights R², unseen | Bayes bound |\n|---|---|---|---|---|---|---|---|"
    )?;
    let p = |x: Option<f64>| x.map_or_else(|| "–".to_string(), |v| format!("{:.1}", 100.0 * v));
    let n = |x: Option<f64>| x.map_or_else(|| "–".to_string(), |v| format!("{v:.3}"));
    for (run, id) in rows {
        let unseen = id.unseen.clone().unwrap_or_default();
        writeln!(
            md,
            "| {run} | {} | {} | {} | {} | {} | {} | {} |",
            p(id.seen.probe_accuracy),
            p(unseen.probe_accuracy),
            n(id.seen.kmeans_nmi),
            n(unseen.kmeans_nmi),
            n(id.seen.weights_r2),
            n(unseen.weights_r2),
            p(id.bayes_bound),
        )?;
    }
    writeln!(md)?;
    Ok(())
}
