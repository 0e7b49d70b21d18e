"""member-recon: the KOSCOM reconciliation job built on the batch engine."""
