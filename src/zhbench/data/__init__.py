"""Datasets: the download registry and the validated readers of each format."""
