import sys

from bench.core.run import main

sys.exit(main())
