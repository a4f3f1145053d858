# The GCF schedule every script uses on this 2-core CPU (sourced, not run): d = 64,
# full-batch steps at lr 1e-2 (a paper-default epoch, d = 512 and batch 1 024, costs
# hours here: docs/benchmarks.md) and λ = 1e-2 on the batch's mean squared embedding
# norm. With λ at the paper's 1e-6 this schedule memorises (training loss → 0.001) and
# tells ufp4's four groups apart badly; 1e-2 is what docs/gcf.md measured best. Each
# script adds its own --epochs.
GCF_CPU=(--dim 64 --lr 1e-2 --batch-size 1000000 --l2 1e-2)
