"""What zhbench knows about the engines that run its stages (Snakemake, DVC): stale-lock recovery."""
