"""Energy sources behind one interface, a fallback chooser, and a background sampler.

See docs/energy.md for the sources, the provenance fields and the formulas.
"""

from profiler.platform.energy.base import Candidate, EnergySource, Provenance
from profiler.platform.energy.chooser import Choice, choose
from profiler.platform.energy.sampler import Reading, Sampler

__all__ = ["Candidate", "Choice", "EnergySource", "Provenance", "Reading", "Sampler", "choose"]
