//! Helpers for the end-to-end tests in `tests/tests/`: they run the real binaries
//! (`copl-train`, `copl-server`, `copl`) as a user would.
//!
//! The binaries must be built first: `cargo build --workspace --bins` (the README's
//! test command does this before `cargo test`).

use std::{
    path::PathBuf,
    process::{Command, Output},
};

/// Path of a workspace binary built in the same profile as the running test.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` before the end-to-end tests",
        path.display()
    );
    path
}

/// Runs a workspace binary with `args` and returns its output.
pub fn run(name: &str, args: &[&str]) -> Output {
    Command::new(binary(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

/// A command's stdout and stderr as text, for assertions and messages.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
