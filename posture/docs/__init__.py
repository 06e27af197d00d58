"""Documentation generated from the code: the Markdown pages of the control catalog and of scoring."""
