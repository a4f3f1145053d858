//! The subcommands, one family a module: each subcommand's arguments are a struct that
//! implements [`Run`], whose result is `Serialize` (what `--json` prints) and `Display`
//! (the text printed otherwise). `main.rs` only parses and calls [`dispatch`].

pub(crate) mod bench;
pub(crate) mod data;
pub(crate) mod eval;
pub(crate) mod gcf;
pub(crate) mod mole;
pub(crate) mod refresh;
pub(crate) mod synth;

use std::{fmt, path::PathBuf};

use anyhow::Result;
use serde::{Serialize, Serializer};

/// A subcommand: its run and whether its result is wanted as JSON.
pub(crate) trait Run {
    type Output: Serialize + fmt::Display;
    fn json(&self) -> bool;
    fn run(self) -> Result<Self::Output>;
}

/// Runs `command` and prints its result: JSON with `--json`, else its text.
pub(crate) fn dispatch<C: Run>(command: C) -> Result<()> {
    let json = command.json();
    let output = command.run()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        println!("{}", output.to_string().trim_end());
    }
    Ok(())
}

/// A result that was also written somewhere: its text says where (and how long it took);
/// its JSON is the value's alone (what scripts store as the run's summary).
pub(crate) struct Written<T> {
    pub value: T,
    pub to: PathBuf,
    pub seconds: Option<f64>,
}

impl<T: Serialize> Serialize for Written<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<T: fmt::Display> fmt::Display for Written<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\nwritten to {}", self.value, self.to.display())?;
        if let Some(s) = self.seconds {
            write!(f, " in {s:.1} s")?;
        }
        Ok(())
    }
}
