"""`python -m jobs` is the `member-recon` command."""

from jobs.cli.main import main

main()
