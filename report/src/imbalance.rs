//! Fig. 4 in kind (CoPL's accuracy per group as group sizes go from 1:9 to 9:1) and the
//! paper's §7 options measured on the same data: loss re-weighting for minority groups
//! and a load-balancing loss for the gates.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use anyhow::Result;

use super::figures::{self, Series};
use super::runs::{
    Ordering, Users, Written, eval_of, evals_in, experts_used, files, group_accuracy, name_of,
    overall, own_experts, pct, read_if_there, read_typed, relative, subdirs,
};
use copl_synth as synth;
use copl_trainer::mole::allocation::CheckpointAllocation;
use copl_trainer::mole::eval::MoleEval;

/// One imbalanced data set: its preset, seen users per group and each variant's
/// evaluation (and expert allocation, where `eval-experts` ran).
struct Skewed {
    name: String,
    preset: String,
    sizes: BTreeMap<String, usize>,
    evals: Vec<(String, MoleEval)>,
    experts: BTreeMap<String, CheckpointAllocation>,
}

impl Skewed {
    fn load(dir: &Path) -> Result<Option<Self>> {
        let Some(synth) = read_if_there::<synth::Summary>(&dir.join("data").join("synth.json"))?
        else {
            return Ok(None);
        };
        let evals = evals_in(dir)?;
        let mut experts = BTreeMap::new();
        for (variant, path) in files(dir, ".experts.json") {
            experts.insert(variant, read_typed(&path)?);
        }
        Ok(Some(Self {
            name: name_of(dir),
            preset: synth.config.preset.name().to_string(),
            sizes: synth.group_sizes,
            evals,
            experts,
        }))
    }

    fn eval(&self, variant: &str) -> Option<&MoleEval> {
        eval_of(&self.evals, variant)
    }

    /// The first group's share of seen users (the x of Fig. 4), in %.
    fn first_share(&self) -> Option<f64> {
        let total: usize = self.sizes.values().sum();
        let first = *self.sizes.values().next()?;
        (total > 0).then(|| 100.0 * first as f64 / total as f64)
    }

    /// The smallest and the largest group, when they differ in size.
    fn minority_majority(&self) -> Option<(&str, &str)> {
        let min = self.sizes.iter().min_by_key(|(_, n)| **n)?;
        let max = self.sizes.iter().max_by_key(|(_, n)| **n)?;
        (min.1 < max.1).then_some((min.0.as_str(), max.0.as_str()))
    }

    fn group_accuracy(&self, variant: &str, group: &str) -> Option<f64> {
        group_accuracy(self.eval(variant)?, group)
    }

    fn ratio(&self) -> String {
        self.sizes
            .iter()
            .map(|(g, n)| format!("{g} {n}"))
            .collect::<Vec<_>>()
            .join(" : ")
    }
}

/// Fig. 4's points, `<preset>-<a>-<b>` as `scripts/report.sh` names them.
const FIG4_POINTS: [&str; 8] = [
    "tldr-1-9", "tldr-3-7", "tldr-5-5", "tldr-9-1", "ufp2-1-9", "ufp2-3-7", "ufp2-5-5", "ufp2-9-1",
];

/// The data sets under `runs/imbalance` with a generator summary.
fn skewed_sets(runs: &Path) -> Result<Vec<Skewed>> {
    let mut sets = Vec::new();
    for dir in subdirs(&runs.join("imbalance")) {
        if let Some(s) = Skewed::load(&dir)? {
            sets.push(s);
        }
    }
    Ok(sets)
}

