//! The subcommands' arguments, runs and printed output, one family a module.

pub(crate) mod bench;
pub(crate) mod gcf;
pub(crate) mod mole;
pub(crate) mod onboard;
pub(crate) mod synth;
