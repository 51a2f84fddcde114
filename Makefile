# Fresh machine with Python 3.11: `make demo` or `make test`. Everything lives in .venv.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): requirements.txt requirements-ros.txt requirements-test.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt -r requirements-test.txt
	@# rclpy and messages from PyPI wheels unless a ROS 2 distribution is sourced.
	@if [ -z "$$ROS_DISTRO" ]; then $(PIP) install -q -r requirements-ros.txt; \
	 else echo "ROS_DISTRO=$$ROS_DISTRO sourced: using its rclpy"; fi
	$(PIP) install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# `make demo` replays the sample for 20 s, records it to $(RECORD)/bag (replaced) and draws one frame of it.
# DDS discovery stays on this machine; `make demo ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET` (and the
# same ROS_DOMAIN_ID on both) lets RViz or `ros2 topic echo` on another machine see the graph.
RECORD ?= out/demo
ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
demo: $(STAMP)
	rm -rf $(RECORD)/bag
	ROS_AUTOMATIC_DISCOVERY_RANGE=$(ROS_AUTOMATIC_DISCOVERY_RANGE) $(VENV)/bin/mmhpe-ros run --duration 20 --record $(RECORD)/bag
	$(VENV)/bin/mmhpe-ros render $(RECORD)/bag --out $(RECORD) --frames 1 --no-progress

# With ../shared/ros-tools (CI; the project's machines) the real ROS 2 Python tools are installed
# into the venv first (launch, ros2 CLI, colcon, message_filters, sensor_msgs_py): the tests that
# need them run; without it they skip, saying why.
ROS_TOOLS ?= ../shared/ros-tools
test: $(STAMP)
	@if [ -x $(ROS_TOOLS)/install.sh ]; then $(ROS_TOOLS)/install.sh $(VENV); fi
	$(PY) -m pytest -q test

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
