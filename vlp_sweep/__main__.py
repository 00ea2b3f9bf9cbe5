import sys

from vlp_sweep.cli import main

sys.exit(main())
