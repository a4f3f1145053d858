//! Reading a runs directory for the report: the JSON files the evaluation commands
//! write (`read`, `read_typed`, `files`, `evals_in`, `training_summary`, `eval_of`), the
//! directory walk (`subdirs`, `mole_sets`, `name_of`), the shared formatting (`pct`,
//! `relative`, the experts-file readers) and what a report wrote (`Written`, `Ordering`).
//! A leaf: every section module ([`super::results`] and the four section files) uses it,
//! it uses none of them.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use serde_json::Value;

/// What `report` wrote.
#[derive(Debug)]
pub struct Written {
    pub markdown: PathBuf,
    pub figures: Vec<PathBuf>,
    /// Inputs looked for and not found.
    pub missing: Vec<String>,
    /// The paper's claimed orderings checked on our numbers.
    pub orderings: Vec<Ordering>,
}

/// One ordering the paper claims, checked on our numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordering {
    pub claim: String,
    pub holds: bool,
    /// The numbers compared.
    pub evidence: String,
}

pub(super) fn read(path: &Path) -> Result<Value> {
    read_typed(path)
}

/// `path` read as the type its writer used.
pub(super) fn read_typed<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON of the expected shape", path.display()))
}

/// `x` as a percentage with two decimals, `–` when absent.
pub(super) fn pct(x: &Value) -> String {
    x.as_f64()
        .map_or_else(|| "–".to_string(), |v| format!("{:.2}", 100.0 * v))
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

/// Every `<variant>.eval.json` in `dir`, read, by variant.
pub(super) fn evals_in(dir: &Path) -> Result<Vec<(String, Value)>> {
    files(dir, ".eval.json")
        .into_iter()
        .map(|(variant, path)| Ok((variant, read(&path)?)))
        .collect()
}

/// `<dir>/<variant>.json`, the training summary `copl-train mole --json` wrote for an
/// evaluated variant, if there.
pub(super) fn training_summary(dir: &Path, variant: &str) -> Result<Option<Value>> {
    let path = dir.join(format!("{variant}.json"));
    if path.exists() {
        read(&path).map(Some)
    } else {
        Ok(None)
    }
}

/// The evaluation of `variant` among `evals`.
pub(super) fn eval_of<'a>(evals: &'a [(String, Value)], variant: &str) -> Option<&'a Value> {
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
pub(super) fn experts_used(e: &Value) -> Option<f64> {
    let used: Vec<f64> = e["experts_used"]
        .as_array()?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    (!used.is_empty()).then(|| used.iter().sum::<f64>() / used.len() as f64)
}

/// Projections (of an `eval-experts` file) in which every group's top expert takes
/// ≥ 90 % of its users and no two groups share it; and the number of projections.
pub(super) fn own_experts(e: &Value) -> (usize, usize) {
    let Some(shares) = e["allocation"]["shares"].as_object() else {
        return (0, 0);
    };
    let total = e["experts_used"].as_array().map_or(0, Vec::len);
    let own = (0..total)
        .filter(|&p| {
            let tops: Vec<Option<usize>> = shares
                .values()
                .map(|table| {
                    let row: Vec<f64> = table[p]
                        .as_array()?
                        .iter()
                        .filter_map(Value::as_f64)
                        .collect();
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
