"""Time-series benchmarking: labelled corpora (NAB layout), causal baselines and the harness
that scores per-series detector output with NAB's profiles and VUS-PR."""
