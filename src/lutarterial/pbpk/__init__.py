"""Physiologically based pharmacokinetics of SSTR2 radiopeptides by the IV and hepatic-arterial route.

Pure domain package (no database, clock or printing): parameters as data
(:mod:`.parameters`), the model (:mod:`.model`), the solver with its mass-balance check
(:mod:`.solver`), scenarios and calibration (:mod:`.scenarios`), per-participant fitting
(:mod:`.individual`) and plots (:mod:`.plots`). See docs/pbpk.md.
"""

from lutarterial.pbpk.model import ORGANS, POOLS
from lutarterial.pbpk.parameters import NUCLIDES, PopulationParameters, load_parameters
from lutarterial.pbpk.solver import MASS_BALANCE_TOL, Administration, SimulationResult, simulate

__all__ = ["ORGANS", "POOLS", "NUCLIDES", "PopulationParameters", "load_parameters", "MASS_BALANCE_TOL",
           "Administration", "SimulationResult", "simulate"]
