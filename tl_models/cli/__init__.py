"""The installed commands, one module each with ``main(argv) -> exit status``: ``tl-train``, ``tl-validate``,
``tl-benchmark``, ``tl-visualize``, ``tl-export``, ``tl-download``, ``tl-push`` and ``tl-convert-dinov2``
(``[project.scripts]`` in pyproject.toml). They parse arguments and call into the package."""
