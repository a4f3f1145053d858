//! Issue #13 items 1 and 2: how the gates route (eq. 8–9), read from the training
//! summaries of Table 2's CoPL runs (`mole/<set>/copl.json`, whose validation steps record
//! [`RoutingMeasure`]s), and CoPL against oracle routing (`copl-oracle.json`, `copl-train
//! mole --routing oracle`: every seen user sent to their ground-truth group's expert; and
//! `copl-oracle-soft.json`, a mixture user on every component's expert at their weight),
//! on the same test pairs. Oracle routing splits CoPL's distance from a per-group oracle in
//! two: below oracle routing the gates miss; oracle routing below the G-Oracle is what the
//! experts cannot learn at this budget.

use std::{fmt::Write as _, path::Path};

use anyhow::Result;
use copl_synth::Summary as SynthSummary;
use copl_trainer::mole::{
    eval::MoleEval, routing::RoutingMeasure, run::MoleSummary, train::StepRecord,
};

use super::figures::{self, Series};
use super::runs::{
    Users, Written, mole_sets, name_of, overall, pct, read_if_there, relative, training_summary,
    two_se,
};

/// One step's routing, summed up over projections.
struct StepRouting {
    /// Mean over projections of the groups' majority share, and its smallest.
    share: (f64, f64),
    /// Fewest and most distinct majority experts over projections.
    distinct: (usize, usize),
    /// Mean number of experts that receive anyone.
    used: f64,
}

impl StepRouting {
    fn of(m: &RoutingMeasure) -> Option<Self> {
        let n = m.purity.len();
        if n == 0 {
            return None;
        }
        let shares = m.purity.iter().map(|p| p.majority_share);
        let distinct = m.purity.iter().map(|p| p.distinct_majorities);
        Some(Self {
            share: (
                shares.clone().sum::<f64>() / n as f64,
                shares.fold(f64::INFINITY, f64::min),
            ),
            distinct: (
                distinct.clone().min().unwrap_or(0),
                distinct.max().unwrap_or(0),
            ),
            used: m.experts_used.iter().sum::<usize>() as f64 / m.experts_used.len().max(1) as f64,
        })
    }
}

/// The steps a set's table shows: the first validation step, the step kept (best
/// validation) and the last, each once.
fn shown_steps(summary: &MoleSummary) -> Vec<(&StepRecord, StepRouting)> {
    let history = &summary.training.history;
    let kept = history
        .iter()
        .find(|r| r.step == summary.training.best_step);
    let mut steps: Vec<&StepRecord> = [history.first(), kept, history.last()]
        .into_iter()
        .flatten()
        .collect();
    steps.dedup_by_key(|r| r.step);
    steps
        .into_iter()
        .filter_map(|r| Some((r, StepRouting::of(r.routing.as_ref()?)?)))
        .collect()
}

/// Who a set's seen users are, from the generator's summary.
#[derive(Clone, Copy)]
enum Groups {
    /// This many ground-truth groups.
    Known(usize),
    /// Mixtures of preferences (personal): the routing counts them by the argmax weight.
    Mixtures,
    /// No generator summary beside the run.
    Unknown,
}

impl Groups {
    fn of(set: &Path) -> Result<Self> {
        let synth: Option<SynthSummary> = read_if_there(&set.join("data").join("synth.json"))?;
        Ok(match synth.map(|s| s.config.preset.groups().len()) {
            None => Self::Unknown,
            Some(0) => Self::Mixtures,
            Some(n) => Self::Known(n),
        })
    }

    fn cell(self) -> String {
        match self {
            Self::Known(n) => n.to_string(),
            Self::Mixtures => "mixtures".into(),
            Self::Unknown => "?".into(),
        }
    }
}

