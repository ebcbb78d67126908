"""The settings in development mode, for tools that read them without running the app: mypy's Django plugin
(pyproject.toml, ``[tool.django-stubs]``) imports a settings module, and the real one refuses to load with
DEBUG off and no SECRET_KEY (the production default). Nothing serves requests with this module."""

import os

os.environ["DEBUG"] = "1"

from acme_integration.settings import *  # noqa: F403
