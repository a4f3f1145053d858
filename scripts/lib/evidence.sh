# The report's evidence kept in git (sourced, not run). `runs/` does not survive a session
# (each starts from a new checkout) while scripts/report.sh needs more hours than one
# session has, so every stage's JSON — evaluations, training summaries, `gcf.json`, the
# data's `synth.json`; never data files or checkpoints — is copied into
# evidence/report/ as the stages finish, and restored into the runs directory before
# they start: a stage whose JSON is there is skipped, and a later session goes on where
# an earlier one stopped. What a restored set lacks (its data, its GCF checkpoint) is
# remade from its seed only when a variant of it still has to run
# (scripts/mole-benchmarks.sh). Commit evidence/ with the docs it backs.
EVIDENCE=${EVIDENCE:-evidence/report}

# evidence_files DIR: the JSON worth keeping under DIR (through links: a set whose data
# is a link to another stage's keeps its own copy of synth.json), relative to DIR.
evidence_files() {
  (cd "$1" && find -L . \( -name 'ckpt*' -o -name '*.partial' \) -prune -o -type f -name '*.json' -print |
    sed 's|^\./||' | sort)
}

# json_fill SRC DST: copies SRC's evidence files (evidence_files) into DST where DST has
# no such file; a DST file is never replaced.
json_fill() {
  local src=$1 dst=$2 f
  [ -d "$src" ] || return 0
  while read -r f; do
    [ -e "$dst/$f" ] && continue
    mkdir -p "$(dirname "$dst/$f")"
    cp "$src/$f" "$dst/$f"
  done < <(evidence_files "$src")
}

# evidence_restore RUNS: copies evidence/report/* into RUNS where RUNS has no such file.
evidence_restore() {
  json_fill "$EVIDENCE" "$1"
}

# evidence_save RUNS: copies RUNS' JSON into evidence/report/ (newer runs replace older).
evidence_save() {
  local runs=$1 f
  [ -d "$runs" ] || return 0
  while read -r f; do
    mkdir -p "$(dirname "$EVIDENCE/$f")"
    cmp -s "$runs/$f" "$EVIDENCE/$f" 2>/dev/null || cp "$runs/$f" "$EVIDENCE/$f"
  done < <(evidence_files "$runs")
}
