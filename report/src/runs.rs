//! Reading a runs directory for the report: the JSON files the evaluation commands
//! write, each read as the type its writer serialised (`read_typed`, `files`,
//! `evals_in`, `training_summary`, `eval_of`, `population`), the directory walk
//! (`subdirs`, `mole_sets`, `name_of`), the shared formatting (`pct`, `relative`, the
//! experts-file readers) and what a report wrote (`Written`, `Ordering`). A file whose
//! shape is not its writer's is an error naming the file, never a silent `–`. A leaf:
//! every section module ([`super::results`] and the four section files) uses it, it uses
//! none of them.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use copl_trainer::mole::allocation::CheckpointAllocation;
use copl_trainer::mole::{
    eval::{MoleEval, Population, Slice},
    run::MoleSummary,
};

/// What `report` wrote (`copl-report` prints it; `Serialize` for callers that keep it).
#[derive(Debug, serde::Serialize)]
pub struct Written {
    pub markdown: PathBuf,
    pub figures: Vec<PathBuf>,
    /// Inputs looked for and not found.
    pub missing: Vec<String>,
    /// The paper's claimed orderings checked on our numbers.
    pub orderings: Vec<Ordering>,
}

/// One ordering the paper claims, checked on our numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Ordering {
    pub claim: String,
    pub holds: bool,
    /// The numbers compared.
    pub evidence: String,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let holding = self.orderings.iter().filter(|o| o.holds).count();
        write!(
            f,
            "{}: written ({} figures; {holding} of the paper's {} orderings hold); not run yet: ",
            self.markdown.display(),
            self.figures.len(),
            self.orderings.len(),
        )?;
        if self.missing.is_empty() {
            write!(f, "nothing")
        } else {
            write!(f, "{}", self.missing.join("; "))
        }
    }
}

/// `path` read as the type its writer used.
pub(super) fn read_typed<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // A newer writer's file is refused, not misread (copl_core::file_version).
    if let Ok(v) = serde_json::from_str::<copl_core::file_version::VersionOnly>(&text) {
        v.format_version
            .readable()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON of the expected shape", path.display()))
}

/// `x` as a percentage with two decimals, `–` when absent.
pub(super) fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |v| format!("{:.2}", 100.0 * v))
}

/// Which users an evaluation's figures are of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Users {
    Seen,
    /// Onboarded from their answers (eq. 11).
    Unseen,
}

impl Users {
    pub(super) const BOTH: [Users; 2] = [Users::Seen, Users::Unseen];

    pub(super) fn name(self) -> &'static str {
        match self {
            Users::Seen => "seen",
            Users::Unseen => "unseen",
        }
    }
}

/// `e`'s figures for `users` (none for unseen users where none were onboarded).
pub(super) fn population(e: &MoleEval, users: Users) -> Option<&Population> {
    match users {
        Users::Seen => Some(&e.seen),
        Users::Unseen => e.unseen.as_ref(),
    }
}

/// Overall accuracy of `users` in `e`.
pub(super) fn overall(e: &MoleEval, users: Users) -> Option<&Slice> {
    population(e, users).map(|p| &p.overall)
}

/// Accuracy of `group` among `e`'s seen users.
pub(super) fn group_accuracy(e: &MoleEval, group: &str) -> Option<f64> {
    e.seen.by_group.get(group).map(|s| s.accuracy)
}

/// Files of `dir` ending in `suffix`, sorted, with the name before the suffix.
pub(super) fn files(dir: &Path, suffix: &str) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(suffix)
                .map(|stem| (stem.to_string(), e.path()))
        })
        .collect();
    found.sort();
    found
}

impl Written {
    /// `found` unless it is empty; then `dir` is listed as missing, with `makes` (the
    /// command that writes it), and the caller's section ends.
    pub(crate) fn require<T>(&mut self, found: Vec<T>, dir: &Path, makes: &str) -> Option<Vec<T>> {
        if found.is_empty() {
            self.missing.push(format!("{}: {makes}", dir.display()));
            return None;
        }
        Some(found)
    }

