"""`python -m mmhpe_ros` is `mmhpe-ros`."""
import sys

from mmhpe_ros.cli import main

sys.exit(main())
