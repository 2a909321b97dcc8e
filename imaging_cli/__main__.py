import sys

from imaging_cli.main import main

sys.exit(main())
