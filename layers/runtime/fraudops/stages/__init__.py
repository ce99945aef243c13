"""One file per pipeline stage (what each Lambda runs): train, promote."""
