"""``python -m jacobian_ik.audit``: the ``jacobian-ik`` command."""

import sys

from jacobian_ik.audit.cli import main

sys.exit(main())
