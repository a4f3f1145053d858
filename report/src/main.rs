//! `copl-report`: writes docs/results.md and its figures from the evaluation JSON under
//! `--runs` (the layout `scripts/report.sh` makes; see `results.rs`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "copl-report",
    version,
    about = "Write the CoPL results report (tables, figures, readings) from the runs' JSON"
)]
struct Cli {
    /// Directory of the runs (gcf/, onboard/, mole/<set>/, …).
    #[arg(long, default_value = "runs/report")]
    runs: PathBuf,
    /// Directory for the figures.
    #[arg(long, default_value = "docs/results")]
    out: PathBuf,
    /// The markdown file written.
    #[arg(long, default_value = "docs/results.md")]
    markdown: PathBuf,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let written = copl_report::results::report(&cli.runs, &cli.out, &cli.markdown)?;
    println!("{written}");
    Ok(())
}
