//! `copl-train refresh`'s text.

use std::fmt;

use super::{BeforeAfter, RefreshSummary};

impl fmt::Display for BeforeAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} users, {} test pairs: {:.1} % → {:.1} %",
            self.users,
            self.pairs,
            100.0 * self.before,
            100.0 * self.after
        )
    }
}

impl fmt::Display for RefreshSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, w) = (&self.added, &self.warm);
        writeln!(
            f,
            "refreshed {} (id {}) into id {}",
            self.lineage.parent_checkpoint, self.lineage.parent_checkpoint_id, self.checkpoint_id
        )?;
        writeln!(
            f,
            "stored users: {} records ({} without answers); {} users added, {} unseen users \
             made seen; {} answers added, {} on responses the data lacks skipped",
            a.records,
            a.records_without_answers,
            a.users_added,
            a.users_made_seen,
            a.answers_added,
            a.answers_skipped
        )?;
        writeln!(
            f,
            "GCF warm start: users {} kept, {} from eq. 11, {} fresh; responses {} kept, {} \
             fresh; best epoch {} of {}, validation {:.1} %",
            w.users_kept,
            w.users_adapted,
            w.users_fresh,
            w.responses_kept,
            w.responses_fresh,
            self.gcf.best_epoch,
            self.gcf.history.len(),
            100.0 * self.gcf.val_accuracy
        )?;
        writeln!(
            f,
            "onboarded users (eq. 11 on the parent → trained): {}",
            self.onboarded
        )?;
        write!(f, "the parent's seen users: {}", self.seen)
    }
}
