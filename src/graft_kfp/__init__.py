"""graft's Kubeflow Pipelines side, installed under a graft-specific name.

`graft_kfp.components` is the repository's `components/` folder (one KFP component per stage) and
`graft_kfp.pipelines` its `pipelines/` folder (the pipeline factory and its command line).
"""
