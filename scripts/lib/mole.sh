# The MoLE training recipe every script defaults to (sourced, not run): pairs a step and
# steps by preset, where validation stops rising on 2 cores with MoLE in MiniLM's top 2
# layers at lr 5e-4 (docs/benchmarks.md "The recipe at the long budget",
# scripts/mole-plateau.sh): tldr and ufp2 reach 100 % validation by step 200 × 32, ufp4
# gains its last points to step 1 200, personal peaked at step 500 (2026-11-30).
MOLE_BATCH=32
mole_recipe_steps() { # mole_recipe_steps <preset>
  case $1 in
    tldr | ufp2) echo 400 ;;
    *) echo 1500 ;;
  esac
}
