"""The types and rules every layer shares, importing nothing above them.

- ``run_spec``: what to run and what is running (RunSpec, ContainerInfo, BuildRequest), neutral
  between Podman and Docker;
- ``launch``: what a backend tells the rest (ServerLaunch, BuildRecipe, extra files and the
  steps after start);
- ``plan``: the self-contained DeploymentPlan every step after planning reads;
- ``labels``: the typed record of the labels a deployment's container carries;
- ``model_ref``, ``model_formats``, ``model_info``, ``gguf_split``: model references parsed
  once, the weight formats they name, a model's shape, split GGUF naming;
- ``sizes``: one parser and one formatter for byte sizes;
- ``reporting``: how domain code reports progress.

Only ``llmdeploy.errors``, ``llmdeploy.constants`` and third-party libraries are imported here
(the import-linter contracts in pyproject.toml enforce it).
"""
