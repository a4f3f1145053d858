//! Tables 2 and 3 in kind: every reward-model variant of every data set under `mole/`,
//! seen and unseen users, with the data's bounds and the paper's numbers beside ours.

use std::{fmt::Write as _, path::Path};

use anyhow::Result;

use super::paper::{paper, paper_table3};
use super::runs::{
    Ordering, Users, Written, eval_of, evals_in, mole_sets, name_of, overall, pct, population,
    read_if_there, training_summary,
};
use copl_synth::Summary as SynthSummary;
use copl_trainer::{gcf::GcfSummary, mole::eval::MoleEval, mole::run::MoleSummary};

mod reading;
use reading::reading;

/// Variants in the order of the paper's rows (CoPL last among ours is the paper's
/// order; here CoPL first so the table reads against it), with their display names.
const VARIANTS: [(&str, &str); 5] = [
    ("copl", "CoPL"),
    ("user-token", "w/o MoLE (user token)"),
    ("copl-mf", "w/o GNN (MF embeddings)"),
    ("uniform", "Uniform"),
    ("g-oracle", "G-Oracle (a Uniform model per group)"),
];

/// Table 2's columns, `<preset>-<sampling>`: every data set, ALL and AVG.
const TABLE2_COLUMNS: [&str; 8] = [
    "tldr-all",
    "tldr-avg",
    "ufp2-all",
    "ufp2-avg",
    "ufp4-all",
    "ufp4-avg",
    "personal-all",
    "personal-avg",
];

/// The paper's Table 4 ablations, their labels, and the Table 2 columns scripts/report.sh's
/// mole stage makes them on (the paper's Table 4 is on UF-P ALL).
const ABLATIONS: [(&str, &str, &[&str]); 2] = [
    ("user-token", "w/o MoLE", &["ufp2-all"]),
    ("copl-mf", "w/o GNN", &["ufp2-all", "ufp4-all"]),
];

/// One data set's runs: its generator summary, each variant's evaluation and training
/// summary.
struct SetRuns {
    name: String,
    /// `<preset>-<sampling>`, the paper's column, from `data/synth.json`.
    column: Option<String>,
    /// `data/synth.json`, if there.
    synth: Option<SynthSummary>,
    /// `copl-train gcf --json` of the set's user embeddings (`gcf.json`), if there.
    gcf: Option<GcfSummary>,
    evals: Vec<(String, MoleEval)>,
    training: Vec<(String, MoleSummary)>,
}

impl SetRuns {
    fn load(dir: &Path) -> Result<Self> {
        let synth: Option<SynthSummary> = read_if_there(&dir.join("data").join("synth.json"))?;
        let column = synth
            .as_ref()
            .map(|s| format!("{}-{}", s.config.preset.name(), s.config.sampling.name()));
        let evals = evals_in(dir)?;
        let gcf = read_if_there(&dir.join("gcf.json"))?;
        let mut training = Vec::new();
        for (variant, _) in &evals {
            if let Some(t) = training_summary(dir, variant)? {
                training.push((variant.clone(), t));
            }
        }
        Ok(Self {
            name: name_of(dir),
            column,
            synth,
            gcf,
            evals,
            training,
        })
    }

    fn eval(&self, variant: &str) -> Option<&MoleEval> {
        eval_of(&self.evals, variant)
    }

    fn accuracy(&self, variant: &str, users: Users) -> Option<f64> {
        overall(self.eval(variant)?, users).map(|s| s.accuracy)
    }

    /// CoPL's training summary (else the first variant's).
    fn training(&self) -> Option<&MoleSummary> {
        self.training
            .iter()
            .find(|(v, _)| v == "copl")
            .or(self.training.first())
            .map(|(_, t)| t)
    }

    /// Seen users and training steps.
    fn users_steps(&self) -> (Option<usize>, Option<usize>) {
        (
            self.synth.as_ref().map(|s| s.config.users),
            self.training().map(|t| t.hyper_parameters.steps),
        )
    }

    /// The scale it was trained at, from the generator and CoPL's training summary.
    fn scale(&self) -> String {
        let known = |n: Option<usize>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
        let training = self.training();
        let data = self.synth.as_ref().map_or_else(
            || "? seen users".to_string(),
            |s| {
                format!(
                    "{} seen users ({} sampling, {:.0} % of catalogue pairs common to all \
                     groups)",
                    s.config.users,
                    s.config.sampling.name(),
                    100.0 * s.config.common_share
                )
            },
        );
        let budget = training.map_or_else(
            || "? steps".to_string(),
            |t| {
                format!(
                    "{} steps × {} pairs, lr {}",
                    t.hyper_parameters.steps, t.hyper_parameters.batch_pairs, t.hyper_parameters.lr
                )
            },
        );
        format!(
            "{}: {data}, {} training pairs, {budget}, {} seen test pairs scored",
            self.name,
            known(training.map(|t| t.train_pairs)),
            known(self.eval("copl").map(|e| e.seen.overall.pairs)),
        )
    }
}

