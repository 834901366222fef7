"""apex-dqn: Ape-X DQN (distributed prioritized experience replay) on Ray, with a GPU learner."""

__version__ = "0.1.0"
