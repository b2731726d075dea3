"""Survey runs: many photos counted into a run directory that survives crashes and resumes."""
