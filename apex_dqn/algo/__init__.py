"""Layer 2, the algorithm: networks, losses, n-step, exploration, learner, actor, evaluator.

Also the acting Q-functions and the reference loop; numpy and torch, no Ray.
"""
