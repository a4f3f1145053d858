//! The MoLE reward model offline (paper §4.2): training (`run`, `train`, `packed`),
//! evaluation (`eval`, `oracle`, `allocation`, `routing`) and the forward benchmarks.
//! The model itself lives in `copl_core::model`.

pub mod allocation;
pub mod bench;
mod display;
pub mod eval;
pub mod gate_init;
pub mod objective;
pub mod oracle;
pub mod packed;
pub mod routing;
pub mod run;
pub mod seeded;
pub mod train;
