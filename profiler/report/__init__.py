"""Writers: JSON (versioned), JSONL, CSV and Markdown (llama-bench layouts), and run folders."""

from profiler.report.writers import FORMATS, render, save_run

__all__ = ["FORMATS", "render", "save_run"]
