"""Image-level checks of stylized outputs: colour statistics against the styles', and decoder artefacts
(checkerboard patterns, border bands). Pure tensor functions; nothing here reads or writes files."""

from .artefacts import border_step, checkerboard_prominence
from .colour import ColourCheck, colour_check, colour_stats

__all__ = ["ColourCheck", "border_step", "checkerboard_prominence", "colour_check", "colour_stats"]
