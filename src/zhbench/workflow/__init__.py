"""What zhbench knows about the engines that run its stages (Snakemake, DVC): the dvc.yaml export,
import-derived code deps, stale-lock recovery and the commands that rerun a result."""