/// Fig. 4: CoPL's seen accuracy per group against the first group's share, per preset.
pub fn imbalance(
    runs: &Path,
    figures_dir: &Path,
    markdown: &Path,
    md: &mut String,
    written: &mut Written,
) -> Result<()> {
    writeln!(md, "## Group imbalance (Fig. 4)\n")?;
    let sets: Vec<Skewed> = skewed_sets(runs)?
        .into_iter()
        .filter(|s| s.eval("copl").is_some())
        .collect();
    let Some(sets) = written.require(
        sets,
        &runs.join("imbalance"),
        "no imbalanced run (scripts/mole-benchmarks.sh with RATIO=a:b \
         OUT=<runs>/imbalance/<preset>-a-b)",
    ) else {
        return Ok(());
    };
    let points: Vec<String> = sets.iter().map(|s| s.name.clone()).collect();
    written.expect(
        &FIG4_POINTS,
        &points,
        &runs.join("imbalance"),
        "no CoPL run at this group ratio (scripts/report.sh, stage imbalance)",
    );
    writeln!(
        md,
        "CoPL trained on seen users split a:b between the two groups (AVG sampling, as \
         the paper's Fig. 4); seen users' test accuracy (%) per group, each group scored \
         on as many test pairs (`copl-train eval --per-group`) and `all` weighing the \
         groups by their size. The 5:5 point is Table 2's AVG run.\n\n\
         | data set | seen users per group | all | per group |\n|---|---|---|---|"
    )?;
    let mut by_preset: BTreeMap<&str, Vec<&Skewed>> = BTreeMap::new();
    for s in &sets {
        let e = s.eval("copl");
        let groups: Vec<String> = s
            .sizes
            .keys()
            .map(|g| format!("{g} {}", pct(e.and_then(|e| group_accuracy(e, g)))))
            .collect();
        writeln!(
            md,
            "| {} | {} | {} | {} |",
            s.name,
            s.ratio(),
            pct(e.map(|e| e.seen.overall.accuracy)),
            groups.join(", ")
        )?;
        by_preset.entry(&s.preset).or_default().push(s);
    }
    writeln!(md)?;
    for (preset, mut points) in by_preset {
        points.sort_by(|a, b| {
            a.first_share()
                .unwrap_or(0.0)
                .total_cmp(&b.first_share().unwrap_or(0.0))
        });
        let groups: Vec<&String> = points[0].sizes.keys().collect();
        let first = groups.first().map_or("?", |g| g.as_str()).to_string();
        let series: Vec<Series> = groups
            .iter()
            .map(|g| Series {
                name: format!("{g} users"),
                points: points
                    .iter()
                    .filter_map(|s| Some((s.first_share()?, 100.0 * s.group_accuracy("copl", g)?)))
                    .collect(),
            })
            .collect();
        let file = figures_dir.join(format!("fig4-{preset}.png"));
        figures::line_chart(
            &file,
            &format!("{preset}: CoPL's accuracy per group under imbalance"),
            (&format!("{first} share of seen users (%)"), "accuracy (%)"),
            &series,
        )?;
        writeln!(
            md,
            "![Fig. 4 analog, {preset}]({})\n",
            relative(markdown, &file)
        )?;
        written.figures.push(file);
        // The reading: each group's accuracy as a minority against its balanced level.
        let balanced = points.iter().find(|s| s.minority_majority().is_none());
        let mut parts = Vec::new();
        for s in &points {
            let Some((minority, majority)) = s.minority_majority() else {
                continue;
            };
            let (Some(min_acc), Some(maj_acc)) = (
                s.group_accuracy("copl", minority),
                s.group_accuracy("copl", majority),
            ) else {
                continue;
            };
            let against = |group: &str, acc: f64| {
                balanced
                    .and_then(|b| b.group_accuracy("copl", group))
                    .map_or(String::new(), |b| {
                        format!(" ({:+.1} against 5:5)", 100.0 * (acc - b))
                    })
            };
            // Whether the gates still give the minority experts of its own.
            let routing = match s.experts.get("copl").map(own_experts) {
                Some((own, total)) if total > 0 => {
                    format!(" (each group on an expert of its own in {own} of {total} projections)")
                }
                _ => String::new(),
            };
            // The same point trained longer (`longer/<set>`), where it was.
            let longer_path = runs.join("longer").join(&s.name).join("copl.eval.json");
            let longer = if let Some(e) = read_if_there::<MoleEval>(&longer_path)? {
                match (group_accuracy(&e, minority), group_accuracy(&e, majority)) {
                    (Some(min), Some(maj)) => format!(
                        "; trained longer (see below) minority {:.1}, majority {:.1}",
                        100.0 * min,
                        100.0 * maj
                    ),
                    _ => String::new(),
                }
            } else {
                String::new()
            };
            parts.push(format!(
                "at {}: minority {minority} {:.1}{}, majority {majority} {:.1}{}{routing}{longer}",
                s.ratio(),
                100.0 * min_acc,
                against(minority, min_acc),
                100.0 * maj_acc,
                against(majority, maj_acc),
            ));
        }
        if !parts.is_empty() {
            let paper = match preset {
                "tldr" => " The paper (Fig. 4, TL;DR): both groups' accuracy stays stable.",
                "ufp2" => {
                    " The paper (Fig. 4, UF-P-2): majority accuracy rises and minority \
                     accuracy falls as the ratio skews."
                }
                _ => "",
            };
            writeln!(md, "Reading, {preset}: {}.{paper}\n", parts.join("; "))?;
        }
    }
    Ok(())
}