/// The section.
pub fn routing(
    runs: &Path,
    figures_dir: &Path,
    markdown: &Path,
    md: &mut String,
    written: &mut Written,
) -> Result<()> {
    writeln!(
        md,
        "## Routing: the gates over training, and against oracle routing\n"
    )?;
    let mut curves = Vec::new();
    let mut oracle = Vec::new();
    for set in mole_sets(runs) {
        if let Some(copl) = training_summary(&set, "copl")? {
            let groups = Groups::of(&set)?;
            if let Some(o) = OracleSet::load(&set, &copl)? {
                oracle.push(o);
            }
            curves.push((name_of(&set), groups, copl));
        }
    }
    curves.retain(|(_, _, s)| !shown_steps(s).is_empty());
    if let Some(curves) = written.require(
        curves,
        &runs.join("mole"),
        "no CoPL training summary with routing (copl-train mole --json over users with \
         groups or weights)",
    ) {
        routing_table(&curves, md)?;
        let file = figures_dir.join("routing-majority-share.png");
        routing_curve(&curves, &file)?;
        writeln!(
            md,
            "![The gates' majority share over training]({})\n",
            relative(markdown, &file)
        )?;
        written.figures.push(file);
    }
    if let Some(oracle) = written.require(
        oracle,
        &runs.join("mole"),
        "no oracle-routing run (scripts/report.sh, stage oracle: variants copl-oracle, \
         copl-oracle-soft)",
    ) {
        oracle_table(&oracle, md)?;
    }
    Ok(())
}

/// The curve issue #13 item 2 asks for: per set, the groups' majority share (mean over
/// projections) at every validation step.
fn routing_curve(curves: &[(String, Groups, MoleSummary)], file: &Path) -> Result<()> {
    let series: Vec<Series> = curves
        .iter()
        .map(|(name, _, summary)| Series {
            name: name.clone(),
            points: summary
                .training
                .history
                .iter()
                .filter_map(|r| {
                    let routing = StepRouting::of(r.routing.as_ref()?)?;
                    Some((r.step as f64, routing.share.0))
                })
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    figures::line_chart(
        file,
        "The gates' routing over training",
        (
            "training step",
            "groups' majority share (mean over projections)",
        ),
        &series,
    )
}

/// The routing at the first, kept and last validation steps of every set, and a reading.
fn routing_table(curves: &[(String, Groups, MoleSummary)], md: &mut String) -> Result<()> {
    writeln!(
        md,
        "How the gates route the seen users (top-1, eq. 9) at CoPL's first validation step, \
         the step kept (best validation) and the last, per LoRA projection: the groups' \
         majority share (the share of a group's users on its most chosen expert, mean over \
         groups; mean and smallest over projections), how many distinct experts the groups' \
         majorities are (fewest–most over projections; as many as groups: the groups apart \
         in that projection), and the experts that receive anyone. Mixture users \
         (personal) count by the argmax of their weights.\n\n\
         | data set | groups | step | validation | majority share (mean, min) | distinct \
         majority experts | experts used |\n|---|---|---|---|---|---|---|"
    )?;
    let mut readings = Vec::new();
    for (name, groups, summary) in curves {
        let shown = shown_steps(summary);
        let groups_cell = groups.cell();
        for (record, r) in &shown {
            let kept = if record.step == summary.training.best_step {
                " (kept)"
            } else {
                ""
            };
            writeln!(
                md,
                "| {name} | {groups_cell} | {}{kept} | {} | {:.3}, {:.3} | {}–{} | {:.1} |",
                record.step,
                pct(Some(record.val_accuracy)),
                r.share.0,
                r.share.1,
                r.distinct.0,
                r.distinct.1,
                r.used
            )?;
        }
        if let (Some((first, r0)), Some((last, r1))) = (shown.first(), shown.last()) {
            let apart = |r: &StepRouting| match *groups {
                Groups::Known(g) if r.distinct.0 >= g => {
                    "every projection routes the groups apart".into()
                }
                Groups::Known(g) if r.distinct.1 >= g => {
                    "some projections route the groups apart".into()
                }
                Groups::Known(g) => format!("no projection routes all {g} groups apart"),
                Groups::Mixtures | Groups::Unknown => format!(
                    "{}–{} distinct majority experts",
                    r.distinct.0, r.distinct.1
                ),
            };
            readings.push(format!(
                "{name}: at step {} majority share {:.2} ({}), at step {} {:.2} ({})",
                first.step,
                r0.share.0,
                apart(r0),
                last.step,
                r1.share.0,
                apart(r1)
            ));
        }
    }
    writeln!(md)?;
    if !readings.is_empty() {
        writeln!(
            md,
            "Reading: {}. The gates start on k-means clusters of the seen users' GCF \
             embeddings (`--gate-init auto`, trainer/src/mole/gate_init.rs), so the first \
             step already shows the groups the embeddings tell apart.\n",
            readings.join("; ")
        )?;
    }
    Ok(())
}

/// One set's runs against oracle routing: CoPL's summary, the top-1 and soft oracles'
/// where run, and the G-Oracle's evaluation where made.
struct OracleSet {
    name: String,
    copl: MoleSummary,
    top1: Option<MoleSummary>,
    soft: Option<MoleSummary>,
    g_oracle: Option<MoleEval>,
}

impl OracleSet {
    /// The set's oracle runs, if it has any.
    fn load(set: &Path, copl: &MoleSummary) -> Result<Option<Self>> {
        let top1 = training_summary(set, "copl-oracle")?;
        let soft = training_summary(set, "copl-oracle-soft")?;
        if top1.is_none() && soft.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            name: name_of(set),
            copl: copl.clone(),
            top1,
            soft,
            g_oracle: read_if_there(&set.join("g-oracle.eval.json"))?,
        }))
    }
}

