"""Where numba keeps the compiled kernels (``cache=True``), chosen before numba loads.

numba's default is a ``__pycache__`` folder next to each kernel's source.  That
works for a checkout, an editable install or a writable install prefix; an
install folder the running user cannot write (a system or read-only image
install) would make numba compile every kernel again at each start.  So,
unless ``NUMBA_CACHE_DIR`` is already set, ``choose_cache_dir()`` points it at
``$XDG_CACHE_HOME/jacobian_ik/numba`` (default ``~/.cache/jacobian_ik/numba``)
whenever the kernels' folder is not writable.  ``jacobian_ik/__init__.py``
calls it before anything imports numba; ``jacobian-ik precompile`` fills the
chosen location.

Importing this module never imports numba.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

#: The folder whose ``__pycache__`` numba uses by default.
KERNELS_DIR = Path(__file__).resolve().parent / "kernels"


def user_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/jacobian_ik/numba`` (``~/.cache`` when XDG_CACHE_HOME is unset)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jacobian_ik" / "numba"


def writable(folder: Path) -> bool:
    """True when a file can be created in ``folder`` (created if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def choose_cache_dir(environ: MutableMapping[str, str] | None = None,
                     kernels_dir: Path = KERNELS_DIR) -> Path:
    """The folder numba will cache in; sets ``NUMBA_CACHE_DIR`` in ``environ`` when
    it is not the default.  An explicit ``NUMBA_CACHE_DIR`` is kept as it is."""
    environ = os.environ if environ is None else environ
    if environ.get("NUMBA_CACHE_DIR"):
        return Path(environ["NUMBA_CACHE_DIR"])
    in_tree = kernels_dir / "__pycache__"
    if writable(in_tree):
        return in_tree
    folder = user_cache_dir(environ)
    environ["NUMBA_CACHE_DIR"] = str(folder)
    # numba's settings module, looked up by name: its attributes are set at run time.
    config: Any = sys.modules.get("numba.core.config")
    if config is not None:  # numba was imported first and has read its environment
        config.CACHE_DIR = str(folder)
    return folder
