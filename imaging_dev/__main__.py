import sys

from imaging_dev.main import main

sys.exit(main())