/// `ours (paper)` for one cell.
fn cell(ours: Option<f64>, paper: Option<f64>) -> String {
    let ours = ours.map_or_else(|| "–".to_string(), |v| format!("{:.2}", 100.0 * v));
    match paper {
        Some(p) => format!("{ours} ({p:.2})"),
        None => ours,
    }
}

/// Tables 2 and 3: seen/unseen accuracy of every variant on every data set, with the
/// bounds; then the controversial/common split; the orderings; a reading.
pub fn reward_models(runs: &Path, md: &mut String, written: &mut Written) -> Result<()> {
    writeln!(
        md,
        "## Reward models: seen and unseen users (Table 2), controversial and common \
         pairs (Table 3)\n"
    )?;
    let Some(dirs) = written.require(
        mole_sets(runs),
        &runs.join("mole"),
        "no data set (scripts/mole-benchmarks.sh with OUT=<runs>/mole/<set>)",
    ) else {
        return Ok(());
    };
    let sets = dirs
        .iter()
        .map(|d| SetRuns::load(d))
        .collect::<Result<Vec<_>>>()?;
    let columns: Vec<String> = sets
        .iter()
        .filter(|s| s.eval("copl").is_some())
        .filter_map(|s| s.column.clone())
        .collect();
    written.expect(
        &TABLE2_COLUMNS,
        &columns,
        &runs.join("mole"),
        "no CoPL run for this Table 2 column (scripts/report.sh, stage mole)",
    );
    for (variant, label, expected) in ABLATIONS {
        let present: Vec<String> = sets
            .iter()
            .filter(|s| s.eval(variant).is_some())
            .filter_map(|s| s.column.clone())
            .collect();
        written.expect(
            expected,
            &present,
            &runs.join("mole"),
            &format!(
                "no {label} run ({variant}) for this Table 4 cell (scripts/report.sh, stage mole)"
            ),
        );
    }
    writeln!(
        md,
        "Accuracy (%) on held-out test pairs; in brackets the paper's Table 2 (and Table 4 \
         for the ablations; gemma-2b-it, three seeds) where the setting matches. Seen users are scored on their own test \
         pairs; unseen users after onboarding from their survey answers (eq. 11, 2-hop). \
         The ground-truth bound is the generator's own rule on the same test pairs (the \
         labels carry no noise, so it is the ceiling); the best single reward is the one \
         preference every user could share, the ceiling of a non-personalised model.\n"
    )?;
    let header: Vec<String> = sets.iter().map(|s| s.name.clone()).collect();
    writeln!(
        md,
        "| users | model | {} |\n|---|---|{}",
        header.join(" | "),
        "---|".repeat(sets.len())
    )?;
    for users in Users::BOTH {
        let unseen = users == Users::Unseen;
        for (variant, label) in VARIANTS {
            // G-Oracle's row stands for the paper's numbers even where we made none.
            if variant != "g-oracle" && sets.iter().all(|s| s.eval(variant).is_none()) {
                continue;
            }
            let cells: Vec<String> = sets
                .iter()
                .map(|s| {
                    let paper = paper(s.column.as_deref(), variant, unseen);
                    cell(s.accuracy(variant, users), paper)
                })
                .collect();
            writeln!(md, "| {} | {label} | {} |", users.name(), cells.join(" | "))?;
        }
    }
    type Bound = fn(&SynthSummary) -> f64;
    let bounds: [(Bound, &str); 2] = [
        (|s| s.ground_truth_test_accuracy, "ground-truth bound"),
        (|s| s.population_test_accuracy, "best single reward"),
    ];
    for (bound, label) in bounds {
        let cells: Vec<String> = sets
            .iter()
            .map(|s| pct(s.synth.as_ref().map(bound)))
            .collect();
        writeln!(md, "| all | {label} | {} |", cells.join(" | "))?;
    }
    writeln!(
        md,
        "\nA `–` is a run not made: the ablations run where the paper's Table 4 has them \
         (UF-P ALL), and Uniform is not rerun on AVG sets (it ignores who answered, so AVG \
         sampling, the same pairs spread unevenly over users, changes nothing for it; the \
         paper's Uniform rows are equal for ALL and AVG). G-Oracle, as the paper's: one \
         Uniform model per ground-truth group trained on that group's users only (`mole \
         --variant uniform --group`, as many steps as the set's other models), every user \
         scored by their group's (`copl-train eval-oracle`); made where groups exist.\n\n\
         Scales (this machine, MiniLM, \
         MoLE in the top 2 layers):\n"
    )?;
    for s in &sets {
        writeln!(md, "- {}", s.scale())?;
    }
    writeln!(md)?;

    writeln!(
        md,
        "Table 3 in kind, seen users' cells with the paper's Table 3 in brackets (UF-P-2 \
         ALL); tldr has no common pairs (its groups disagree on every pair):\n\n\
         | data set | variant | seen controversial | seen common | unseen controversial | \
         unseen common |\n|---|---|---|---|---|---|"
    )?;
    let mut split_reading = Vec::new();
    for s in &sets {
        for (variant, e) in &s.evals {
            let paper = paper_table3(s.column.as_deref(), variant);
            let accuracy = |slice: &Option<copl_trainer::mole::eval::Slice>| {
                slice.as_ref().map(|s| s.accuracy)
            };
            let unseen = e.unseen.as_ref();
            writeln!(
                md,
                "| {} | {variant} | {} | {} | {} | {} |",
                s.name,
                cell(accuracy(&e.seen.controversial), paper.map(|p| p.0)),
                cell(accuracy(&e.seen.common), paper.map(|p| p.1)),
                pct(unseen.and_then(|u| accuracy(&u.controversial))),
                pct(unseen.and_then(|u| accuracy(&u.common))),
            )?;
        }
        let split = |variant: &str| {
            let e = s.eval(variant)?;
            Some((
                e.seen.controversial.as_ref()?.accuracy,
                e.seen.common.as_ref()?.accuracy,
            ))
        };
        if let (Some(copl), Some(uniform)) = (split("copl"), split("uniform")) {
            split_reading.push(format!(
                "{}: Uniform {:.1} on controversial and {:.1} on common pairs, CoPL {:.1} and \
                 {:.1}",
                s.name,
                100.0 * uniform.0,
                100.0 * uniform.1,
                100.0 * copl.0,
                100.0 * copl.1
            ));
        }
    }
    writeln!(md)?;
    if !split_reading.is_empty() {
        writeln!(
            md,
            "Reading: {}. A shared reward can only follow what the groups agree on (the \
             paper: Uniform 49.9 controversial, 74.5 common); CoPL's gain is on the pairs \
             where they disagree (the paper: 56.9 controversial), at some cost on common \
             pairs where the paper sees one too (71.2 against 74.5).\n",
            split_reading.join("; ")
        )?;
    }
    for s in &sets {
        orderings(s, written);
    }
    reading(&sets, md)?;
    Ok(())
}

