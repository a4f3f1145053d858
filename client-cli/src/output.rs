//! The command's standard output. A reader that closes the pipe early (`copl info | head`)
//! ends the command quietly and successfully, as it does any Unix tool, instead of the
//! panic `println!` gives on a closed pipe.

use std::io::{self, Write};

/// One line to standard output; a failed write is the caller's `io::Error`.
pub fn line(args: std::fmt::Arguments<'_>) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_fmt(args)?;
    stdout.write_all(b"\n")
}

/// A verb's result: JSON with `--json` (the typed view every verb returns), else its text.
pub fn emit<T: serde::Serialize + std::fmt::Display>(value: &T, json: bool) -> anyhow::Result<()> {
    if json {
        line(format_args!("{}", serde_json::to_string_pretty(value)?))?;
    } else {
        line(format_args!("{}", value.to_string().trim_end()))?;
    }
    Ok(())
}

/// Whether `e` is standard output's reader having gone away (not a failure of the command).
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_told_from_other_failures() {
        let closed = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_closed_pipe(&closed));
        assert!(is_closed_pipe(&closed.context("printing the answer")));
        let other = anyhow::Error::new(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!is_closed_pipe(&other));
        assert!(!is_closed_pipe(&anyhow::anyhow!(
            "UNAVAILABLE: connection refused"
        )));
    }
}
