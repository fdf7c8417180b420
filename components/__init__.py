"""KFP v2 components: one folder per stage, each a thin adapter from typed artifacts to a `graft` library call."""

# Every task runs in the graft image (infra/Containerfile; `make image` builds it as this tag), which holds graft,
# kfp and the whole pinned stack: components never pip-install anything at start (install_kfp_package=False).
# `graft pipeline compile --image REGISTRY/graft:TAG` points the compiled YAML at the image you pushed. Locally,
# kfp.local's SubprocessRunner runs the same functions in the current virtualenv instead.
BASE_IMAGE = "localhost/graft:0.1.0"
