import sys

from mediafm_core.cli import main

sys.exit(main())
