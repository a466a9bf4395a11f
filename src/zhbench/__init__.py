"""zhbench: reproducible Chinese NLP experiments."""