    /// Lists each of `expected` that is not among `present` as missing from `dir`, with
    /// `makes`: a section that has some of its runs says which of the rest it lacks.
    pub(crate) fn expect(
        &mut self,
        expected: &[&str],
        present: &[String],
        dir: &Path,
        makes: &str,
    ) {
        for name in expected {
            if !present.iter().any(|p| p == name) {
                self.missing
                    .push(format!("{}: {makes}", dir.join(name).display()));
            }
        }
    }
}

/// The directories in `dir` (through links), sorted; none when it does not exist.
pub(super) fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found
}

/// The data-set directories under `runs/mole`, sorted.
pub(super) fn mole_sets(runs: &Path) -> Vec<PathBuf> {
    subdirs(&runs.join("mole"))
}

/// Every `<variant>.eval.json` in `dir` (`copl-train eval` / `eval-oracle`), read, by
/// variant.
pub(super) fn evals_in(dir: &Path) -> Result<Vec<(String, MoleEval)>> {
    files(dir, ".eval.json")
        .into_iter()
        .map(|(variant, path)| Ok((variant, read_typed(&path)?)))
        .collect()
}

/// `<dir>/<variant>.json`, the training summary `copl-train mole --json` wrote for an
/// evaluated variant, if there.
pub(super) fn training_summary(dir: &Path, variant: &str) -> Result<Option<MoleSummary>> {
    read_if_there(&dir.join(format!("{variant}.json")))
}

/// `path` read as `T` if the file exists.
pub(super) fn read_if_there<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if path.exists() {
        read_typed(path).map(Some)
    } else {
        Ok(None)
    }
}

/// The evaluation of `variant` among `evals`.
pub(super) fn eval_of<'a>(evals: &'a [(String, MoleEval)], variant: &str) -> Option<&'a MoleEval> {
    evals.iter().find(|(v, _)| v == variant).map(|(_, e)| e)
}

/// A directory's last component, as text.
pub(super) fn name_of(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Mean number of experts that receive any seen user, over projections (of an
/// `eval-experts` file); `None` without projections.
pub(super) fn experts_used(e: &CheckpointAllocation) -> Option<f64> {
    let used = &e.experts_used;
    (!used.is_empty()).then(|| used.iter().sum::<usize>() as f64 / used.len() as f64)
}

/// Projections (of an `eval-experts` file) in which every group's top expert takes
/// ≥ 90 % of its users and no two groups share it; and the number of projections.
pub(super) fn own_experts(e: &CheckpointAllocation) -> (usize, usize) {
    let shares = &e.allocation.shares;
    let total = e.experts_used.len();
    let own = (0..total)
        .filter(|&p| {
            let tops: Vec<Option<usize>> = shares
                .values()
                .map(|table| {
                    let row = table.get(p)?;
                    let (top, share) = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
                    (*share >= 0.9).then_some(top)
                })
                .collect();
            let mut distinct: Vec<usize> = tops.iter().flatten().copied().collect();
            distinct.sort_unstable();
            distinct.dedup();
            tops.iter().all(Option::is_some) && distinct.len() == tops.len()
        })
        .count();
    (own, total)
}

/// `file` relative to the directory of `markdown` (for links), or as given.
pub(super) fn relative(markdown: &Path, file: &Path) -> String {
    let base = markdown.parent().unwrap_or(Path::new(""));
    file.strip_prefix(base)
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned()
}

/// Two standard errors of the difference of two independent accuracies, each given as
/// (accuracy, pairs scored), in [0, 1].
pub(super) fn two_se(a: (f64, usize), b: (f64, usize)) -> f64 {
    let var = |(p, n): (f64, usize)| p * (1.0 - p) / n.max(1) as f64;
    2.0 * (var(a) + var(b)).sqrt()
}

/// Mean and sample standard deviation (0 for one value; NaN for none).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}
