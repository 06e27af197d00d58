"""Arc Posture's domain. The version is pyproject.toml's (a test holds them equal): the image
ships without pyproject.toml, and evidence bundles record the version that built them."""

__version__ = "0.1.0"
