"""OGI: locomotion and manipulation simulation stack on MuJoCo."""

from ogi.envs.registration import register_envs

__version__ = "0.1.0"

# as a Gymnasium plugin would: `import ogi` then `gymnasium.make("ogi/Go2Walk-v0")`; names only, nothing loads yet
register_envs()
