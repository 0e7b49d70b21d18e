"""The `member-recon` command line."""
