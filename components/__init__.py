"""KFP v2 components: one folder per stage, each a thin adapter from typed artifacts to a `graft` library call."""

# Lightweight components run `graft` from the image they execute in. Locally (kfp.local SubprocessRunner) that is
# the current virtualenv; building a graft image for a cluster is the containerization work in infra/.
BASE_IMAGE = "python:3.11-slim"
