"""Layer 3, the roles of a run (actor, learner with its sample feeder, replay shard, evaluator).

Free of any runtime: each talks to the others through small ports (``roles.ports``) and answers
with typed reports (``apex_dqn.core.reports``). The Ray and local runtimes bind the same roles.
"""
