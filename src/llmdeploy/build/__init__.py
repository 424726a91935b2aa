"""``llmdeploy build``: the profile's server image, labelled, optionally baked, multi-platform
and pushed.

    request.py     BuildImageRequest: what the CLI (or a CI script) asks for, parsed once
    provenance.py  where the image comes from (OCI annotations: source, revision, created)
    context.py     the build contexts on disk: the rendered Containerfile + wheels; baked weights
    pipeline.py    build_image(): render, build per platform, bake, tag, manifest list, push
    result.py      BuildResult: ids, digests, tags, sizes, platforms, duration (``--json``)

It sits above ``deploy`` (it plans the deployment the image is for, and places the model a
baked image carries) and below ``cli``.
"""
