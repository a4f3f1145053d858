//! How the MoLE commands print their results (`--json`: the same values as JSON):
//! `mole` ([`MoleSummary`]), `eval` and `eval-oracle` ([`MoleEval`]), `bench mole`
//! ([`TrainStepTiming`]), `eval-experts` ([`CheckpointAllocation`]).

use std::fmt;

use super::{
    allocation::CheckpointAllocation, bench::TrainStepTiming, eval::MoleEval, run::MoleSummary,
};

impl fmt::Display for MoleSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} on {}: best step {}, val {:.2} %, test {:.2} %, {:.2} pairs/s, {:.0} s",
            self.variant,
            self.family,
            self.training.best_step,
            100.0 * self.training.best_val_accuracy,
            100.0 * self.test_accuracy,
            self.training.pairs_per_second,
            self.training.train_seconds,
        )
    }
}

/// A line per population (seen, unseen) and group.
impl fmt::Display for MoleEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let eval = self;
        for (name, p) in [("seen", Some(&eval.seen)), ("unseen", eval.unseen.as_ref())] {
            let Some(p) = p else { continue };
            writeln!(
                f,
                "{name}: {:.2} % over {} pairs{}",
                100.0 * p.overall.accuracy,
                p.overall.pairs,
                match (&p.controversial, &p.common) {
                    (Some(c), Some(m)) => format!(
                        "; controversial {:.2} %, common {:.2} %",
                        100.0 * c.accuracy,
                        100.0 * m.accuracy
                    ),
                    _ => String::new(),
                }
            )?;
            for (g, s) in &p.by_group {
                writeln!(
                    f,
                    "  {g:<12} {:.2} % ({} pairs)",
                    100.0 * s.accuracy,
                    s.pairs
                )?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for TrainStepTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self;
        let layers = t
            .adapt_layers
            .map_or("all layers".to_string(), |k| format!("top {k} layers"));
        write!(
            f,
            "{:?}: {} pairs x {} tokens, MoLE in {layers}: forward {:.2} s, backward {:.2} s, \
             AdamW {:.3} s -> {:.2} pairs/s (frozen layers cached); frozen forward \
             {:.2} s -> {:.2} pairs/s uncached",
            t.engine,
            t.batch_pairs,
            t.tokens,
            t.forward,
            t.backward,
            t.optimiser,
            t.pairs_per_second,
            t.frozen_forward,
            t.pairs_per_second_uncached
        )
    }
}

/// Per projection: the majority share, the distinct majority experts, the experts used.
impl fmt::Display for CheckpointAllocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} seen users routed by the gates", self.users)?;
        for (i, name) in self.projections.iter().enumerate() {
            let used = self.experts_used.get(i).copied().unwrap_or(0);
            match self.purity.get(i) {
                Some(p) => writeln!(
                    f,
                    "  {name}: majority share {:.2}, {} distinct majority experts, entropy {:.2} bits, {used} experts used",
                    p.majority_share, p.distinct_majorities, p.entropy_bits
                )?,
                None => writeln!(f, "  {name}: {used} experts used")?,
            }
        }
        Ok(())
    }
}
