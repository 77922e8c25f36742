"""Loaded at start-up by every Python process of a test's pipeline run that has this folder on its
``PYTHONPATH`` (tests/oracle.py): when ``LIC_IMPORTS_OUT`` names a folder, the process writes
there, at exit, the project's source files it loaded (``lic/``, ``flows/`` under ``LIC_IMPORTS_ROOT``),
with its command line and its parent's pid, which maps a torchrun worker to the stage that started it.
An oracle of what each stage runs, which shares no code with flows/deps.py."""

import atexit
import json
import os
import sys

_OUT, _ROOT = os.environ.get("LIC_IMPORTS_OUT"), os.environ.get("LIC_IMPORTS_ROOT")


def _dump() -> None:
    files = sorted({m.__file__[len(_ROOT) + 1:] for m in list(sys.modules.values())
                    if (getattr(m, "__file__", None) or "").startswith(_ROOT + "/")
                    and m.__file__[len(_ROOT) + 1:].startswith(("lic/", "flows/"))})
    with open(os.path.join(_OUT, f"{os.getpid()}.json"), "w") as fh:
        json.dump({"pid": os.getpid(), "ppid": os.getppid(), "argv": sys.argv, "files": files}, fh)


if _OUT and _ROOT:
    atexit.register(_dump)
