"""`python -m mmhpe_ros.train`: the same as `mmhpe-ros train` (and what torchrun launches)."""
import sys

from mmhpe_ros.train.command import main

sys.exit(main())
