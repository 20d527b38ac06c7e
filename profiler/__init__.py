"""profiler: on-device inference cost profiler for small language models."""

__version__ = "0.1.0"
