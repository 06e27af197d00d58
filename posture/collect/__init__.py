"""The single seam between Arc Posture and Azure: credentials, quota pacing, ARG and ARM calls."""
