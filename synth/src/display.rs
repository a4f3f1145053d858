//! How `copl-train synth` prints a benchmark's [`Summary`] (`--json`: the same as JSON,
//! what `synth.json` holds).

use std::fmt;

use super::Summary;

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self;
        let c = &s.config;
        writeln!(
            f,
            "Synthetic benchmark {} ({:?} sampling, {} catalogue, seed {})",
            c.preset.name(),
            c.sampling,
            c.catalogue.name(),
            c.seed,
        )?;
        writeln!(
            f,
            "  catalogue: {} prompts, {} responses ({:.0}–{:.0} words, mean {:.0}); {} survey pairs, {} test pairs{}",
            s.prompts,
            s.responses,
            s.response_words[0],
            s.response_words[2],
            s.response_words[1],
            s.survey_pairs,
            s.test_pairs,
            if s.new_text_pairs > 0 {
                format!(" + {} on held-out prompts' new texts", s.new_text_pairs)
            } else {
                String::new()
            }
        )?;
        let groups = if s.group_sizes.is_empty() {
            "Dirichlet(0.1) mixtures over detail, hedging, structure, formality".to_string()
        } else {
            s.group_sizes
                .iter()
                .map(|(g, n)| format!("{g} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "  users: {} seen ({groups}), {} unseen",
            s.seen_users, s.unseen_users
        )?;
        writeln!(
            f,
            "  annotations: {} train (mean {:.1} a seen user), {} val, {} test",
            s.train_annotations, s.mean_train_per_seen_user, s.val_annotations, s.test_annotations
        )?;
        writeln!(
            f,
            "  controversial pairs: {:.1}% of the catalogue",
            100.0 * s.controversial_pair_share
        )?;
        writeln!(
            f,
            "  test accuracy of the ground truth (upper bound): {:.2}%; of one shared preference (non-personalised bound): {:.2}%",
            100.0 * s.ground_truth_test_accuracy,
            100.0 * s.population_test_accuracy
        )?;
        Ok(())
    }
}
