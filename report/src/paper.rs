//! The paper's published numbers (gemma-2b-it, mean of three seeds) that our report sets
//! beside its own: Table 2 (seen / unseen by data set and variant) with Table 4's
//! ablations, Table 3 (controversial / common), Table 5 (adaptation methods) and Tables
//! 6 / A4 (GCF held-out accuracy). One place for them; the sections only look them up.

/// The paper's Table 2 (gemma-2b-it, mean of three seeds): (seen, unseen) accuracy of
/// `model` on `column` (`<preset>-<sampling>`); its Table 4 ablations (seen users, UF-P
/// ALL) for `user-token` (w/o MoLE, n = 64) and `copl-mf` (w/o GNN).
fn paper_table2(column: &str, model: &str) -> Option<(f64, Option<f64>)> {
    let (seen, unseen) = match (column, model) {
        ("ufp2-all", "user-token") => return Some((62.69, None)),
        ("ufp4-all", "user-token") => return Some((62.28, None)),
        ("ufp2-all", "copl-mf") => return Some((62.09, None)),
        ("ufp4-all", "copl-mf") => return Some((56.75, None)),
        ("tldr-all", "copl") => (96.58, 96.71),
        ("tldr-avg", "copl") => (96.19, 96.21),
        ("ufp2-all", "copl") => (63.81, 63.92),
        ("ufp2-avg", "copl") => (63.45, 63.26),
        ("ufp4-all", "copl") => (62.57, 61.62),
        ("ufp4-avg", "copl") => (62.08, 61.97),
        ("personal-all", "copl") => (74.85, 75.69),
        ("personal-avg", "copl") => (74.37, 75.49),
        ("tldr-all" | "tldr-avg", "uniform") => (49.62, 50.11),
        ("ufp2-all" | "ufp2-avg", "uniform") => (61.82, 62.82),
        ("ufp4-all" | "ufp4-avg", "uniform") => (56.15, 55.65),
        ("personal-all" | "personal-avg", "uniform") => (62.91, 62.97),
        ("tldr-all" | "tldr-avg", "g-oracle") => (73.06, 72.55),
        ("ufp2-all" | "ufp2-avg", "g-oracle") => (64.53, 64.66),
        ("ufp4-all" | "ufp4-avg", "g-oracle") => (61.52, 61.33),
        _ => return None,
    };
    Some((seen, Some(unseen)))
}

/// The paper's number for `model` on `column`, seen (`unseen` false) or unseen users.
pub(super) fn paper(column: Option<&str>, model: &str, unseen: bool) -> Option<f64> {
    let (seen, unseen_value) = paper_table2(column?, model)?;
    if unseen { unseen_value } else { Some(seen) }
}

/// The paper's Table 3 (UF-P-2 ALL, seen users, gemma-2b-it): (controversial, common).
pub(super) fn paper_table3(column: Option<&str>, model: &str) -> Option<(f64, f64)> {
    match (column?, model) {
        ("ufp2-all", "copl") => Some((56.89, 71.23)),
        ("ufp2-all", "uniform") => Some((49.86, 74.52)),
        _ => None,
    }
}

/// The paper's numbers where our runs have a counterpart (gemma-2b-it): Table 5 (UF-P-4 ALL/AVG) and Tables 6/A4 (GCF held-out).
pub(super) fn paper_number(run: &str, column: &str) -> Option<f64> {
    Some(match (run, column) {
        ("ufp4-all", "copl_2hop") => 61.62,
        ("ufp4-avg", "copl_2hop") => 61.97,
        ("ufp4-all", "naive_avg_2hop") => 59.91,
        ("ufp4-avg", "naive_avg_2hop") => 59.39,
        ("ufp4-all", "user_opt") => 59.24,
        ("ufp4-avg", "user_opt") => 59.45,
        ("ufp4-all-gcf", "gcf") => 90.01,
        ("ufp4-avg-gcf", "gcf") => 87.74,
        ("ufp2-all-full", "gcf") => 84.84,
        ("ufp2-all-no-neg", "gcf") => 72.94,
        ("ufp2-all-no-transform", "gcf") => 80.61,
        ("ufp2-all-no-all", "gcf") => 72.15,
        _ => return None,
    })
}

pub(super) fn paper_pct(run: &str, column: &str) -> String {
    paper_number(run, column).map_or_else(|| "–".to_string(), |v| format!("{v:.2}"))
}
