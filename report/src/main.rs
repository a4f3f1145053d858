//! `copl-report`: writes docs/results.md and its figures from the evaluation JSON under
//! `--runs` (the layout `scripts/report.sh` makes; see `results.rs`). `copl-report seeds
//! DIR…` prints the seeds' tables of the given sets alone (`scripts/mole-seeds.sh`),
//! `copl-report variants DIR VARIANT…` one benchmark run's (`scripts/mole-benchmarks.sh`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The reward models over seeds of each set given (a directory of `s<seed>/` runs,
    /// as `scripts/mole-seeds.sh` writes): mean ± std per variant and CoPL's paired
    /// differences, as markdown on stdout. Writes nothing.
    Seeds {
        #[arg(required = true)]
        sets: Vec<PathBuf>,
    },
    /// The reward-model tables of one benchmark run directory (`<variant>.eval.json`
    /// and `<variant>.json` as `scripts/mole-benchmarks.sh` writes them): overall,
    /// per group, seen and new texts, as markdown on stdout. Writes nothing.
    Variants {
        dir: PathBuf,
        #[arg(required = true)]
        variants: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Seeds { sets }) => {
            print!("{}", copl_report::mole_seeds::tables(&sets)?);
        }
        Some(Command::Variants { dir, variants }) => {
            print!("{}", copl_report::variants::tables(&dir, &variants)?);
        }
        None => {
            let written = copl_report::results::report(&cli.runs, &cli.out, &cli.markdown)?;
            println!("{written}");
        }
    }
    Ok(())
}