/// Whether `variant` is CoPL with a §7 option (`copl-inv`, `copl-focal`, `copl-lb`).
fn is_option(variant: &str) -> bool {
    variant.starts_with("copl-")
}

/// The §7 options: every imbalanced data set with an option variant.
pub fn options(runs: &Path, md: &mut String, written: &mut Written) -> Result<()> {
    writeln!(
        md,
        "## The paper's §7 options: minority re-weighting and gate load balancing\n"
    )?;
    let sets: Vec<Skewed> = skewed_sets(runs)?
        .into_iter()
        .filter(|s| s.eval("copl").is_some() && s.evals.iter().any(|(v, _)| is_option(v)))
        .collect();
    let Some(sets) = written.require(
        sets,
        &runs.join("imbalance"),
        "no option run (scripts/mole-benchmarks.sh with VARIANTS=\"copl copl-inv copl-focal \
         copl-lb\" on an imbalanced set)",
    ) else {
        return Ok(());
    };
    writeln!(
        md,
        "Same data and settings as CoPL in Fig. 4; `copl-inv`: each group's pairs weigh the \
         same in total (`--reweight inverse-frequency`); `copl-focal`: focal weighting \
         (1 − σ(margin))² (`--reweight focal`); `copl-lb`: the Switch Transformer's \
         load-balancing loss on the gates, coefficient 0.01 (`--load-balance 0.01`). \
         Experts used: mean over MoLE projections of the experts (of 8) that receive any \
         seen user (`copl-train eval-experts`).\n\n\
         | data set | variant | seen all | minority group | majority group | unseen all | \
         experts used |\n|---|---|---|---|---|---|---|"
    )?;
    let mut readings = Vec::new();
    for s in &sets {
        let (minority, majority) = s.minority_majority().unwrap_or(("–", "–"));
        for (variant, e) in s.evals.iter().filter(|(v, _)| v == "copl" || is_option(v)) {
            writeln!(
                md,
                "| {} | {variant} | {} | {minority} {} | {majority} {} | {} | {} |",
                s.name,
                pct(Some(e.seen.overall.accuracy)),
                pct(group_accuracy(e, minority)),
                pct(group_accuracy(e, majority)),
                pct(overall(e, Users::Unseen).map(|s| s.accuracy)),
                s.experts
                    .get(variant)
                    .and_then(experts_used)
                    .map_or("–".into(), |u| format!("{u:.1}")),
            )?;
        }
        let Some(base) = s.group_accuracy("copl", minority) else {
            continue;
        };
        let majority_base = s.group_accuracy("copl", majority);
        let mut reading = Vec::new();
        for (variant, e) in s.evals.iter().filter(|(v, _)| is_option(v)) {
            let (Some(min), Some(maj), Some(maj_base)) = (
                group_accuracy(e, minority),
                group_accuracy(e, majority),
                majority_base,
            ) else {
                continue;
            };
            let experts = match (
                s.experts.get(variant.as_str()).and_then(experts_used),
                s.experts.get("copl").and_then(experts_used),
            ) {
                (Some(with), Some(without)) => {
                    format!(", experts used {without:.1} → {with:.1}")
                }
                _ => String::new(),
            };
            reading.push(format!(
                "{variant} moves the minority {:+.1} and the majority {:+.1} points{experts}",
                100.0 * (min - base),
                100.0 * (maj - maj_base),
            ));
        }
        if !reading.is_empty() {
            readings.push(format!("Reading, {}: {}.", s.name, reading.join("; ")));
        }
        for variant in ["copl-inv", "copl-focal"] {
            if let Some(a) = s.group_accuracy(variant, minority) {
                written.orderings.push(Ordering {
                    claim: format!(
                        "{}: re-weighting ({variant}) lifts the minority group (§7's hope)",
                        s.name
                    ),
                    holds: a > base,
                    evidence: format!(
                        "{minority}: copl {:.2}, {variant} {:.2}",
                        100.0 * base,
                        100.0 * a
                    ),
                });
            }
        }
        if let (Some(with), Some(without)) = (
            s.experts.get("copl-lb").and_then(experts_used),
            s.experts.get("copl").and_then(experts_used),
        ) {
            written.orderings.push(Ordering {
                claim: format!(
                    "{}: the load-balancing loss spreads users over more experts (§7)",
                    s.name
                ),
                holds: with > without,
                evidence: format!("experts used: copl {without:.1}, copl-lb {with:.1}"),
            });
        }
    }
    writeln!(md)?;
    for r in &readings {
        writeln!(md, "{r}\n")?;
    }
    Ok(())
}