/// The paper's orderings on one data set: CoPL over every baseline on controversial
/// pairs (Table 3) and overall, seen and unseen (Table 2).
fn orderings(s: &SetRuns, written: &mut Written) {
    type Part =
        fn(&copl_trainer::mole::eval::Population) -> Option<&copl_trainer::mole::eval::Slice>;
    let checks: [(Users, Part, &str); 3] = [
        (
            Users::Seen,
            |p| p.controversial.as_ref(),
            "on controversial pairs (seen)",
        ),
        (Users::Seen, |p| Some(&p.overall), "on all pairs (seen)"),
        (
            Users::Unseen,
            |p| Some(&p.overall),
            "on all pairs (unseen, onboarded)",
        ),
    ];
    for (users, part, what) in checks {
        let found: Vec<(&str, f64, usize)> = s
            .evals
            .iter()
            .filter_map(|(v, e)| {
                let slice = part(population(e, users)?)?;
                Some((v.as_str(), slice.accuracy, slice.pairs))
            })
            .collect();
        let Some(&(_, copl, copl_pairs)) = found.iter().find(|(v, _, _)| *v == "copl") else {
            continue;
        };
        // The baselines: not the G-Oracle, which knows every user's group.
        let others: Vec<&(&str, f64, usize)> = found
            .iter()
            .filter(|(v, _, _)| *v != "copl" && *v != "g-oracle")
            .collect();
        if others.is_empty() {
            continue;
        }
        let holds = others.iter().all(|(_, a, _)| copl > *a);
        let mut evidence: String = std::iter::once(format!("copl {:.2}", 100.0 * copl))
            .chain(
                others
                    .iter()
                    .map(|(v, a, _)| format!("{v} {:.2}", 100.0 * a)),
            )
            .collect::<Vec<_>>()
            .join(", ");
        if !holds {
            // Is the largest shortfall within two standard errors of a difference?
            let (shortfall, pairs) = others.iter().fold((0f64, copl_pairs), |(d, n), (_, a, p)| {
                (d.max(a - copl), n.min(*p))
            });
            let noise = 2.0 * (2.0 * 0.25 / pairs.max(1) as f64).sqrt();
            evidence.push_str(&if shortfall < noise {
                format!(
                    "; the shortfall ({:.1} points) is within sampling noise at {pairs} pairs \
                     ({:.1})",
                    100.0 * shortfall,
                    100.0 * noise
                )
            } else {
                format!(
                    "; the shortfall ({:.1} points) is beyond sampling noise at {pairs} pairs \
                     ({:.1}): see the reading",
                    100.0 * shortfall,
                    100.0 * noise
                )
            });
        }
        written.orderings.push(Ordering {
            claim: format!("{}: CoPL over every baseline {what}", s.name),
            holds,
            evidence,
        });
    }
}
