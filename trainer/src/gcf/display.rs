//! How `copl-train`'s GCF commands print their results (`--json` prints the same values
//! as JSON): `gcf` ([`GcfSummary`]), `eval-gcf` ([`GcfEval`]), `bench gcf` ([`GcfBench`]).

use std::fmt;

use super::{GcfEval, GcfSummary, Identification, bench::GcfBench};

impl fmt::Display for GcfSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} users, {} responses, {}+/{}- edges; best epoch {} of {}: val accuracy {:.2}%, test accuracy {:.2}%; {:.1} s/epoch",
            self.model,
            self.users,
            self.responses,
            self.positive_edges,
            self.negative_edges,
            self.best_epoch,
            self.history.len(),
            100.0 * self.val_accuracy,
            100.0 * self.test_accuracy,
            self.seconds_per_epoch,
        )
    }
}

impl fmt::Display for GcfEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let eval = self;
        writeln!(
            f,
            "{}: seen users' test pairs: {:.2}% of {}",
            eval.model,
            100.0 * eval.overall.accuracy,
            eval.overall.pairs
        )?;
        for (group, slice) in &eval.by_group {
            writeln!(
                f,
                "  group {group}: {:.2}% of {}",
                100.0 * slice.accuracy,
                slice.pairs
            )?;
        }
        for (name, slice) in [
            ("controversial", &eval.controversial),
            ("common", &eval.common),
        ] {
            if let Some(slice) = slice.as_ref().filter(|s| s.pairs > 0) {
                writeln!(
                    f,
                    "  {name} pairs: {:.2}% of {}",
                    100.0 * slice.accuracy,
                    slice.pairs
                )?;
            }
        }
        if let Some(bound) = eval.ground_truth_bound {
            writeln!(f, "  ground-truth upper bound: {:.2}%", 100.0 * bound)?;
        }
        if let Some(bound) = eval.shared_preference_bound {
            writeln!(
                f,
                "  one shared preference (non-personalised bound): {:.2}%",
                100.0 * bound
            )?;
        }
        if let Some(id) = &eval.identification {
            let line = |f: &mut fmt::Formatter<'_>, who: &str, i: &Identification| {
                let mut parts = Vec::new();
                if let Some(a) = i.probe_accuracy {
                    parts.push(format!("linear probe {:.1}%", 100.0 * a));
                }
                if let Some(n) = i.kmeans_nmi {
                    parts.push(format!("k-means NMI {n:.3}"));
                }
                if let Some(r2) = i.weights_r2 {
                    parts.push(format!("weights R² {r2:.3}"));
                }
                writeln!(f, "  {who} ({} users): {}", i.users, parts.join(", "))
            };
            writeln!(
                f,
                "identification of the user's preference from the embedding:"
            )?;
            line(f, "seen, held out", &id.seen)?;
            if let Some(unseen) = &id.unseen {
                line(f, "unseen, onboarded", unseen)?;
            }
            if let Some(b) = id.bayes_bound {
                writeln!(
                    f,
                    "  Bayes bound of the group from a user's own training answers: {:.1}%",
                    100.0 * b
                )?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for GcfBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self;
        write!(
            f,
            "{:?} ({:?} layer inputs), d = {}, {} users, {} responses, {} + {} edges: {:.3} s a step \
             ({} timed, {} threads; eq. 2's GEMMs {:.1} GFLOP), peak RSS {:.0} MiB; \
             graph built in {:.2} s",
            b.engine,
            b.layer_inputs,
            b.dim,
            b.users,
            b.responses,
            b.positive_edges,
            b.negative_edges,
            b.seconds_per_step,
            b.steps,
            b.threads,
            b.gemm_gflop_per_step,
            b.peak_rss_mib.unwrap_or(f64::NAN),
            b.graph_seconds
        )
    }
}
