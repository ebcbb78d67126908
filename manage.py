#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "acme_integration.settings")
    if sys.argv[1:2] == ["makemigrations"]:
        # A developer's code generator, never a production process: it needs no SECRET_KEY, so it runs in
        # development mode (DEBUG is otherwise off unless set, and the settings refuse to load without one).
        os.environ["DEBUG"] = "1"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
