"""What-if: the same events under a baseline and a new config, and the difference (`streamproc whatif`)."""
