"""`python -m jobs` is the `member-recon` command."""

from jobs.cli import main

main()
