import sys

from bench.rollout.run import main

sys.exit(main())
