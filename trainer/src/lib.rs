//! copl-trainer: the offline half of CoPL — GCF and MoLE training and their evaluation
//! (see `docs/architecture.md`). The benchmark generator is `copl-synth`, the report
//! `copl-report`.

pub mod gcf;
pub mod memory;
pub mod mole;
pub mod onboard;
pub mod optim;
pub mod projection;
pub mod refresh;
