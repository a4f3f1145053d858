# Shell helpers the benchmark scripts share (sourced, not run): gcf-, mole-, seed-
# benchmarks.sh and report.sh.

# into <file> <command...>: the command's stdout into <file> only when it succeeds, so a
# report reading the runs meanwhile, or a rerun after a failure (which skips outputs
# already there), never sees half a file.
into() {
  local file=$1
  shift
  "$@" >"$file.partial"
  mv "$file.partial" "$file"
}
