# The GCF schedule every script uses on this 2-core CPU (sourced, not run): d = 64,
# full-batch steps at lr 1e-2 (a paper-default epoch, d = 512 and batch 1 024, costs
# hours here: docs/benchmarks.md) and λ = 1e-2 on the batch's mean squared embedding
# norm. With λ at the paper's 1e-6 this schedule memorises (training loss → 0.001) and
# tells ufp4's four groups apart badly; 1e-2 is what docs/gcf.md measured best. Each
# script adds its own --epochs.
GCF_CPU=(--dim 64 --lr 1e-2 --batch-size 1000000 --l2 1e-2)

# Full-batch epochs for USERS seen users. Fewer users need more steps to separate the
# groups (docs/gcf.md, "Epochs at 1 000 users"): at 1 000 users 200 epochs leave ufp4-all's
# four groups unidentified (probe 68.5 %, k-means NMI 0.38) and 1 500 separate them (probe
# 100 %, NMI 0.99; personal's weights R² 0.55 → 0.82; tldr and ufp2 unchanged), while at
# 10 000 users 600 already do (probe 100 %). The best epoch's embeddings are kept.
gcf_epochs() { if [ "$1" -ge 10000 ]; then echo 600; else echo 1500; fi; }