/// `b − a` in points on the same test pairs, read against 2 SE.
fn gain(a: &MoleSummary, b: &MoleSummary) -> String {
    let d = b.test_accuracy - a.test_accuracy;
    let noise = two_se(
        (a.test_accuracy, a.test_pairs),
        (b.test_accuracy, b.test_pairs),
    );
    let verdict = if d.abs() > noise { "beyond" } else { "within" };
    format!(
        "{:+.1} points ({verdict} 2 SE = {:.1})",
        100.0 * d,
        100.0 * noise
    )
}

/// CoPL against oracle routing on the same test pairs (each run's own summary), with the
/// G-Oracle's evaluation where the set has one, and a reading.
fn oracle_table(sets: &[OracleSet], md: &mut String) -> Result<()> {
    writeln!(
        md,
        "CoPL (the gates) against oracle routing, each scored by its own training run on the \
         same seen users' test pairs (the same data, embeddings and recipe): top-1 (`mole \
         --routing oracle`: every seen user on their ground-truth group's expert, a mixture \
         user on the largest of their weights) and soft (`--routing oracle-soft`: a mixture \
         user on every component's expert at once, each at the user's weight); the G-Oracle \
         (a Uniform model per group) from its evaluation beside them.\n\n\
         | data set | test pairs | CoPL (gates) | oracle routing, top-1 | oracle routing, soft \
         | G-Oracle |\n|---|---|---|---|---|---|"
    )?;
    let mut readings = Vec::new();
    for set in sets {
        let g = set
            .g_oracle
            .as_ref()
            .and_then(|e| overall(e, Users::Seen))
            .map(|s| s.accuracy);
        let acc = |s: &Option<MoleSummary>| pct(s.as_ref().map(|s| s.test_accuracy));
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            set.name,
            set.copl.test_pairs,
            pct(Some(set.copl.test_accuracy)),
            acc(&set.top1),
            acc(&set.soft),
            pct(g)
        )?;
        let mut parts = Vec::new();
        if let Some(top1) = &set.top1 {
            parts.push(format!(
                "top-1 oracle routing {} over the gates",
                gain(&set.copl, top1)
            ));
        }
        if let Some(soft) = &set.soft {
            parts.push(format!("soft {} over the gates", gain(&set.copl, soft)));
            if let Some(top1) = &set.top1 {
                parts.push(format!("soft {} over top-1", gain(top1, soft)));
            }
        }
        readings.push(format!("{}: {}", set.name, parts.join(", ")));
    }
    writeln!(
        md,
        "\nReading (one seed): {}. Where oracle routing stands above the gates beyond \
         noise, the gates are the gap; where it stands level, the gates are at their \
         ceiling and what is left to a G-Oracle is the experts' capacity at this budget. \
         Soft over top-1 beyond noise on mixtures would make soft (top-k) routing worth \
         serving.\n",
        readings.join("; ")
    )?;
    Ok(())
}
