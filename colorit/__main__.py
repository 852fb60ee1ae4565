import sys

from colorit.cli import main

# The guard keeps worker processes started with "spawn" (which import this module as __mp_main__)
# from running the command line again.
if __name__ == "__main__":
    sys.exit(main())
