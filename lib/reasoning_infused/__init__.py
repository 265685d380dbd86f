"""Two-Stage Reasoning-Infused Learning (Henrichsen & Krebs, arXiv 2507.00214): reference implementation."""

from .config import Profile, ProfileError, load_profile
from .data import LABELS, DataError

__all__ = ["LABELS", "DataError", "Profile", "ProfileError", "load_profile"]
__version__ = "0.1.0"
