"""The roles of a run (actor, learner with its sample feeder, replay shard, evaluator), free of
any runtime: each talks to the others through small ports (``roles.ports``) and answers with
typed reports (``apex_dqn.reports``). The Ray runtime and the local runtime bind the same roles.
"""
