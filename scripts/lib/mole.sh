# The MoLE training recipe every script defaults to (sourced, not run): pairs a step and
# steps by preset, where validation stops rising on 2 cores with MoLE in MiniLM's top 2
# layers at lr 5e-4 over GCF embeddings that identify the groups (scripts/lib/gcf.sh's
# epochs; docs/benchmarks.md "Four groups at 1 000 users", scripts/mole-plateau.sh):
# tldr and ufp2 reach 100 % validation by step 200 × 32, ufp4 by 400 (97.7–100 %),
# personal by 300 (2026-12-02). 1 500 steps were ufp4's budget over embeddings that did
# not tell its groups apart (2026-12-01).
MOLE_BATCH=32
mole_recipe_steps() { # mole_recipe_steps <preset>
  case $1 in
    tldr | ufp2) echo 400 ;;
    *) echo 600 ;;
  esac
}
