"""Where model weights come from: the Hugging Face Hub (``hf``) and plain HTTPS (``https``).

Each source downloads into a store entry directory that ``models.store`` gives it, reports
through the ``Progress`` seam (``base``) and translates its library's exceptions into
``ModelError``. Sources never print: the CLI renders progress and messages.
"""

from llmdeploy.models.sources.base import NullProgress, Progress

__all__ = ["NullProgress", "Progress"]
