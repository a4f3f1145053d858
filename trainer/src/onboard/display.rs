//! How `eval-unseen` ([`UnseenEval`]) and `bench onboard` ([`OnboardBench`]) print
//! their results (`--json`: the same values as JSON).

use std::fmt;

use super::{UnseenEval, bench::OnboardBench};

impl fmt::Display for UnseenEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self;
        writeln!(
            f,
            "{} unseen users, {:.1} answers each, {} test pairs; seen users' GCF accuracy {:.2} %",
            e.unseen_users,
            e.mean_answers,
            e.test_pairs,
            100.0 * e.seen_accuracy
        )?;
        for (name, m) in &e.methods {
            writeln!(
                f,
                "  {name:<16} {:6.2} %   {:9.1} µs a user",
                100.0 * m.accuracy,
                m.mean_us
            )?;
        }
        let s = &e.copl_2hop;
        writeln!(
            f,
            "  copl_2hop: fallbacks {:?}; mean neighbourhood {:.1}, effective {:.1}, confidence {:.2}, answer agreement {:.2}",
            s.fallbacks,
            s.mean_neighbourhood,
            s.mean_effective_neighbours,
            s.mean_confidence,
            s.mean_answer_agreement
        )?;
        writeln!(
            f,
            "  answers  random-2hop  random-4hop  suggested  suggested-batch"
        )?;
        let pct = |x: Option<f64>| x.map_or("–".to_string(), |x| format!("{:.2}", 100.0 * x));
        for p in &e.by_answers {
            writeln!(
                f,
                "  {:>7}  {:>11.2}  {:>11.2}  {:>9}  {:>15}",
                p.answers,
                100.0 * p.random_2hop,
                100.0 * p.random_4hop,
                pct(p.suggested_adaptive),
                pct(p.suggested_batch)
            )?;
        }
        writeln!(
            f,
            "  survey: pool {} pairs, built in {:.2} s, one suggestion {:.0} µs",
            e.survey_pool, e.survey_build_seconds, e.suggest_mean_us
        )?;
        if let Some(note) = &e.survey_note {
            writeln!(f, "  survey: {note}")?;
        }
        Ok(())
    }
}

impl fmt::Display for OnboardBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self;
        writeln!(
            f,
            "{}: {} users, {} responses, {} positive edges, d = {}; setup {:.1} s, adapter {} MiB, peak {} MiB",
            b.source,
            b.users,
            b.responses,
            b.positive_edges,
            b.dim,
            b.setup_seconds,
            b.adapter_rss_mib.map_or("?".into(), |x| format!("{x:.0}")),
            b.peak_rss_mib.map_or("?".into(), |x| format!("{x:.0}")),
        )?;
        for (name, l) in [
            ("copl 2-hop", &b.copl_2hop),
            ("copl 4-hop", &b.copl_4hop),
            ("user opt (by hand)", &b.user_opt),
            ("user opt (autograd)", &b.user_opt_autograd),
        ] {
            writeln!(
                f,
                "  {name:<20} p50 {:>10.1} µs  p99 {:>10.1} µs  mean {:>10.1} µs  ({} calls)",
                l.p50_us, l.p99_us, l.mean_us, l.calls
            )?;
        }
        writeln!(
            f,
            "  mean neighbourhood: 2-hop {:.1}, 4-hop {:.1} users",
            b.mean_neighbourhood_2hop, b.mean_neighbourhood_4hop
        )?;
        Ok(())
    }
}
