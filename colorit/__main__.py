import sys

from colorit.cli import main

sys.exit(main())
