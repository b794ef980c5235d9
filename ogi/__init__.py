"""OGI: locomotion and manipulation simulation stack on MuJoCo."""

__version__ = "0.1.0"
